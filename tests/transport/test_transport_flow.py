"""Stokes flow by lattice Boltzmann: Poiseuille duct, straight channels, bad input."""

import math

import numpy as np
import pytest

from electromicro_dask.core import as_segmentation, open_store, save
from electromicro_dask.errors import InputError
from electromicro_dask.transport import flow_tortuosity, permeability

PHASES = {0: "pore", 1: "am"}


def _duct_permeability(width):
    """Sample permeability of a square duct filling the cross-section (series solution,
    e.g. White, Viscous Fluid Flow, eq. 3-48): k = w^2/12 (1 - 192/pi^5 sum tanh(n pi/2)/n^5)."""
    n = np.arange(1, 400, 2)
    return width**2 / 12 * (1 - 192 / np.pi**5 * np.sum(np.tanh(n * np.pi / 2) / n**5))


def test_square_duct_poiseuille_within_two_percent():
    w, h = 20, 0.5
    seg = as_segmentation(np.zeros((2, w, w), "uint8"), phases=PHASES, voxel_size=h)
    r = permeability(seg, axis="z", device="cpu")
    assert r.converged
    assert r.permeability == pytest.approx(_duct_permeability(w * h), rel=0.02)
    assert r.tau == pytest.approx(1.0, abs=1e-9)
    # The field: no cross flow, the axis profile peaks on the centre line.
    u = r.velocity
    assert set(u.data_vars) == {"u_z", "u_y", "u_x"}
    assert float(abs(u.u_x).max()) < 1e-9 * float(u.u_z.max())
    assert float(u.u_z.mean()) == pytest.approx(r.permeability, rel=1e-6)
    prof = u.u_z.values[0, w // 2]
    assert prof.argmax() in (w // 2 - 1, w // 2)


def test_duct_along_x_with_walls_in_the_volume():
    w = 16
    a = np.ones((w + 2, w + 2, 3), "uint8")
    a[1:-1, 1:-1, :] = 0
    seg = as_segmentation(a, phases=PHASES, voxel_size=1.0)
    r = permeability(seg, axis="x", device="cpu", periodic=True)
    expected = _duct_permeability(w) * w**2 / (w + 2) ** 2
    assert r.permeability == pytest.approx(expected, rel=0.02)
    assert r.porosity == pytest.approx(w**2 / (w + 2) ** 2)


def test_straight_channels_have_flow_tortuosity_one():
    a = np.ones((6, 16, 16), "uint8")
    a[:, 2:8, 3:9] = 0
    a[:, 10:14, 10:15] = 0
    seg = as_segmentation(a, phases=PHASES, voxel_size=1.0)
    r = flow_tortuosity(seg, axis="z", device="cpu")
    assert r.tau == pytest.approx(1.0, abs=1e-9)
    assert r.permeability > 0


def test_obstacles_make_flow_tortuous():
    rng = np.random.default_rng(3)
    a = np.zeros((24, 16, 16), "uint8")
    zz, yy, xx = np.ogrid[:24, :16, :16]
    for _ in range(6):
        c = rng.uniform(0, 16, 3) * [1.5, 1, 1]
        a[(zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= 9] = 1
    seg = as_segmentation(a, phases=PHASES, voxel_size=1.0)
    r = flow_tortuosity(seg, axis="z", device="cpu", periodic=True, mirror=True, tol=1e-5)
    assert r.converged
    assert 1.0 < r.tau < 2.0
    assert 0 < r.permeability < _duct_permeability(16)


def test_velocity_field_can_be_saved(tmp_path):
    seg = as_segmentation(np.zeros((2, 8, 8), "uint8"), phases=PHASES, voxel_size=1.0)
    r = permeability(seg, axis="z", device="cpu", tol=1e-5)
    path = tmp_path / "s.zarr"
    save(r.velocity.u_z, path, "velocity_z")
    back = open_store(path)["velocity_z"]
    np.testing.assert_allclose(back.values, r.velocity.u_z.values)


def test_non_percolating_pores_give_zero_permeability():
    a = np.zeros((10, 8, 8), "uint8")
    a[4:6] = 1
    seg = as_segmentation(a, phases=PHASES, voxel_size=1.0)
    r = permeability(seg, axis="z", device="cpu")
    assert r.permeability == 0.0 and math.isinf(r.tau)
    assert "does not percolate" in r.message


def test_step_limit_reports_not_converged():
    seg = as_segmentation(np.zeros((2, 24, 24), "uint8"), phases=PHASES, voxel_size=1.0)
    with pytest.warns(RuntimeWarning, match="steady state"):
        r = permeability(seg, axis="z", device="cpu", max_steps=150, check_every=50,
                         tau_plus=1.0)
    assert not r.converged and r.iterations == 150
    assert "did not reach steady state" in r.message


def test_anisotropic_voxels_are_resampled_with_a_warning():
    # a square duct seen with voxels twice as long along z: same duct on cubic voxels
    a = np.ones((4, 12, 12), "uint8")
    a[:, 2:10, 2:10] = 0
    aniso = as_segmentation(a, phases=PHASES, voxel_size=(1.0, 0.5, 0.5))
    iso = as_segmentation(np.repeat(a, 2, axis=0), phases=PHASES, voxel_size=0.5)
    with pytest.warns(UserWarning, match="cubic voxels"):
        r = permeability(aniso, device="cpu")
    ref = permeability(iso, device="cpu")
    assert r.permeability == pytest.approx(ref.permeability, rel=1e-9)
    assert r.velocity["u_z"].shape == (8, 12, 12)


def test_bad_input_is_rejected():
    seg = as_segmentation(np.zeros((4, 6, 6), "uint8"), phases=PHASES, voxel_size=1.0)
    with pytest.raises(InputError, match="phase"):
        permeability(seg, phase="am", device="cpu")
    with pytest.raises(InputError, match="tau_plus"):
        permeability(seg, tau_plus=0.5, device="cpu")
    seg2 = as_segmentation(np.zeros((6, 6), "uint8"), phases=PHASES, voxel_size=1.0)
    with pytest.raises(InputError, match="3D"):
        permeability(seg2, axis="y", device="cpu")
