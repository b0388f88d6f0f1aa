"""Impedance of a symmetric cell under blocking conditions, by step excitation.

Seed 002 (section 4, Fig. S6) measures the ionic resistance of its electrodes in a virtual
symmetric cell under blocking conditions: two copies of the electrode facing each other
across the separator, no charge transfer, only the double layer charging on the active
material's surface. The impedance comes from the voltage response to a current step
("step excitation"). Here that experiment runs on the voxel grid of
:mod:`electromicro_dask.echem` (the same coefficient fields and reactive faces as
:func:`~electromicro_dask.echem.discharge`) and the spectrum is reduced to the pore
resistance and the electrode tortuosity of the transmission-line model:

- de Levie, Electrochim. Acta 8 (1963) 751: a blocking porous electrode is a transmission
  line, ``Z = sqrt(R_ion / (j w C)) coth(sqrt(j w R_ion C))``, whose low-frequency limit is
  ``R_ion / 3 + 1 / (j w C)``.
- Landesfeind, Hattendorff, Ehrl, Wall & Gasteiger, J. Electrochem. Soc. 163 (2016) A1373:
  ``R_ion`` from the blocking (symmetric-cell) spectrum gives the MacMullin number and the
  tortuosity, ``R_ion = L tau / (kappa eps A)``.
- Cooper, Bertei, Shearing, Kilner & Brandon, SoftwareX 5 (2016) 203 (TauFactor), whose
  ``ElectrodeSolver`` reports the same "electrode tortuosity" from the same low-frequency
  limit.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings

import numpy as np
import xarray as xr

from ..core.errors import InputError
from ..transport._common import _threads, _torch, check_memory, resolve_device
from . import _cell
from ._linalg import GraphOperator, LinearSolver, grid_edges, harmonic
from ._solver import DIRECT_MAX, _full
from .discharge import _load, _model, _validate_number

__all__ = ["ImpedanceResult", "impedance"]

#: Bytes per voxel: two potential fields, their coefficients and the factorised operator
#: (SuperLU fill on small 3D grids) or the CG work vectors.
BYTES_PER_VOXEL = 40 * 8

# TR-BDF2 (Bank et al., IEEE Trans. Electron Devices 32 (1985) 1992; Hosea & Shampine,
# Appl. Numer. Math. 20 (1996) 21) with gamma = 2 - sqrt(2): both stages use the same matrix
# K + M / (c dt), so one factorisation serves a whole block of equal steps, and the scheme
# is L-stable, which the algebraic (potential) part of this DAE needs after a current step.
_GAMMA = 2.0 - math.sqrt(2.0)
_C = _GAMMA / 2.0
_A1 = 1.0 / (_GAMMA * (2.0 - _GAMMA))
_A0 = (1.0 - _GAMMA) ** 2 / (_GAMMA * (2.0 - _GAMMA))


@dataclasses.dataclass
class ImpedanceResult:
    """Result of :func:`impedance`.

    Attributes
    ----------
    spectrum : xarray.Dataset
        Over ``frequency`` [Hz]: ``z_real`` and ``z_imag`` [Ohm cm^2] of the symmetric cell
        (electrode | separator | mirrored electrode), per cross-section of the electrode.
    pore_resistance : float
        Ionic pore resistance ``R_ion`` of one electrode [Ohm cm^2] (transmission-line
        convention: the cell's low-frequency resistance is
        ``R_sep + 2 (R_ion + R_el) / 3``).
    pore_resistance_ohm : float
        The same in Ohm for the simulated cross-section.
    tortuosity : float
        Electrode (ionic) tortuosity ``kappa_0 eps R_ion / L`` (Landesfeind et al. 2016,
        TauFactor's ``ElectrodeSolver``).
    macmullin : float
        MacMullin number ``tortuosity / porosity`` (bulk over effective conductivity).
    porosity : float
        Electrolyte volume fraction of the electrode used for ``tortuosity`` (pores, cracks
        filled with electrolyte, the CBD's inner porosity).
    thickness : float
        Electrode thickness ``L`` [um].
    separator_resistance : float
        Ionic resistance of the cell's separator in the w -> 0 limit [Ohm cm^2]: its Joule
        heat, i.e. the bulk value plus the spreading of the current into the pore mouths.
    separator_bulk_resistance : float
        ``L_sep tau_sep / (kappa_0 eps_sep A)`` of the homogenised separator [Ohm cm^2].
    electronic_resistance : float
        Electronic counterpart of ``pore_resistance`` [Ohm cm^2] (the solid rail of the
        transmission line; ~0 when the solid conducts well).
    low_frequency_resistance : float
        ``lim Re(Z - 1 / (j w C))`` of the cell as w -> 0 [Ohm cm^2].
    capacitance : float
        Low-frequency capacitance of the symmetric cell [F/cm^2] (two electrodes in series:
        half of one electrode's double-layer capacitance).
    conductivity : float
        Bulk electrolyte conductivity ``kappa_0`` at the initial salt concentration [S/m].
    time, voltage : numpy.ndarray
        The step response of the cell: time [s] and voltage [V] after a current step of
        ``step_current`` [mA/cm^2] at t = 0 (step ends and TR-BDF2 stages).
    double_layer_capacitance, step_current : float
        The inputs [F/m^2], [mA/cm^2].
    steps, factorisations : int
        Time steps and matrix factorisations of the step response.
    wall_time_s : float
    device : str
    voxels : int
        Voxels of the solved half cell (electrode and half the separator).
    excluded : dict
        Voxels left inert, by reason (solid not wired to the collector, electrolyte not
        reaching the separator).
    """

    spectrum: xr.Dataset
    pore_resistance: float
    pore_resistance_ohm: float
    tortuosity: float
    macmullin: float
    porosity: float
    thickness: float
    separator_resistance: float
    separator_bulk_resistance: float
    electronic_resistance: float
    low_frequency_resistance: float
    capacitance: float
    conductivity: float
    double_layer_capacitance: float
    step_current: float
    time: np.ndarray
    voltage: np.ndarray
    steps: int
    factorisations: int
    wall_time_s: float
    device: str
    voxels: int
    excluded: dict

    def scalars(self):
        """Scalar results as a dict (one row of a sweep table)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), (bool, int, float, str))}

    def nyquist(self, ax=None, **kwargs):
        """Nyquist plot (-Im Z against Re Z, equal aspect) on ``ax`` (a new figure if None);
        returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 4))
        kwargs.setdefault("marker", ".")
        ax.plot(self.spectrum.z_real.values, -self.spectrum.z_imag.values, **kwargs)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel(r"Re $Z$ [$\Omega$ cm$^2$]")
        ax.set_ylabel(r"$-$Im $Z$ [$\Omega$ cm$^2$]")
        ax.set_title(f"blocking symmetric cell: R_ion = {self.pore_resistance:.3g} "
                     f"Ohm cm2, tau = {self.tortuosity:.3g}", fontsize="small")
        return ax


def impedance(phases, frequencies=None, parameters=None, scenario=None, separator=25.0,
              area_factor=2.0 / 3.0, double_layer_capacitance=0.2, device="auto",
              step_current=1.0, steps_per_doubling=16, max_memory_gib=None, _method=None):
    """Impedance of a symmetric cell of a segmented electrode under blocking conditions.

    The cell is electrode | separator | mirrored electrode with current collectors on both
    outer faces (seed 002, section 4 and Fig. S6). Blocking conditions: no charge transfer,
    a double-layer capacitance on every reactive active-material face (the faces, their
    areas and the CBD weighting of seed 002 eq. 5 are those of
    :func:`~electromicro_dask.echem.discharge`), a uniform salt concentration (linear
    response: constant conductivities). The electrolyte and solid potentials are solved in
    time after a current step (TR-BDF2 on geometrically growing steps, from 1e-3 of the
    fastest face time constant until the response is a pure capacitive ramp), and the
    spectrum is the Laplace transform of that response, ``Z(s) = s V(s) / I``, evaluated
    exactly for V(t) interpolated piecewise-quadratically between the time nodes, with its
    final capacitive ramp as an analytic tail ("step excitation", seed 002 section 4).

    By the cell's mirror symmetry the potentials are antisymmetric about the separator's
    mid-plane, so the mirrored half is not stored: one electrode and half the separator are
    solved with the electrolyte potential held at the mid-plane, and the cell's voltage is
    exactly twice theirs on the same grid.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation (z, y, x), z through the thickness with the collector at z = 0,
        ``attrs["phases"]`` naming ``am`` (or ``nmc``), ``cbd``, ``pore``, ``crack``,
        micrometre coordinates.
    frequencies : array_like, optional
        Frequencies [Hz] of the spectrum (positive). Default: 10 per decade from half the
        cell's low-frequency corner ``1 / (2 pi R_lf C)`` up to ``1 / (2 pi tau_f)`` of the
        fastest face. Frequencies below the simulated time span are served by the analytic
        capacitive tail.
    parameters : Parameters, optional
        Default :func:`~electromicro_dask.echem.chen2020`. Used: the electrolyte
        conductivity ``kappa_e`` at ``c_e_init``, the solid conductivities, the separator
        and the CBD's homogenised transport (seed 002 eqs. 2-5).
    scenario : Scenario, optional
        CBD tortuosity, crack filling, pore tortuosity factor and whether AM|CBD faces are
        reactive. Film (CEI) scenarios are not part of the blocking model.
    separator : float
        Separator thickness [um], rounded to whole voxels of the z spacing (0: the two
        electrodes touch).
    area_factor : float
        Reactive area per voxel face relative to the face area (2/3 corrects the staircase
        overestimate of curved surfaces, notes/echem.md 5; 1 for axis-aligned structures).
        It scales only the capacitance, not the pore resistance.
    double_layer_capacitance : float
        Double-layer capacitance per reactive area [F/m^2]. Default 0.2 F/m^2 = 20 uF/cm^2,
        the usual order of electrode double layers (10-40 uF/cm^2, Bard & Faulkner,
        Electrochemical Methods, 2nd ed., 2001, ch. 13): an assumption that sets the time
        and frequency scale only; the pore resistance and the tortuosity do not depend on
        it.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` (sparse LU) or ``"cuda"``
        (preconditioned CG).
    step_current : float
        Amplitude of the current step [mA/cm^2]; the model is linear, so it scales
        ``voltage`` and nothing else.
    steps_per_doubling : int
        Time steps per doubling of time (accuracy of the step response: 16 gives ~2e-4
        relative on RC circuits).
    max_memory_gib : float, optional
        Cap on the memory of the solve (default: the transport cap).

    Returns
    -------
    ImpedanceResult
        The spectrum, the step response, the pore resistance ``R_ion`` per electrode and
        the tortuosity ``tau = kappa_0 eps R_ion A / L``. ``R_ion`` is the ionic part of the
        cell's low-frequency resistance: in the w -> 0 limit the response is a capacitive
        ramp on top of a constant drop ``R_lf I`` (read exactly from the late-time step
        response), and the Joule heat of that state splits ``R_lf`` exactly into the
        separator (with the spreading into the pore mouths), the electrolyte in the pores
        (``R_ion / 3`` per electrode) and the solid (``R_el / 3``):
        ``Z ~ R_sep + 2 (R_ion + R_el) / 3 + 1 / (j w C)``, the low-frequency form that
        Landesfeind et al. (2016) fit, with the solid's share kept out of ``R_ion``.
        TauFactor's ``ElectrodeSolver`` reports the same quantity but normalises by the
        image length plus its two padding layers and applies the potential one voxel
        outside the image; on small images its value is a few per cent lower.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask.core import as_segmentation
    >>> a = np.zeros((16, 1, 2), "uint8"); a[:, :, 0] = 2  # AM plates in straight pores
    >>> seg = as_segmentation(a, phases={0: "pore", 2: "am"}, voxel_size=2.0)
    >>> r = impedance(seg, separator=0.0, area_factor=1.0, device="cpu")
    >>> round(r.tortuosity, 2)  # straight channels
    1.0
    >>> ax = r.nyquist()  # doctest: +SKIP
    """
    t_wall = time.perf_counter()
    torch = _torch()
    p, sc = _model(parameters, scenario)
    if sc.film_thickness is not None:
        raise InputError("scenario", "a scenario without a CEI film: the blocking model has "
                         "no charge transfer for a film to resist")
    seg, table, spacing = _load(phases)
    c_dl = _validate_number(double_layer_capacitance, "double_layer_capacitance")
    area_factor = _validate_number(area_factor, "area_factor")
    i_mA = _validate_number(step_current, "step_current")
    sep_um = _validate_number(separator, "separator", positive=False)
    if sep_um < 0:
        raise InputError("separator", f"a thickness >= 0 um, got {separator!r}")
    if not isinstance(steps_per_doubling, (int, np.integer)) or steps_per_doubling < 2:
        raise InputError("steps_per_doubling", f"an integer >= 2, got {steps_per_doubling!r}")
    freqs = _check_frequencies(frequencies)
    dev = resolve_device(device)
    h_um = tuple(spacing[d] for d in ("z", "y", "x"))
    check_memory(int(np.prod(seg.shape)), BYTES_PER_VOXEL, max_memory_gib, "impedance solve")
    n_sep = int(round(sep_um / h_um[0]))
    if sep_um > 0 and n_sep == 0:
        n_sep = 1
    codes = np.ascontiguousarray(np.asarray(seg.values))
    # Half the separator: whole voxels up to the mid-plane; with an odd count the mid-plane
    # runs through the centres of the middle voxels, which are the fixed potential then.
    cell = _cell.build(codes, table, h_um, p, sc, n_sep // 2, area_factor)
    n_el = cell.n_electrode
    if not cell.elec[:n_el].any():
        raise InputError("phases", "an electrolyte path (pore, crack or CBD) from the "
                         "separator into the electrode; none percolates")
    if not any(w[:n_el].any() for w in cell.faces.values()):
        raise InputError("phases", "active material wired to the current collector (through "
                         "AM or CBD) that touches electrolyte reaching the separator: there "
                         "is no reactive surface to charge")
    kappa0 = float(p.kappa_e(torch.tensor(float(p.c_e_init), dtype=torch.float64),
                             p.temperature))
    if not (math.isfinite(kappa0) and kappa0 > 0):
        raise InputError("parameters", f"a positive electrolyte conductivity at c_e_init = "
                         f"{p.c_e_init} mol/m^3, got {kappa0}")
    gamma_sep = p.separator_porosity / p.separator_tortuosity
    area = cell.cross_section()  # m^2
    current = i_mA * 10.0 * area  # A
    with torch.no_grad(), _threads(int(np.prod(cell.shape)), dev):
        net = _Network(cell, kappa0, c_dl, n_sep, gamma_sep, p.separator_porosity,
                       area_factor, torch, dev)
        if _method is not None:
            net.method = _method  # tests: the CUDA path's CG on the CPU
        resp = _integrate(net, current, steps_per_doubling)
        heat_pore, heat_sep, heat_el = net.dissipation(resp["state"], current)
    # In the w -> 0 limit the faces charge in proportion to their capacitance; the Joule
    # heat of the electrode's electrolyte is then R_ion / 3 (transmission line; exact to
    # O(h^2) on the cell-centred grid for straight pores), that of its solid R_el / 3.
    # The heat in the separator, its bulk resistance plus the spreading of the current
    # into the pore mouths, is a series resistance at every frequency (part of the
    # high-frequency resistance that Landesfeind et al. fit separately) and is not
    # multiplied by three into R_ion.
    r_ion = 3.0 * heat_pore
    r_el = 3.0 * heat_el
    r_sep = 2.0 * heat_sep  # Ohm, whole separator of the cell
    r_sep_bulk = n_sep * h_um[0] * 1e-6 / (kappa0 * gamma_sep * area)
    c_cell = 0.5 * net.c_total
    if freqs is None:
        freqs = _default_frequencies(resp["r_lf"] * net.c_total, net.tau_min)
    omega = 2.0 * np.pi * freqs
    # V = W + I t / C: the ramp transforms to 1 / (j w C) exactly.
    z = 2.0 * (_transform(resp["t"], resp["w"], current, 0.0, omega) +
               1.0 / (1j * omega * net.c_total))
    a_cm2 = area * 1e4
    spectrum = xr.Dataset(
        {"z_real": ("frequency", z.real * a_cm2), "z_imag": ("frequency", z.imag * a_cm2)},
        coords={"frequency": freqs})
    spectrum["frequency"].attrs.update(units="Hz")
    for k in ("z_real", "z_imag"):
        spectrum[k].attrs.update(units="Ohm cm^2", long_name=f"{k[2:]} part of the "
                                 "symmetric cell's impedance per electrode cross-section")
    spectrum.attrs.update(model="blocking symmetric cell, step excitation",
                          double_layer_capacitance_F_per_m2=c_dl)
    thickness = n_el * h_um[0]
    porosity = _porosity(codes, table, p, sc)
    tau = kappa0 * porosity * r_ion * area / (thickness * 1e-6)
    return ImpedanceResult(
        spectrum=spectrum, pore_resistance=r_ion * a_cm2, pore_resistance_ohm=r_ion,
        tortuosity=tau, macmullin=tau / porosity if porosity > 0 else math.inf,
        porosity=porosity, thickness=thickness, separator_resistance=r_sep * a_cm2,
        separator_bulk_resistance=r_sep_bulk * a_cm2,
        electronic_resistance=r_el * a_cm2,
        low_frequency_resistance=2.0 * resp["r_lf"] * a_cm2,
        capacitance=c_cell / a_cm2, conductivity=kappa0, double_layer_capacitance=c_dl,
        step_current=i_mA, time=resp["t"],
        voltage=2.0 * (resp["w"] + current * resp["t"] / net.c_total), steps=resp["steps"],
        factorisations=resp["factorisations"], wall_time_s=time.perf_counter() - t_wall,
        device=str(dev), voxels=int(np.prod(cell.shape)), excluded=dict(cell.excluded))


def _check_frequencies(frequencies):
    if frequencies is None:
        return None
    try:
        f = np.asarray(frequencies, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError("frequencies", f"an array of positive frequencies in Hz, got "
                         f"{frequencies!r}") from None
    if f.size == 0 or not np.all(np.isfinite(f)) or not np.all(f > 0):
        raise InputError("frequencies", "positive, finite frequencies in Hz (at least one)")
    return f


def _default_frequencies(tau_lf, tau_min):
    # From where the capacitive line is twice the low-frequency resistance tall (the Nyquist
    # plot keeps the transmission-line region legible at equal aspect) ...
    lo = 0.5 / (2.0 * np.pi * tau_lf)
    # ... to the time constant of the fastest face.
    hi = max(1.0 / (2.0 * np.pi * tau_min), 100.0 * lo)
    n = int(np.ceil(10 * np.log10(hi / lo))) + 1
    return np.logspace(np.log10(lo), np.log10(hi), n)


def _porosity(codes, table, p, sc):
    """Electrolyte volume fraction of the electrode, the ``eps`` of ``tau = kappa eps R A / L``
    (all electrolyte, connected or not, as TauFactor's volume fraction)."""
    eps = np.zeros(codes.shape)
    for code, name in table.items():
        m = codes == code
        if name == "pore" or (name == "crack" and sc.cracks == "electrolyte"):
            eps[m] = 1.0
        elif name == "cbd":
            eps[m] = p.cbd_porosity
        elif name == "separator":
            eps[m] = p.separator_porosity
    return float(eps.mean())


class _Network:
    """The half cell as an RC network on the voxel grid.

    Unknowns are stacked as (field, z, y, x), field 0 the solid potential and field 1 the
    electrolyte potential (the layout of the discharge solver, so :class:`LinearSolver`'s
    direct and two-level CG paths apply). ``K`` holds the conductances (harmonic face means,
    the collector over half a voxel on the solid at z = 0, the mid-plane of the separator as
    the fixed potential 0 of the electrolyte); ``M`` the double-layer capacitors between an AM
    voxel and its electrolyte-bearing neighbour. The collector potential V is the extra
    unknown of galvanostatic control."""

    def __init__(self, cell, kappa0, c_dl, n_sep, gamma_sep, sep_porosity, area_factor,
                 torch, device):
        self.torch, self.device, self.cell = torch, device, cell
        f64 = torch.float64

        def T(a):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=f64, device=device)

        shape = cell.shape
        N = int(np.prod(shape))
        self.shape = (2,) + shape
        sp = cell.spacing
        aoh = [cell.area(ax) / sp[ax] for ax in range(3)]
        solid = torch.as_tensor(cell.solid, device=device)
        elec = torch.as_tensor(cell.elec, device=device)
        self.mask = torch.stack([solid, elec])
        sig = T(cell.sigma)
        kap = T(cell.gamma_k) * kappa0
        T_s = [harmonic(torch, sig, ax, aoh[ax]) for ax in range(3)]
        T_e = [harmonic(torch, kap, ax, aoh[ax]) for ax in range(3)]
        rows, cols, parts = [], [], []
        for ax in range(3):
            p, q, pi = grid_edges(torch, solid, solid, ax, 1)
            rows.append(p), cols.append(q), parts.append(_full(torch, T_s[ax], ax).reshape(-1)[pi])
        n_cond = sum(x.numel() for x in parts)
        # Share of each electrolyte link's resistance (so of its Joule heat) that lies in the
        # electrode: links across the electrode | separator plane split at the plane.
        layer_size = shape[1] * shape[2]
        n_el = cell.n_electrode
        inv_k = torch.where(kap > 0, 1.0 / torch.where(kap > 0, kap, 1.0), 0.0).reshape(-1)
        share = []
        for ax in range(3):
            p, q, pi = grid_edges(torch, elec, elec, ax, 1, N, N)
            rows.append(p), cols.append(q), parts.append(_full(torch, T_e[ax], ax).reshape(-1)[pi])
            in_el = (pi // layer_size < n_el).to(f64)
            if ax == 0:
                nb = pi + layer_size
                cross = (pi // layer_size == n_el - 1)
                frac = inv_k[pi] / (inv_k[pi] + inv_k[nb])
                in_el = torch.where(cross, frac, in_el)
            share.append(in_el)
        self.electrode_share = torch.cat(share)
        caps = []
        for d in _cell.DIRECTIONS:
            w = T(cell.faces[d])
            if not bool((w > 0).any()):
                continue
            p, q, pi = grid_edges(torch, w > 0, elec, d[0], d[1], 0, N)
            rows.append(p), cols.append(q), caps.append(c_dl * w.reshape(-1)[pi])
        cond = torch.cat(parts)
        cap = torch.cat(caps) if caps else cond.new_zeros(0)
        self.k_edges = torch.cat([cond, cap.new_zeros(cap.numel())])
        self.m_edges = torch.cat([cond.new_zeros(cond.numel()), cap])
        self.n_solid_edges = n_cond
        self.n_cond_edges = cond.numel()
        self.op = GraphOperator(torch, torch.cat(rows), torch.cat(cols), 2 * N, device)
        # Collector: the solid at z = 0 over half a voxel (as the discharge model).
        g = torch.zeros(self.shape, dtype=f64, device=device)
        g[0, 0] = torch.where(solid[0], 2.0 * sig[0] * aoh[0], 0.0)
        self.g = g
        self.g_sum = float(g.sum())
        self.ramp = torch.zeros(self.shape, dtype=f64, device=device)
        self.ramp[0] = solid.to(f64)
        # Mid-plane of the separator: half a voxel of the top layer plus, for an odd number
        # of separator voxels, half a voxel of separator up to the middle voxels' centres.
        extra = 0.5 * sp[0] if n_sep % 2 else 0.0
        k_top = kap[-1]
        r_top = 0.5 * sp[0] / torch.where(k_top > 0, k_top, 1.0) + \
            extra / (kappa0 * gamma_sep)
        ground = torch.zeros(self.shape, dtype=f64, device=device)
        ground[1, -1] = torch.where(elec[-1] & (k_top > 0), cell.area(0) / r_top, 0.0)
        self.ground = ground
        self.ground_share = 0.5 * sp[0] / torch.where(k_top > 0, k_top, 1.0) / r_top \
            if n_el == shape[0] else torch.zeros_like(r_top)
        # One separator voxel: the AM of the top layer faces the middle voxels, whose
        # potential is fixed, so those capacitors go to ground (the build made no separator
        # layer to carry them).
        m_ground = torch.zeros(self.shape, dtype=f64, device=device)
        if n_sep == 1:
            top_am = torch.as_tensor(cell.am[-1], device=device)
            m_ground[0, -1] = torch.where(top_am, c_dl * area_factor * sep_porosity *
                                          cell.area(0), 0.0)
        self.m_ground = m_ground
        self.k_diag = (g + ground).reshape(-1)
        self.m_diag = m_ground.reshape(-1)
        self.K, kd = self.op.assemble(self.k_edges, self.k_diag)
        self.M, _ = self.op.assemble(self.m_edges, self.m_diag)
        self.c_total = float(cap.sum()) + float(m_ground.sum())
        # Identity rows off the fields, scaled like the conductances (as the discharge
        # solver does, for SuperLU's pivoting).
        scale = max(float(cond.abs().max()) if cond.numel() else 0.0, self.g_sum, 1e-300)
        self.inactive = (~self.mask).to(f64).reshape(-1) * scale
        # Fastest time constant: one face charging through the conductances of its two
        # voxels alone (a lower bound of the network's).
        kd = kd.reshape(-1)
        src, dst = self.op.rows[self.n_cond_edges:], self.op.cols[self.n_cond_edges:]
        if cap.numel():
            tau = cap * (1.0 / kd[src].clamp(min=1e-300) + 1.0 / kd[dst].clamp(min=1e-300))
            self.tau_min = float(tau.min())
        else:
            sel = self.m_diag > 0
            self.tau_min = float((self.m_diag[sel] / kd[sel]).min())
        n_unknowns = 2 * N
        self.method = "direct" if device.type == "cpu" and n_unknowns <= DIRECT_MAX else "cg"
        self.cond_edges = (self.op.rows[:self.n_cond_edges], self.op.cols[:self.n_cond_edges],
                           cond)

    def apply_k(self, x):
        return (self.K @ x.reshape(-1)).reshape(self.shape)

    def apply_m(self, x):
        return (self.M @ x.reshape(-1)).reshape(self.shape)

    def factor(self, c):
        """A solver for ``K + c M`` (``c = 1 / (time step factor)``)."""
        a, d = self.op.assemble(self.k_edges + c * self.m_edges,
                                self.k_diag + c * self.m_diag + self.inactive)
        if self.method == "direct":
            return _SymmetricLU(self.torch, a.m, self.shape)
        return LinearSolver(self.torch, a, d, self.mask, self.method, 1e-12)

    def dissipation(self, x, current):
        """Joule heat of the state ``x = (phi, V)`` per current squared [Ohm]: in the
        electrolyte of the electrode, in the electrolyte of the (half) separator and in the
        solid with its collector link."""
        phi, V = x
        flat = phi.reshape(-1)
        rows, cols, cond = self.cond_edges
        heat = cond * (flat[rows] - flat[cols]) ** 2
        el = float(heat[:self.n_solid_edges].sum()) + float((self.g * (V - phi) ** 2).sum())
        h_e = heat[self.n_solid_edges:]
        h_top = self.ground[1, -1] * phi[1, -1] ** 2
        pore = float((h_e * self.electrode_share).sum()) + \
            float((h_top * self.ground_share).sum())
        sep = float(h_e.sum()) + float(h_top.sum()) - pore
        return pore / current ** 2, sep / current ** 2, el / current ** 2


class _SymmetricLU:
    """SuperLU for an SPD matrix: a symmetric fill-reducing ordering and diagonal pivots.

    The operator is SPD, so pivoting on the diagonal is stable, and keeping the symmetric
    ordering of A + A^T instead of letting partial pivoting reorder the rows cuts the fill
    (and the time) of a factorisation about tenfold on these grids."""

    def __init__(self, torch, a, shape):
        from scipy.sparse.linalg import splu

        self.torch, self.shape = torch, shape
        self.lu = splu(a.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})

    def solve(self, b):
        x = self.lu.solve(b.reshape(-1).numpy())
        return self.torch.from_numpy(x).reshape(self.shape), 0


def _integrate(net, current, k, max_blocks=200, rtol=1e-7):
    """Step response of ``M x' + K x = g V`` with ``g . (V - x) = I`` (current switched on at
    t = 0 from rest).

    ``net`` provides ``apply_k``, ``apply_m``, ``factor(c)``, ``g``, ``g_sum``, ``c_total``,
    ``tau_min`` and ``ramp``, the unknowns that rise with the collector in the capacitive
    limit (``K ramp = g``). The late response is dominated by that ramp,
    ``V ~ R_lf I + I t / C``, whose size would swamp ``R_lf`` in round-off; so the unknowns
    are the deviations ``y = x - a(t) ramp``, ``W = V - a(t)`` with ``a = I t / C``, which
    obey ``M y' + K y = g W - (I / C) M ramp`` and stay of the size of ``R_lf I``.

    Blocks of ``2k`` then ``k`` equal steps, the step doubling from block to block, so that
    dt / t stays between 1 / (2k) and 1 / k: one factorisation per doubling of time. The run
    stops when ``W`` (-> ``R_lf I``) has stopped changing over a doubling of time and t
    exceeds 20 ``R_lf C`` (further on, W would only collect round-off: the collector's
    coupling to the electrolyte, ``~ C / dt``, fades against the conductances). Returns the
    nodes (step ends and TR stages) with ``W``, the final deviation state and ``R_lf``."""
    torch = net.torch
    g, G = net.g, net.g_sum
    c_tot = net.c_total
    src = -(current / c_tot) * net.apply_m(net.ramp)

    def stage(lin, xb, rhs):
        xa, _ = lin.solve(rhs)
        W = (current + float((g * xa).sum())) / (G - float((g * xb).sum()))
        return xa + W * xb, W

    # t = 0+: the capacitors have no charge yet; a backward-Euler step far shorter than any
    # time constant finds that state.
    dt0 = 1e-6 * net.tau_min
    lin = net.factor(1.0 / dt0)
    xb, _ = lin.solve(g)
    y, W = stage(lin, xb, src + torch.zeros_like(g))
    ts, ws = [0.0], [W]
    t, dt = dt0, 1e-3 * net.tau_min
    n_fact, steps = 1, 0
    w_prev = None
    for block in range(max_blocks):
        cb = 1.0 / (_C * dt)
        lin = net.factor(cb)
        n_fact += 1
        xb, _ = lin.solve(g)
        for _ in range(2 * k if block == 0 else k):
            f_n = g * W - net.apply_k(y) + src
            y_g, W_g = stage(lin, xb, cb * net.apply_m(y) + f_n + src)
            y_new, W_new = stage(lin, xb, cb * net.apply_m(_A1 * y_g - _A0 * y) + src)
            ts += [t + _GAMMA * dt, t + dt]
            ws += [W_g, W_new]
            y, W, t = y_new, W_new, t + dt
            steps += 1
        tau_lf = abs(W / current) * c_tot
        if w_prev is not None and abs(W - w_prev) <= rtol * abs(W) and t >= 20.0 * tau_lf:
            break
        if w_prev is not None and t >= 1e3 * tau_lf:
            warnings.warn(f"the step response did not settle to a capacitive ramp (relative "
                          f"change {abs(W - w_prev) / abs(W):.2g} over the last doubling of "
                          f"time at t = {t:.3g} s); the low-frequency resistance may be "
                          "inaccurate", RuntimeWarning, stacklevel=3)
            break
        w_prev = W
        dt *= 2.0
    return {"t": np.asarray(ts), "w": np.asarray(ws), "state": (y, W),
            "r_lf": W / current, "steps": steps, "factorisations": n_fact}


def _transform(t, v, current, slope, omega):
    """``Z(j w) = j w L{V}(j w) / I`` of a step response sampled at ``t`` (``t[0] = 0``,
    ``v[0]`` the value just after the step), continued after the last sample as the ramp
    ``dV/dt = slope * current``.

    ``s L{V} = V(0+) + L{V'}``. Between samples the response is the parabola through each
    step's three nodes (start, TR stage, end: ``t`` has odd length), so the error of the
    representation is third order in the step, as small as that of the time integration;
    each piece and the tail are integrated against ``e^{-st}`` exactly:
    ``int_0^1 (a + 2 b u) e^{-x u} du = a E0(x) + 2 b E1(x)`` with ``x = s h``."""
    t = np.asarray(t, float)
    v = np.asarray(v, float)
    if t.size % 2 == 0:
        raise ValueError("the step response needs an odd number of nodes (2 per step)")
    s = 1j * np.asarray(omega, float)[:, None]
    t0, tm, t1 = t[:-1:2], t[1::2], t[2::2]
    v0, vm, v1 = v[:-1:2], v[1::2], v[2::2]
    h = t1 - t0
    r = (tm - t0) / h
    # V = v0 + a u + b u^2 on u = (t - t0) / h in [0, 1], through (r, vm) and (1, v1).
    b = ((vm - v0) - r * (v1 - v0)) / (r * r - r)
    a = (v1 - v0) - b
    x = s * h[None, :]
    e0, e1 = _e01(x)
    seg = (np.exp(-s * t0[None, :]) * (a[None, :] * e0 + 2.0 * b[None, :] * e1)).sum(axis=1)
    tail = slope * current * np.exp(-s[:, 0] * t[-1]) / s[:, 0]
    return (v[0] + seg + tail) / current


def _e01(x):
    """``E0 = int_0^1 e^{-xu} du`` and ``E1 = int_0^1 u e^{-xu} du``, by their Taylor series
    where |x| is small (the closed forms cancel there)."""
    small = np.abs(x) < 0.1
    xs = np.where(small, 0.0, x)
    xs = np.where(small, 1.0, xs)
    em = np.exp(-xs)
    e0c = -np.expm1(-xs) / xs
    e1c = (1.0 - (1.0 + xs) * em) / (xs * xs)
    # Series: E0 = sum (-x)^n / (n+1)!, E1 = sum (-x)^n / (n! (n+2)).
    e0s = np.zeros_like(x)
    e1s = np.zeros_like(x)
    term = np.ones_like(x)  # (-x)^n / n!
    for n in range(10):
        e0s = e0s + term / (n + 1)
        e1s = e1s + term / (n + 2)
        term = term * (-x) / (n + 1)
    return np.where(small, e0s, e0c), np.where(small, e1s, e1c)
