"""References for the voxel model: PyBaMM's DFN half cell set up to match it, and the
analytic surface concentration of a plane sheet filled through one face.

PyBaMM (Sulzer et al., J. Open Res. Softw. 9 (2021) 14) solves the Doyle-Fuller-Newman model
with a lithium-metal counter electrode (``"working electrode": "positive"``). With
``"transport efficiency": "tortuosity factor"`` its effective transport is ``eps / tau``
(seed 002's gamma), so a laterally homogeneous voxel structure (straight AM plates in
straight electrolyte channels, tau = 1) is exactly its 1D limit when the particle radius is
``3 eps_AM / a`` with ``a`` the reactive area per volume (notes/echem.md 6, case 5).
"""

from __future__ import annotations

import time

import numpy as np

from ..core.errors import InputError
from .parameters import FARADAY, Parameters, chen2020

__all__ = ["pybamm_discharge", "plane_sheet_surface"]


def pybamm_discharge(thickness, am_fraction, porosity, specific_area, current, cutoff=3.5,
                     parameters=None, separator=None, points=40):
    """Discharge PyBaMM's DFN half cell with the parameters of a voxel simulation.

    Functions of state (OCP, exchange current, electrolyte transport) are PyBaMM's
    ``"Chen2020"`` ones, which :func:`~electromicro_dask.echem.chen2020` reproduces; the
    scalars (``c_s_max``, ``d_s``, ``sigma_am``, ``sto_init``, ``t_plus``, separator,
    temperature) come from ``parameters``. The counter electrode is Xu2019's lithium metal.

    Parameters
    ----------
    thickness : float
        Electrode thickness [um].
    am_fraction, porosity : float
        Volume fractions of the AM and of the electrolyte in the electrode.
    specific_area : float
        Reactive area per electrode volume [1/um]; sets the particle radius
        ``3 am_fraction / specific_area``.
    current : float
        Current density [mA/cm^2].
    cutoff : float
        Lower voltage cutoff [V].
    parameters : Parameters, optional
        Default :func:`~electromicro_dask.echem.chen2020`.
    separator : float, optional
        Separator thickness [um] (default ``parameters.separator_thickness``).
    points : int
        Mesh points per domain and in the particle.

    Returns
    -------
    dict
        ``time`` [s] and ``voltage`` [V] arrays, ``capacity`` [mAh/g] (with
        ``parameters.am_density``), ``areal_capacity`` [mAh/cm^2], ``wall_time_s``.
    """
    try:
        import pybamm
    except ImportError:  # pragma: no cover
        raise ImportError("pybamm_discharge needs PyBaMM: pip install pybamm") from None
    p = parameters if parameters is not None else chen2020()
    if not isinstance(p, Parameters):
        raise InputError("parameters", f"a Parameters set, got {type(p).__name__}")
    for name, v in (("thickness", thickness), ("specific_area", specific_area),
                    ("current", current)):
        if not v > 0:
            raise InputError(name, f"a positive number, got {v!r}")
    sep = p.separator_thickness if separator is None else separator * 1e-6
    pv = pybamm.ParameterValues("Chen2020")
    pv.update({
        "Lithium metal partial molar volume [m3.mol-1]": 1.3e-5,
        "Exchange-current density for lithium metal electrode [A.m-2]":
            lambda c_e, c_li, T: 3.5e-8 * FARADAY * c_li ** 0.7 * c_e ** 0.3,
        "Negative electrode OCP [V]": 0.0,
        "Negative electrode conductivity [S.m-1]": 1.0776e7,
        "Positive electrode thickness [m]": thickness * 1e-6,
        "Positive electrode active material volume fraction": am_fraction,
        "Positive electrode porosity": porosity,
        "Positive particle radius [m]": 3 * am_fraction / (specific_area * 1e6),
        "Positive particle diffusivity [m2.s-1]": p.d_s,
        "Positive electrode conductivity [S.m-1]": p.sigma_am,
        "Maximum concentration in positive electrode [mol.m-3]": p.c_s_max,
        "Separator thickness [m]": sep,
        "Separator porosity": p.separator_porosity,
        "Positive electrode tortuosity factor (electrolyte)": 1.0,
        "Positive electrode tortuosity factor (electrode)": 1.0,
        "Separator tortuosity factor (electrolyte)": p.separator_tortuosity,
        "Initial concentration in positive electrode [mol.m-3]": p.sto_init * p.c_s_max,
        "Initial concentration in electrolyte [mol.m-3]": p.c_e_init,
        "Cation transference number": p.t_plus,
        "Ambient temperature [K]": p.temperature,
        "Initial temperature [K]": p.temperature,
        "Lower voltage cut-off [V]": cutoff, "Upper voltage cut-off [V]": 5.0,
        "Current function [A]": current * 10.0,
        "Electrode height [m]": 1.0, "Electrode width [m]": 1.0,
    }, check_already_exists=False)
    model = pybamm.lithium_ion.DFN(options={"working electrode": "positive",
                                            "transport efficiency": "tortuosity factor"})
    var_pts = {"x_n": points, "x_s": points, "x_p": points, "r_n": points, "r_p": points}
    t0 = time.perf_counter()
    sim = pybamm.Simulation(model, parameter_values=pv, var_pts=var_pts)
    fill = FARADAY * p.c_s_max * (1 - p.sto_init) * am_fraction * thickness * 1e-6 / \
        (current * 10.0)
    sol = sim.solve([0, 1.5 * fill])
    wall = time.perf_counter() - t0
    t = np.asarray(sol["Time [s]"].entries, float)
    v = np.asarray(sol["Voltage [V]"].entries, float)
    mass = p.am_density * am_fraction * thickness * 1e-6 * 1e3  # g per m^2
    return {"time": t, "voltage": v, "capacity": current * 10.0 * t[-1] / 3.6 / mass,
            "areal_capacity": current * t[-1] / 3600.0, "wall_time_s": wall}


