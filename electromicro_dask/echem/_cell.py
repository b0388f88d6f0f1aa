"""The half cell on the voxel grid: coefficient fields, reactive faces and boundaries.

z (axis 0) runs through the thickness: the current collector lies on the z = 0 face, the
homogenised separator is appended beyond the last electrode layer and the lithium metal lies
on its outer face (notes/echem.md 1.3). Every field lives on the same (nz + n_sep, ny, nx)
grid; voxels without a field carry a zero coefficient, so phase boundaries are no-flux
through the harmonic face means (Patankar, Numerical Heat Transfer and Fluid Flow, 1980,
section 4.2-3).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from ..core.errors import InputError

__all__ = []

#: The six face directions (axis, step) a reactive AM face can point in.
DIRECTIONS = ((0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1))
ELECTROLYTE_NAMES = ("pore", "crack")
AM_NAMES = ("am", "nmc")
KNOWN = ELECTROLYTE_NAMES + AM_NAMES + ("cbd", "separator")


@dataclasses.dataclass
class Cell:
    shape: tuple
    spacing: tuple  # metres, per axis
    n_electrode: int  # layers of the electrode (the rest is separator)
    am: np.ndarray  # active AM voxels (connected to the collector)
    solid: np.ndarray  # active electron-conducting voxels
    elec: np.ndarray  # active electrolyte-bearing voxels
    eps: np.ndarray  # electrolyte volume fraction
    gamma_k: np.ndarray  # transport efficiency for ionic conduction
    gamma_d: np.ndarray  # transport efficiency for salt diffusion
    sigma: np.ndarray  # electronic conductivity [S/m]
    ds_faces: list  # per axis: solid-diffusion face factor (1 within a particle, else 0)
    faces: dict  # direction -> reactive face area [m^2] (0 where none)
    film: dict  # direction -> series film resistance [Ohm m^2] (or empty)
    bottom: str
    top: str
    excluded: dict  # voxels left inert, by reason
    migration_only: float = 0.0  # share of pore/crack electrolyte fed only through clogged CBD

    @property
    def volume(self):
        return float(np.prod(self.spacing))

    def area(self, axis):
        s = self.spacing
        return float(np.prod([s[a] for a in range(3) if a != axis]))

    def cross_section(self):
        """Electrode cross-section normal to z [m^2]."""
        return self.area(0) * self.shape[1] * self.shape[2]


def _connected_to(mask, layer):
    """Voxels of ``mask`` 6-connected to its voxels in z-layer ``layer`` (0 or -1)."""
    lab, n = ndimage.label(mask)
    if n == 0:
        return np.zeros_like(mask)
    keep = np.unique(lab[layer])
    keep = keep[keep > 0]
    return np.isin(lab, keep)


def build(codes, table, spacing_um, params, scenario, separator_layers, area_factor,
          particles=None, bottom="collector", top="lithium"):
    """Build a :class:`Cell` from integer phase codes (z, y, x) and their names."""
    names = {int(k): str(v) for k, v in table.items()}
    present = {names.get(int(c), None) for c in np.unique(codes)}
    unknown = sorted(str(p) for p in present if p not in KNOWN)
    if unknown:
        raise InputError("phases", f"phases named among {list(KNOWN)}; {unknown} have no "
                         "electrochemical meaning here (rename or merge them first)")
    spacing = tuple(float(s) * 1e-6 for s in spacing_um)

    def is_(*labels):
        m = np.zeros(codes.shape, bool)
        for code, name in names.items():
            if name in labels:
                m |= codes == code
        return m

    am = is_(*AM_NAMES)
    cbd = is_("cbd")
    pore = is_("pore")
    crack = is_("crack")
    sep_phase = is_("separator")
    p, sc = params, scenario
    eps = np.zeros(codes.shape)
    gk = np.zeros(codes.shape)
    sig = np.zeros(codes.shape)
    pore_gamma = 1.0 / sc.pore_tortuosity_factor
    eps[pore] = 1.0
    gk[pore] = pore_gamma
    if sc.cracks == "electrolyte":
        eps[crack] = 1.0
        gk[crack] = pore_gamma
    gamma_cbd = sc.cbd_gamma(p)
    eps[cbd] = p.cbd_porosity
    gk[cbd] = gamma_cbd
    sig[cbd] = gamma_cbd * p.sigma_cbd
    sig[am] = p.sigma_am
    gamma_sep = p.separator_porosity / p.separator_tortuosity
    eps[sep_phase] = p.separator_porosity
    gk[sep_phase] = gamma_sep
    if not sc.cbd_conduction:
        # CBD clogging as notes/echem.md 1.4 reads it: gamma_e = 0 in the CBD, which then
        # holds no electrolyte (its AM faces fall silent, pores behind it drop out below).
        eps[cbd] = 0.0
        gk[cbd] = 0.0
    gd = gk.copy()
    if not sc.cbd_diffusion:
        # CBD clogging with the CBD's conduction kept (seed 001 Fig. 5C): salt cannot
        # diffuse through the CBD; the reaction on AM|CBD faces goes on with the
        # electrolyte that is locally there.
        gd[cbd] = 0.0
    n_el = codes.shape[0]
    if separator_layers:
        pad = ((0, separator_layers), (0, 0), (0, 0))
        eps = np.pad(eps, pad, constant_values=p.separator_porosity)
        gk = np.pad(gk, pad, constant_values=gamma_sep)
        gd = np.pad(gd, pad, constant_values=gamma_sep)
        sig = np.pad(sig, pad)
        am = np.pad(am, pad)
        cbd = np.pad(cbd, pad)
        if particles is not None:
            particles = np.pad(particles, pad)
    shape = eps.shape
    excluded = {}
    # Inert parts: solid not wired to the collector, electrolyte not reaching the counter
    # electrode. They carry no current in steady state, so leaving them out changes nothing
    # but the conditioning.
    solid0 = sig > 0
    solid = _connected_to(solid0, 0 if bottom == "collector" else -1) if solid0.any() else solid0
    if top == "collector" and solid0.any():
        solid = solid | _connected_to(solid0, -1)
    excluded["solid not connected to the collector"] = int((solid0 & ~solid).sum())
    elec0 = gk > 0
    if top == "lithium" and elec0.any():
        elec = _connected_to(elec0, -1)
        if bottom == "lithium":
            elec = elec | _connected_to(elec0, 0)
    else:
        elec = np.zeros_like(elec0)
    excluded["electrolyte not connected to the separator"] = int((elec0 & ~elec).sum())
    migration_only = 0.0
    if not sc.cbd_diffusion and sc.cbd_conduction and top == "lithium" and elec.any():
        # Pores that reach the counter electrode only through clogged CBD get their current
        # by migration but no salt by diffusion, so their salt runs down (seed 001 Fig. 5C).
        # A cut-out whose pores percolate only through the CBD is one such pocket as a whole.
        free = (elec & ~cbd)[:n_el]
        fed = _connected_to(elec & (gd > 0), -1)[:n_el]
        migration_only = float((free & ~fed).sum() / max(free.sum(), 1))
    am_active = am & solid
    sig = np.where(solid, sig, 0.0)
    gk = np.where(elec, gk, 0.0)
    gd = np.where(elec, gd, 0.0)
    eps = np.where(elec, eps, 0.0)
    # Reactive faces: AM voxel P with an electrolyte-bearing neighbour N; the reaction
    # scales with N's electrolyte fraction (seed 002 eq. 5: AM|CBD faces x eps_CBD).
    faces, film = {}, {}
    for ax, s in DIRECTIONS:
        nb_eps = _shift(eps, ax, s)
        w = np.where(am_active & (nb_eps > 0), nb_eps, 0.0) * cell_area(spacing, ax)
        w *= area_factor
        if not sc.cbd_reactive:
            w[_shift(cbd, ax, s)] = 0.0
        faces[(ax, s)] = w
        if sc.film_thickness is not None:
            thick = np.asarray(sc.film_thickness[(ax, s)], float)
            if thick.shape != codes.shape:
                raise InputError("scenario", f"film thickness arrays of the segmentation's "
                                 f"shape {codes.shape}, got {thick.shape}")
            if separator_layers:
                thick = np.pad(thick, ((0, separator_layers), (0, 0), (0, 0)))
            film[(ax, s)] = np.where(w > 0, thick * sc.film_resistivity, 0.0)
    ds_faces = []
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax] = slice(0, -1)
        hi[ax] = slice(1, None)
        f = am_active[tuple(lo)] & am_active[tuple(hi)]
        if particles is not None:
            f &= particles[tuple(lo)] == particles[tuple(hi)]
        ds_faces.append(f.astype(float))
    return Cell(shape=shape, spacing=spacing, n_electrode=n_el, am=am_active, solid=solid,
                elec=elec, eps=eps, gamma_k=gk, gamma_d=gd, sigma=sig, ds_faces=ds_faces,
                faces=faces, film=film, bottom=bottom, top=top, excluded=excluded,
                migration_only=migration_only)


def cell_area(spacing, axis):
    return float(np.prod([spacing[a] for a in range(3) if a != axis]))


def _shift(x, ax, s):
    """``y[P] = x[P + s e_ax]`` with zeros where ``P + s`` falls outside."""
    y = np.zeros_like(x)
    src = [slice(None)] * 3
    dst = [slice(None)] * 3
    if s > 0:
        src[ax], dst[ax] = slice(s, None), slice(0, -s)
    else:
        src[ax], dst[ax] = slice(0, s), slice(-s, None)
    y[tuple(dst)] = x[tuple(src)]
    return y
