"""Parameter sets of the microstructure-resolved half cell, with units and sources.

Every quantity is SI (m, s, mol, A, V, S) except where the name says otherwise. Functions of
state (open-circuit potential, exchange current density, electrolyte transport) take torch
tensors and return torch tensors, so the solver evaluates them on the device it runs on.

The default set, :func:`chen2020`, is the LG M50 NMC811 positive electrode of Chen et al.,
J. Electrochem. Soc. 167 (2020) 080534, with the Nyman et al. (Electrochim. Acta 53 (2008)
6356) LiPF6 in EC:EMC electrolyte, exactly as PyBaMM's ``"Chen2020"`` set holds it, plus the
lithium-metal counter electrode of Xu et al., J. Electrochem. Soc. 166 (2019) A3456 (PyBaMM's
``"Xu2019"``), so the 1D limit of the model can be compared with PyBaMM's DFN half cell
exactly. What the seeds and Chen2020 leave open (separator, carbon-binder domain, density,
the C-rate basis) carries the default stated beside it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from ..core.errors import InputError

__all__ = ["Parameters", "chen2020", "nmc811_seed001", "from_pybamm", "thickness_similar",
           "FARADAY", "GAS_CONSTANT"]

#: Faraday constant [C/mol] and molar gas constant [J/(mol K)] (CODATA 2018, as PyBaMM).
FARADAY = 96485.33212
GAS_CONSTANT = 8.314462618


def _torch():
    import torch

    return torch


def _ocp_chen2020(sto):
    # Chen et al. (2020) eq. 9 fit of the LG M50 NMC811 OCP (PyBaMM nmc_LGM50_ocp_Chen2020).
    t = _torch()
    return (-0.8090 * sto + 4.4875 - 0.0428 * t.tanh(18.5138 * (sto - 0.5542))
            - 17.7326 * t.tanh(15.7890 * (sto - 0.3117))
            + 17.5842 * t.tanh(15.9308 * (sto - 0.3120)))


def _i0_chen2020(c_e, c_s, c_max, temperature):
    # Chen et al. (2020) table VII: k = 3.42e-6 (A/m2)(m3/mol)^1.5, E_a = 17.8 kJ/mol.
    arrhenius = math.exp(17800.0 / GAS_CONSTANT * (1.0 / 298.15 - 1.0 / temperature))
    return 3.42e-6 * arrhenius * (c_e * c_s * (c_max - c_s)).clamp(min=0.0).sqrt()


def _diffusivity_nyman2008(c_e, temperature):
    # Nyman et al. (2008) fit, as in Chen et al. (2020) table VI.
    x = c_e / 1000.0
    return 8.794e-11 * x * x - 3.972e-10 * x + 4.862e-10


def _conductivity_nyman2008(c_e, temperature):
    x = (c_e / 1000.0).clamp(min=0.0)
    return 0.1297 * x ** 3 - 2.51 * x ** 1.5 + 3.329 * x


def _i0_lithium_xu2019(c_e, temperature):
    # Xu et al. (2019): j0 = 3.5e-8 F c_Li^0.7 c_e^0.3, c_Li = 1 / V_m with V_m = 1.3e-5 m3/mol.
    c_li = 1.0 / 1.3e-5
    return 3.5e-8 * FARADAY * c_li ** 0.7 * c_e.clamp(min=0.0) ** 0.3


@dataclasses.dataclass(frozen=True)
class Parameters:
    """A parameter set of the half cell (SI units; see the module docstring for sources).

    Parameters
    ----------
    name : str
        Label shown in reports.
    ocp : callable
        Open-circuit potential of the active material ``U(sto)`` [V] vs Li/Li+.
    exchange_current : callable
        ``i0(c_e, c_s_surf, c_s_max, T)`` [A/m^2] of the active-material reaction.
    c_s_max : float
        Maximum lithium concentration in the active material [mol/m^3].
    d_s : float
        Lithium diffusivity in the active material [m^2/s].
    sigma_am : float
        Electronic conductivity of the active material [S/m].
    sto_init : float
        Initial stoichiometry (fully delithiated electrode at the start of a discharge).
    am_density : float
        Active-material density [kg/m^3], for capacities in mAh/g.
    specific_capacity : float
        Capacity that defines 1C [mAh/g] (seed 001 section "Half-cell electrochemical
        measurements": 1C = 280 mAh/g).
    c_e_init, t_plus, tdf : float
        Initial salt concentration [mol/m^3], cation transference number, thermodynamic
        factor (constants; concentration-dependent t+ is not supported yet).
    d_e, kappa_e : callable
        Electrolyte diffusivity ``D(c_e, T)`` [m^2/s] and conductivity ``kappa(c_e, T)`` [S/m].
    lithium_exchange_current : callable
        ``i0_Li(c_e, T)`` [A/m^2] of the lithium-metal counter electrode.
    separator_thickness, separator_porosity, separator_tortuosity : float
        The homogenised separator between electrode and lithium metal [m, -, -].
    cbd_porosity : float
        Inner electrolyte porosity of the carbon-binder domain (seed 002 eq. 4: 0.5).
    cbd_tortuosity : float
        Tortuosity of the CBD's electrolyte; ``gamma = cbd_porosity / cbd_tortuosity``
        (seed 002 eq. 3). Default 4.2, seed 002's best fit (gamma = 0.12).
    sigma_cbd : float
        Bulk electronic conductivity of the CBD's solid [S/m]; the homogenised value is
        ``gamma * sigma_cbd`` (seed 002 section 4 treats the solid "likewise").
    alpha : float
        Charge-transfer coefficient (symmetric Butler-Volmer).
    temperature : float
        Cell temperature [K].
    """

    name: str = "Chen2020"
    ocp: Callable = _ocp_chen2020
    exchange_current: Callable = _i0_chen2020
    c_s_max: float = 63104.0
    d_s: float = 4.0e-15
    sigma_am: float = 0.18
    sto_init: float = 0.2661  # U(0.2661) = 4.285 V: fully delithiated (notes/echem.md 1.3)
    am_density: float = 4750.0  # NMC811 crystallographic density (assumed, notes 2.1)
    specific_capacity: float = 280.0
    c_e_init: float = 1000.0
    t_plus: float = 0.2594
    tdf: float = 1.0
    d_e: Callable = _diffusivity_nyman2008
    kappa_e: Callable = _conductivity_nyman2008
    lithium_exchange_current: Callable = _i0_lithium_xu2019
    separator_thickness: float = 25e-6  # Celgard 2325 (seed 001 cell), datasheet
    separator_porosity: float = 0.39  # Celgard 2325, as PyBaMM Xu2019
    separator_tortuosity: float = 0.39 ** -0.5  # Bruggeman 1.5
    cbd_porosity: float = 0.5
    cbd_tortuosity: float = 4.2
    sigma_cbd: float = 10.0  # assumed: carbon-binder composites are 1-100 S/m
    alpha: float = 0.5
    temperature: float = 298.15

    def replace(self, **changes):
        """A copy with some values changed (``dataclasses.replace``)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError("changes", f"parameter names of {type(self).__name__}, got "
                             f"{sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    @property
    def cbd_gamma(self):
        """Transport efficiency of the CBD, ``cbd_porosity / cbd_tortuosity`` (seed 002 eq. 3).

        Seed 002's Table 3 lists ``1/tau`` (= 2 gamma at the inner porosity 0.5)."""
        return self.cbd_porosity / self.cbd_tortuosity

    def ocv(self, sto):
        """Open-circuit potential [V] at stoichiometry ``sto`` (numbers or arrays)."""
        t = _torch()
        return np.asarray(self.ocp(t.as_tensor(np.asarray(sto, dtype=float))).numpy())

    def sto_at(self, voltage):
        """Stoichiometry where the open-circuit potential equals ``voltage`` [V]."""
        from scipy.optimize import brentq

        grid = np.linspace(1e-4, 1 - 1e-4, 2001)
        u = self.ocv(grid)
        sign = np.sign(u - voltage)
        idx = np.nonzero(sign[:-1] != sign[1:])[0]
        if idx.size == 0:
            raise InputError("voltage", f"a voltage inside the OCP range {u.min():.3f} to "
                             f"{u.max():.3f} V, got {voltage}")
        i = idx[0]
        return float(brentq(lambda s: float(self.ocv(s)) - voltage, grid[i], grid[i + 1],
                            xtol=1e-12))

    def summary(self):
        """The scalar values as a dict (functions named by their ``__name__``)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = getattr(v, "__name__", repr(v)) if callable(v) else v
        out["cbd_gamma"] = self.cbd_gamma
        return out


def chen2020(**changes):
    """The Chen2020 NMC811 set (PyBaMM ``"Chen2020"``) with a Xu2019 lithium counter electrode.

    Parameters
    ----------
    **changes
        Values to change, by field name of :class:`Parameters`.

    Returns
    -------
    Parameters

    Examples
    --------
    >>> p = chen2020()
    >>> round(float(p.ocv(p.sto_init)), 3)
    4.285
    >>> chen2020(d_s=1e-14).d_s
    1e-14
    """
    return Parameters().replace(**changes) if changes else Parameters()


def nmc811_seed001(**changes):
    """Chen2020 chemistry with the solid diffusivity and cell of seed 001.

    Seed 001 (its section "Modeling methodology") does not print its parameter table; its
    3D pristine capacity at C/2 (120 mAh/g) is matched in a 1D DFN by ``d_s = 5e-16 m^2/s``
    at Chen2020's particle radius (notes/echem.md 4a), which this set uses. The separator is
    Celgard 2325 (25 um, porosity 0.39) as in the seed's cell.

    Returns
    -------
    Parameters
    """
    base = Parameters(name="NMC811 (seed 001)", d_s=5e-16)
    return base.replace(**changes) if changes else base


class _Scaled:
    """A function of state times a constant (a class, not a closure, so it pickles to
    workers), named for :meth:`Parameters.summary`."""

    def __init__(self, fn, factor):
        self.fn, self.factor = fn, float(factor)
        self.__name__ = f"{self.factor:.4g} x {getattr(fn, '__name__', 'f')}"

    def __call__(self, *args):
        return self.factor * self.fn(*args)


def thickness_similar(parameters, ratio):
    """The parameter set under which a slab ``ratio`` times as thick as the electrode
    discharges like the electrode itself, when the current is scaled by ``ratio`` too.

    A volume imaged through only part of an electrode's thickness (or a synthetic stand-in
    thinner than the electrode it stands for) has the same microstructure per unit length
    but ``ratio`` times the length. Scaling the current density by ``ratio`` keeps the
    C-rate and thus the reaction current per particle surface; scaling the bulk transport
    coefficients (electrolyte diffusivity and conductivity, solid conductivities) by
    ``ratio**2`` keeps the transport groups of porous-electrode theory (Newman & Tiedemann,
    AIChE J. 21 (1975) 25): the ohmic drop ``i L / kappa``, the salt depletion
    ``i L (1 - t+) / (F D c0)`` and the electrolyte diffusion time ``L^2 / D`` against the
    discharge time are all unchanged. The separator is made ``ratio`` times as thick and the
    lithium counter electrode's exchange current ``ratio`` times as large, so their drops
    stay those of the real cell. What does not scale is the sampling: the slab's pore
    network is measured over ``ratio`` times the thickness, so gradients of the
    microstructure through the thickness are compressed into it.

    Parameters
    ----------
    parameters : Parameters
        The set of the real electrode.
    ratio : float
        Slab thickness over electrode thickness (0 < ratio <= 1; 1 returns the set).

    Returns
    -------
    Parameters

    Examples
    --------
    >>> p = thickness_similar(chen2020(), 0.1)
    >>> round(p.separator_thickness * 1e6, 3), round(p.sigma_am, 5)
    (2.5, 0.0018)
    """
    if not isinstance(parameters, Parameters):
        raise InputError("parameters", f"a Parameters set, got {type(parameters).__name__}")
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        r = math.nan
    if not 0 < r <= 1:
        raise InputError("ratio", f"a slab-to-electrode thickness ratio in (0, 1], got {ratio!r}")
    if r == 1:
        return parameters
    r2 = r * r
    return parameters.replace(
        d_e=_Scaled(parameters.d_e, r2), kappa_e=_Scaled(parameters.kappa_e, r2),
        sigma_am=parameters.sigma_am * r2, sigma_cbd=parameters.sigma_cbd * r2,
        separator_thickness=parameters.separator_thickness * r,
        lithium_exchange_current=_Scaled(parameters.lithium_exchange_current, r),
        name=f"{parameters.name} (thickness-similar, ratio {r:.3g})")


def _tabulate(values, key, args, grid):
    """Tabulate a PyBaMM parameter (function or constant) over ``grid`` of the first argument."""
    import pybamm

    entry = values[key]
    if not callable(entry):
        return None, float(entry)
    syms = [pybamm.Vector(grid)] + [pybamm.Scalar(a) for a in args]
    out = np.asarray(values.evaluate(entry(*syms)), dtype=float).ravel()
    if out.size == 1:
        out = np.full(grid.shape, float(out[0]))
    return out, None


def _interpolant(grid, table):
    grid = np.asarray(grid, float)
    table = np.asarray(table, float)

    def f(x, *_):
        t = _torch()
        g = t.as_tensor(grid, dtype=x.dtype, device=x.device)
        v = t.as_tensor(table, dtype=x.dtype, device=x.device)
        xc = x.clamp(float(grid[0]), float(grid[-1]))
        i = t.searchsorted(g, xc.reshape(-1).contiguous()).clamp(1, len(grid) - 1)
        x0, x1 = g[i - 1], g[i]
        w = (xc.reshape(-1) - x0) / (x1 - x0)
        return (v[i - 1] * (1 - w) + v[i] * w).reshape(x.shape)

    return f


def from_pybamm(parameter_values, name=None, points=2001, **changes):
    """Convert a PyBaMM positive-electrode parameter set into :class:`Parameters`.

    Functions of state (OCP, electrolyte diffusivity and conductivity, lithium-metal
    exchange current) are tabulated over their range (``points`` samples, linear
    interpolation); the active-material exchange current is tabulated over ``c_e`` and the
    stoichiometry on a 201 x 201 grid. Keys PyBaMM's positive-electrode half cell needs
    but a full-cell set lacks (lithium metal) fall back to the Xu2019 defaults.

    Parameters
    ----------
    parameter_values : pybamm.ParameterValues or str
        A PyBaMM parameter set, or its name (``"Chen2020"``, ``"ORegan2022"``...).
    name : str, optional
        Label of the converted set (default: the PyBaMM set's name).
    points : int
        Samples per tabulated function.
    **changes
        Values to override after the conversion.

    Returns
    -------
    Parameters

    Examples
    --------
    >>> p = from_pybamm("Chen2020")  # doctest: +SKIP
    >>> p.c_s_max  # doctest: +SKIP
    63104.0
    """
    try:
        import pybamm
    except ImportError:  # pragma: no cover
        raise ImportError("from_pybamm needs PyBaMM: pip install pybamm") from None
    label = name
    if isinstance(parameter_values, str):
        label = label or parameter_values
        parameter_values = pybamm.ParameterValues(parameter_values)
    if not isinstance(parameter_values, pybamm.ParameterValues):
        raise InputError("parameter_values", "a pybamm.ParameterValues or a set name, got "
                         f"{type(parameter_values).__name__}")
    pv = parameter_values
    temperature = float(pv["Ambient temperature [K]"])
    c_max = float(pv["Maximum concentration in positive electrode [mol.m-3]"])
    c_e0 = float(pv["Initial concentration in electrolyte [mol.m-3]"])
    sto = np.linspace(0.0, 1.0, points)
    u, u_const = _tabulate(pv, "Positive electrode OCP [V]", [], sto)
    ce = np.linspace(0.0, 4.0 * c_e0, points)
    d, d_const = _tabulate(pv, "Electrolyte diffusivity [m2.s-1]", [temperature], ce)
    k, k_const = _tabulate(pv, "Electrolyte conductivity [S.m-1]", [temperature], ce)
    tp = pv["Cation transference number"]
    t_plus = float(pv.evaluate(tp(pybamm.Scalar(c_e0), pybamm.Scalar(temperature)))) \
        if callable(tp) else float(tp)
    tdf_entry = pv["Thermodynamic factor"]
    tdf = float(pv.evaluate(tdf_entry(pybamm.Scalar(c_e0), pybamm.Scalar(temperature)))) \
        if callable(tdf_entry) else float(tdf_entry)
    ds_entry = pv["Positive particle diffusivity [m2.s-1]"]
    d_s = float(pv.evaluate(ds_entry(pybamm.Scalar(0.5), pybamm.Scalar(temperature)))) \
        if callable(ds_entry) else float(ds_entry)
    sig_entry = pv["Positive electrode conductivity [S.m-1]"]
    sigma = float(pv.evaluate(sig_entry(pybamm.Scalar(temperature)))) \
        if callable(sig_entry) else float(sig_entry)
    # Exchange current on a (c_e, sto) grid: i0 / sqrt-type laws vary smoothly there.
    i0_entry = pv["Positive electrode exchange-current density [A.m-2]"]
    ce_g = np.linspace(0.0, 4.0 * c_e0, 201)
    st_g = np.linspace(0.0, 1.0, 201)
    cc, ss = np.meshgrid(ce_g, st_g * c_max, indexing="ij")
    i0_tab = np.asarray(pv.evaluate(i0_entry(pybamm.Vector(cc.ravel()),
                                             pybamm.Vector(ss.ravel()),
                                             pybamm.Scalar(c_max),
                                             pybamm.Scalar(temperature))), float)
    i0_tab = i0_tab.reshape(cc.shape) if i0_tab.size == cc.size else np.full(cc.shape,
                                                                              float(i0_tab))

    def exchange_current(c_e, c_s, c_s_max, temp, _tab=i0_tab):
        t = _torch()
        tab = t.as_tensor(_tab, dtype=c_e.dtype, device=c_e.device)
        fe = (c_e / (4.0 * c_e0)).clamp(0, 1) * 200
        fs = (c_s / c_s_max).clamp(0, 1) * 200
        i0, j0 = fe.floor().clamp(max=199).long(), fs.floor().clamp(max=199).long()
        we, ws = fe - i0, fs - j0
        return ((1 - we) * (1 - ws) * tab[i0, j0] + we * (1 - ws) * tab[i0 + 1, j0]
                + (1 - we) * ws * tab[i0, j0 + 1] + we * ws * tab[i0 + 1, j0 + 1])

    kw = dict(
        name=label or "PyBaMM set",
        ocp=_interpolant(sto, u) if u is not None else (lambda s, _v=u_const: s * 0 + _v),
        exchange_current=exchange_current,
        c_s_max=c_max, d_s=d_s, sigma_am=sigma, c_e_init=c_e0, t_plus=t_plus, tdf=tdf,
        d_e=_interpolant(ce, d) if d is not None else (lambda c, T, _v=d_const: c * 0 + _v),
        kappa_e=_interpolant(ce, k) if k is not None else (lambda c, T, _v=k_const: c * 0 + _v),
        temperature=temperature,
        alpha=float(pv["Positive electrode charge transfer coefficient"]),
    )
    try:
        kw["separator_porosity"] = float(pv["Separator porosity"])
    except KeyError:
        pass
    c0 = pv.get("Initial concentration in positive electrode [mol.m-3]") if hasattr(pv, "get") \
        else None
    if c0 is not None and not callable(c0):
        kw["sto_init"] = float(c0) / c_max
    p = Parameters(**kw)
    return p.replace(**changes) if changes else p