def plane_sheet_surface(t, flux, thickness, diffusivity, c0=0.0, terms=2000):
    """Surface concentration of a plane sheet filled at a constant flux through one face.

    A sheet ``0 < x < L`` with no flux at ``x = 0`` and the molar flux ``q`` entering at
    ``x = L`` from ``t = 0`` (Carslaw & Jaeger, Conduction of Heat in Solids, 2nd ed.,
    section 3.3; Crank, The Mathematics of Diffusion, 2nd ed., section 4.3.3)::

        c(L, t) = c0 + q t / L + q L / (3 D)
                  - (2 q L / (pi^2 D)) sum_n exp(-D n^2 pi^2 t / L^2) / n^2

    Parameters
    ----------
    t : float or array_like
        Time [s].
    flux : float
        Molar flux into the sheet [mol m^-2 s^-1].
    thickness : float
        ``L`` [m].
    diffusivity : float
        ``D`` [m^2/s].
    c0 : float
        Initial (uniform) concentration [mol/m^3].
    terms : int
        Terms of the series.

    Returns
    -------
    numpy.ndarray
        ``c(L, t)`` [mol/m^3], the shape of ``t``.

    Examples
    --------
    >>> float(plane_sheet_surface(0.0, 1e-5, 4e-6, 5e-16))
    0.0
    """
    from scipy.special import erfc

    t = np.asarray(t, dtype=float)
    big_n = int(terms)
    n = np.arange(1, big_n + 1).reshape((-1,) + (1,) * t.ndim)
    a = diffusivity * np.pi ** 2 / thickness ** 2 * t
    # sum_n exp(-a n^2) / n^2 = pi^2 / 6 + sum_n (exp(-a n^2) - 1) / n^2, the terms past
    # big_n by their integral: exact at t = 0, where the plain series converges as 1/N
    tail = (1.0 - np.exp(-a * big_n ** 2)) / big_n + np.sqrt(np.pi * a) * erfc(big_n * np.sqrt(a))
    series = np.pi ** 2 / 6.0 + (np.expm1(-a * n ** 2) / n ** 2).sum(axis=0) - tail
    return (c0 + flux * t / thickness + flux * thickness / (3.0 * diffusivity)
            - 2.0 * flux * thickness / (np.pi ** 2 * diffusivity) * series)
