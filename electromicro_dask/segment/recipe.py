"""Target volume fractions from an electrode's recipe (seed 002, section 2.1).

Seed 002 calibrates every trinarization to the volume fractions "computed from the density of
the electrode as well as the material composition (i.e., the weight percentage as well as the
density of the individual solid constituents)": for a solid of weight fraction ``w_i`` and
density ``rho_i`` in an electrode of density ``rho_el`` (solid mass per electrode volume),
the volume fraction is ``phi_i = w_i rho_el / rho_i``. The active material is one phase, the
other solids (conductive additives and binder) form the carbon-binder domain (CBD), and the
rest is pore space. At tomography resolution the CBD's nanopores are not resolved, so a CBD
voxel holds solid and electrolyte: with an inner porosity ``p`` the CBD *domain* occupies
``phi_cbd_solid / (1 - p)`` and the resolvable pores ``1 - phi_am - phi_cbd_solid / (1 - p)``
(seed 002 section 3 assumes ``p = 0.5``; ``p = 0`` gives the solid fractions the seed prints:
59.54 / 11.54 / 28.92 % for its suspension A).
"""

from __future__ import annotations

import math

from ..core.errors import InputError

__all__ = ["DENSITIES_G_CM3", "fractions_from_recipe"]

#: Default skeletal densities (g/cm^3) of common cathode solids; give your own for others.
DENSITIES_G_CM3 = {
    # LiNi0.6Co0.2Mn0.2O2: crystallographic density of the R-3m cell (a = 2.868 A,
    # c = 14.21 A, Z = 3, M = 96.9 g/mol; Noh et al., J. Power Sources 233 (2013) 121).
    "nmc622": 4.77,
    # LiNi0.8Co0.1Mn0.1O2, same cell type (a = 2.872 A, c = 14.20 A, M = 97.3 g/mol; Noh 2013).
    "nmc811": 4.78,
    # Carbon black (Super P class): skeletal density 1.8-2.1 g/cm^3 (Imerys technical data).
    "carbon_black": 1.9,
    # Graphite (SFG6L class): the theoretical density of graphite, 2.26 g/cm^3.
    "graphite": 2.26,
    # PVdF: 1.75-1.80 g/cm^3 (Solvay Solef PVDF technical data).
    "pvdf": 1.78,
}


def fractions_from_recipe(solid_wt, active=("nmc622",), densities=None, loading_mg_cm2=None,
                          thickness_um=None, electrode_density_g_cm3=None,
                          cbd_inner_porosity=0.5):
    """AM, CBD and pore volume fractions from the weight fractions and the electrode density.

    Parameters
    ----------
    solid_wt : mapping
        Solid components -> weight percent of the solid mass (summing to 100), e.g. seed
        002's suspension A ``{"nmc622": 93.5, "carbon_black": 2.0, "graphite": 1.0,
        "pvdf": 3.5}``.
    active : sequence of str
        The components that form the active material; all others form the CBD.
    densities : mapping, optional
        Component -> density in g/cm^3 (default :data:`DENSITIES_G_CM3`; entries given here
        win).
    loading_mg_cm2, thickness_um : float, optional
        Areal solid mass loading (mg/cm^2) and electrode thickness (um): the electrode
        density is ``10 x loading / thickness`` g/cm^3. Give these or
        ``electrode_density_g_cm3``.
    electrode_density_g_cm3 : float, optional
        Solid mass per electrode volume (seed 002: 3.1 g/cm^3).
    cbd_inner_porosity : float
        Share of the CBD domain that is unresolved nanopores (seed 002: 0.5; 0 gives the
        solid fractions).

    Returns
    -------
    dict
        ``{"pore", "cbd", "am"}`` volume fractions summing to 1, the form every seed-002
        segmentation takes as ``fractions``.

    Examples
    --------
    >>> f = fractions_from_recipe({"nmc622": 93.5, "carbon_black": 2.0, "graphite": 1.0,
    ...                            "pvdf": 3.5}, electrode_density_g_cm3=3.1,
    ...                           cbd_inner_porosity=0.0)
    >>> round(f["am"], 4)
    0.6077
    """
    if not hasattr(solid_wt, "items") or not solid_wt:
        raise InputError("solid_wt", f"a mapping of components to weight percent, got "
                         f"{solid_wt!r}")
    try:
        wt = {str(k): float(v) for k, v in solid_wt.items()}
    except (TypeError, ValueError):
        raise InputError("solid_wt", f"numeric weight percentages, got {solid_wt!r}") from None
    if any(not math.isfinite(v) or v < 0 for v in wt.values()):
        raise InputError("solid_wt", f"non-negative weight percentages, got {wt}")
    total = sum(wt.values())
    if abs(total - 100.0) > 0.05:
        raise InputError("solid_wt", f"weight percentages summing to 100, got {total:g}")
    active = (active,) if isinstance(active, str) else tuple(active)
    missing = [a for a in active if a not in wt]
    if not active or missing:
        raise InputError("active", f"components of solid_wt ({sorted(wt)}), got {list(active)}")
    rho = dict(DENSITIES_G_CM3)
    rho.update({str(k): float(v) for k, v in (densities or {}).items()})
    unknown = [k for k in wt if k not in rho]
    if unknown:
        raise InputError("densities", f"a density in g/cm^3 for {unknown}")
    if any(not rho[k] > 0 for k in wt):
        raise InputError("densities", "positive densities")
    if electrode_density_g_cm3 is not None:
        if loading_mg_cm2 is not None or thickness_um is not None:
            raise InputError("electrode_density_g_cm3", "either the electrode density or "
                             "loading_mg_cm2 and thickness_um, not both")
        rho_el = float(electrode_density_g_cm3)
    else:
        if loading_mg_cm2 is None or thickness_um is None:
            raise InputError("loading_mg_cm2", "loading_mg_cm2 and thickness_um, or "
                             "electrode_density_g_cm3")
        if not (float(loading_mg_cm2) > 0 and float(thickness_um) > 0):
            raise InputError("loading_mg_cm2", "a positive loading and thickness")
        # mg/cm^2 / um = 1e-3 g / (1e-4 cm) per cm^2 = 10 g/cm^3
        rho_el = 10.0 * float(loading_mg_cm2) / float(thickness_um)
    if not rho_el > 0:
        raise InputError("electrode_density_g_cm3", f"a positive density, got {rho_el}")
    p = float(cbd_inner_porosity)
    if not 0.0 <= p < 1.0:
        raise InputError("cbd_inner_porosity", f"a share in [0, 1), got {cbd_inner_porosity!r}")
    phi = {k: wt[k] / 100.0 * rho_el / rho[k] for k in wt}
    am = sum(phi[k] for k in active)
    cbd = sum(v for k, v in phi.items() if k not in active) / (1.0 - p)
    pore = 1.0 - am - cbd
    if pore < 0:
        raise InputError("electrode_density_g_cm3", f"a density the solids fit in: they fill "
                         f"{100 * (am + cbd):.1f} % of the volume at {rho_el:.3g} g/cm^3")
    return {"pore": pore, "cbd": cbd, "am": am}
