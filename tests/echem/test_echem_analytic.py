"""Half-cell model against analytic results: ohmic slabs, layered conductors, Newman-Tobias."""

import math

import numpy as np
import pytest

from electromicro_dask.core import as_segmentation
from electromicro_dask.echem import chen2020
from electromicro_dask.echem.discharge import _instant
from electromicro_dask.echem.parameters import FARADAY, GAS_CONSTANT

pytest.importorskip("torch")

PHASES = {0: "pore", 1: "cbd", 2: "am"}
F_RT = FARADAY / (GAS_CONSTANT * 298.15)


def _seg(a, h=1.0):
    return as_segmentation(np.asarray(a, "uint8"), phases=PHASES, voxel_size=h)


def _kappa0():
    import torch

    return float(chen2020().kappa_e(torch.tensor(1000.0, dtype=torch.float64), 298.15))


def test_electrolyte_slab_between_two_lithium_faces():
    # i L / kappa + 2 x (2 RT / F) asinh(i / (2 i0_Li)): ohmic drop plus two Li faces.
    nz, h, i = 12, 1.5, 2.0  # um, um, mA/cm^2
    V, _, _ = _instant(_seg(np.zeros((nz, 3, 2)), h), i, boundaries=("lithium", "lithium"),
                       separator=0.0)
    i_si = i * 10.0
    i0 = 3.5e-8 * FARADAY * (1 / 1.3e-5) ** 0.7 * 1000.0 ** 0.3
    expect = i_si * nz * h * 1e-6 / _kappa0() + 2 * (2 / F_RT) * math.asinh(i_si / (2 * i0))
    assert abs(-V - expect) / expect < 1e-6


def test_solid_block_and_series_layers():
    p = chen2020()
    gamma = p.cbd_gamma
    # Series: AM and CBD layers stacked along z between two electronic contacts.
    a = np.full((10, 2, 3), 2)
    a[[2, 3, 7]] = 1
    i = 0.5
    V, _, _ = _instant(_seg(a, 0.8), i, boundaries=("collector", "collector"))
    h = 0.8e-6
    r = (7 * h / p.sigma_am) + (3 * h / (gamma * p.sigma_cbd))
    assert abs(-V - i * 10 * r) / (i * 10 * r) < 1e-6
    # A homogeneous block.
    V, _, _ = _instant(_seg(np.full((9, 2, 2), 2), 0.8), i, boundaries=("collector", "collector"))
    assert abs(-V - i * 10 * 9 * h / p.sigma_am) / (i * 10 * 9 * h / p.sigma_am) < 1e-6


def test_parallel_columns():
    p = chen2020()
    a = np.full((8, 1, 4), 2)
    a[:, :, 3] = 1  # one CBD column of four
    i = 0.3
    V, _, _ = _instant(_seg(a), i, boundaries=("collector", "collector"))
    sig_eff = (3 * p.sigma_am + p.cbd_gamma * p.sigma_cbd) / 4
    expect = i * 10 * 8e-6 / sig_eff
    assert abs(-V - expect) / expect < 1e-6


@pytest.mark.parametrize("nx", [2, 4])
def test_newman_tobias_plates(nx):
    """Newman & Tobias, J. Electrochem. Soc. 109 (1962) 1183: linear kinetics, uniform
    concentrations, the resistance of a porous electrode between collector and separator."""
    p = chen2020()
    nz, h = 60, 1.0
    a = np.zeros((nz, 1, nx))
    a[:, :, : nx // 2] = 2  # AM plates along z in electrolyte
    i = 0.01  # mA/cm^2: linear regime (f eta / 2 ~ 1e-4)
    # No solid-diffusion polarisation: the analytic case has uniform concentrations.
    V, _, _ = _instant(_seg(a, h), i, parameters=p, separator=0.0, area_factor=1.0,
                       surface_extrapolation=False)
    u0 = float(p.ocv(p.sto_init))
    c_s = p.sto_init * p.c_s_max
    i0 = 3.42e-6 * math.sqrt(1000.0 * c_s * (p.c_s_max - c_s))
    L = nz * h * 1e-6
    kappa = 0.5 * _kappa0()
    sigma = 0.5 * p.sigma_am
    area = 1.0 / (nx * h * 1e-6)  # one face per nx-voxel row (mirror sides)
    nu = L * math.sqrt(area * i0 * F_RT * (1 / kappa + 1 / sigma))
    r = L / (kappa + sigma) * (1 + (2 + (sigma / kappa + kappa / sigma) * math.cosh(nu))
                               / (nu * math.sinh(nu)))
    i0_li = 3.5e-8 * FARADAY * (1 / 1.3e-5) ** 0.7 * 1000.0 ** 0.3
    # With no separator the lithium faces only the pore voxels: its local current density
    # is i / (pore fraction of the top layer).
    eta_li = 2 / F_RT * math.asinh(i * 10 * nx / (nx - nx // 2) / (2 * i0_li))
    measured = (u0 - V - eta_li) / (i * 10)
    assert abs(measured - r) / r < 1e-3
