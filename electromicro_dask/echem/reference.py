"""The 1D reference: PyBaMM's DFN half cell set up to match the voxel model.

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

__all__ = ["pybamm_discharge"]


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
