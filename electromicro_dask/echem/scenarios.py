"""Scenarios of seed 001 (CEI film, clogging) and seed 002 (homogenised CBD) as model switches.

Seed 001, section "Gradient of CEI thickness and ununiform SOD" and Figs. 4-5, discharges the
same electrode five ways; notes/echem.md 1.4 turns each into switches of the model:

=====================  ===================  ===========  ==============  ==================
scenario               CEI film             AM|CBD faces  salt in CBD     pore tortuosity
=====================  ===================  ===========  ==============  ==================
``pristine``           none                 react         diffuses        x 1
``cei``                Gaussian, 5->20 nm   react         diffuses        x 1
``thick_cei``          the CEI field x 2    react         diffuses        x 1
``cbd_clogging``       CEI                  none          blocked         x 1
``full_clogging``      CEI                  none          blocked         x 2
=====================  ===================  ===========  ==============  ==================

"CBD clogging" blocks Li+ transport through the CBD ("the transport of Li+ ion was blocked
through the CBD", seed 001) while the reaction on AM faces goes on with the electrolyte that
is locally there. By default the CBD's electrolyte then carries neither salt nor current
(notes/echem.md 1.4: gamma_e = 0 in the CBD), so the AM|CBD faces fall silent and pores
reached only through the CBD drop out; the dead-end pores that remain are the
low-concentration regions of seed 001 Fig. 5C. ``cbd_conduction=True`` keeps the CBD's
ionic conduction and blocks only salt diffusion: every CBD voxel and every pore behind it
then becomes a pocket fed by migration alone, whose salt runs out within a minute at C/2
(on the synthetic seed-001 volume at 2.5 um the electrode collapses at 73 s, 2.9 mAh/g
against the seed's ~100), which is why it is not the default.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..core.errors import InputError
from ._cell import AM_NAMES, DIRECTIONS, _shift

__all__ = ["Scenario", "scenario", "SEED001_SCENARIOS", "cei_thickness"]

SEED001_SCENARIOS = ("pristine", "cei", "thick_cei", "cbd_clogging", "full_clogging")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Switches of the model for one simulated case.

    Attributes
    ----------
    name : str
    film_thickness : dict or None
        ``{(axis, step): array}`` film thickness [m] on every AM voxel face pointing in that
        direction (electrode grid, z first); None for no film.
    film_resistivity : float
        Ionic resistivity of the film [Ohm m]; the face resistance is
        ``film_resistivity * thickness`` [Ohm m^2] in series with the kinetics.
    cbd_reactive : bool
        Whether AM|CBD faces react (scaled by the CBD's inner porosity, seed 002 eq. 5).
    cbd_diffusion : bool
        Whether salt diffuses through the CBD's electrolyte (False: seed 001 "clogging").
    cbd_conduction : bool
        Whether the CBD's electrolyte conducts ions (False with ``cbd_diffusion`` False: the
        CBD holds no electrolyte at all, seed 001 "clogging" as notes/echem.md 1.4 reads it).
    pore_tortuosity_factor : float
        Multiplies the tortuosity of the pore electrolyte (2 in seed 001 "full clogging").
    cracks : {"electrolyte", "inert"}
        Cracks filled with electrolyte (default, notes/echem.md 1.5) or left out.
    cbd_tortuosity : float or None
        Overrides the parameter set's CBD tortuosity (seed 002's fitted parameter).
    """

    name: str = "pristine"
    film_thickness: dict | None = None
    film_resistivity: float = 0.0
    cbd_reactive: bool = True
    cbd_diffusion: bool = True
    cbd_conduction: bool = True
    pore_tortuosity_factor: float = 1.0
    cracks: str = "electrolyte"
    cbd_tortuosity: float | None = None

    def cbd_gamma(self, params):
        tau = params.cbd_tortuosity if self.cbd_tortuosity is None else self.cbd_tortuosity
        return params.cbd_porosity / tau

    def describe(self):
        film = None
        if self.film_thickness is not None:
            vals = np.concatenate([np.asarray(v)[np.asarray(v) > 0]
                                   for v in self.film_thickness.values()])
            film = float(vals.mean() * 1e9) if vals.size else 0.0
        return {"scenario": self.name, "film_mean_nm": film,
                "film_resistivity_ohm_m": self.film_resistivity,
                "cbd_reactive": self.cbd_reactive, "cbd_diffusion": self.cbd_diffusion,
                "cbd_conduction": self.cbd_conduction,
                "pore_tortuosity_factor": self.pore_tortuosity_factor, "cracks": self.cracks,
                "cbd_tortuosity": self.cbd_tortuosity}


def cei_thickness(codes, am_codes, mean_collector=5e-9, mean_separator=20e-9, sd=4e-9,
                  clip=(3e-9, 28e-9), seed=0):
    """Film thickness [m] per AM face direction, Gaussian with a mean rising along z.

    Seed 001 ("Gradient of CEI thickness...", Fig. S8 and the conclusions): a Gaussian
    whose mean increases through the electrode, 5 nm at the collector to 20 nm at the
    separator, clipped to 3-28 nm. The linear rise and ``sd`` = 4 nm are assumptions
    (the seed's Fig. S8 is not available)."""
    rng = np.random.default_rng(seed)
    am = np.isin(codes, am_codes)
    nz = codes.shape[0]
    mean = mean_collector + (mean_separator - mean_collector) * (np.arange(nz) + 0.5) / nz
    out = {}
    for d in DIRECTIONS:
        ax, s = d
        nb = _shift(~am, ax, s)
        face = am & nb
        if ax == 0 and s > 0:
            face[-1] = am[-1]  # the top layer faces the separator's electrolyte
        thick = rng.normal(0.0, 1.0, codes.shape) * sd + mean[:, None, None]
        out[d] = np.where(face, np.clip(thick, *clip), 0.0)
    return out


def scenario(name, phases=None, film_resistivity=None, seed=0, cbd_tortuosity=None,
             cbd_gamma=None, **changes):
    """Build one of the named scenarios.

    Parameters
    ----------
    name : str
        ``"pristine"``, ``"cei"``, ``"thick_cei"``, ``"cbd_clogging"``, ``"full_clogging"``
        (seed 001) or ``"homogenised_cbd"`` (seed 002: pristine with the CBD parameter set
        by ``cbd_gamma`` or ``cbd_tortuosity``).
    phases : xarray.DataArray, optional
        The segmentation (needed for the film scenarios, whose thickness field lives on its
        AM faces).
    film_resistivity : float, optional
        CEI resistivity [Ohm m]; default 3.0e6, the 1D estimate that gives seed 001's 43.8 mV
        shift (notes/echem.md 4a); :func:`calibrate_film_resistivity` finds it on a structure.
    seed : int
        Seed of the film-thickness draw.
    cbd_tortuosity, cbd_gamma : float, optional
        Seed 002's CBD parameter (``gamma = 0.5 / tau`` at the inner porosity 0.5).
    **changes
        Further :class:`Scenario` fields.

    Returns
    -------
    Scenario

    Examples
    --------
    >>> scenario("full_clogging", film_resistivity=0.0).pore_tortuosity_factor
    2.0
    """
    if not isinstance(name, str) or name not in SEED001_SCENARIOS + ("homogenised_cbd",):
        raise InputError("name", f"one of {SEED001_SCENARIOS + ('homogenised_cbd',)}, got {name!r}")
    if cbd_gamma is not None and cbd_tortuosity is not None:
        raise InputError("cbd_gamma", "either cbd_gamma or cbd_tortuosity, not both")
    if cbd_gamma is not None:
        if not cbd_gamma > 0:
            raise InputError("cbd_gamma", f"a positive number, got {cbd_gamma!r}")
        cbd_tortuosity = 0.5 / cbd_gamma
    if cbd_tortuosity is not None and not cbd_tortuosity > 0:
        raise InputError("cbd_tortuosity", f"a positive number, got {cbd_tortuosity!r}")
    rho = 3.0e6 if film_resistivity is None else float(film_resistivity)
    film = None
    if name in ("cei", "thick_cei", "cbd_clogging", "full_clogging"):
        if phases is None:
            raise InputError("phases", f"the segmentation (scenario {name!r} draws a film on "
                             "its AM faces)")
        from ..core.phases import phase_table

        table = phase_table(phases.attrs.get("phases"))
        am_codes = [c for c, n in table.items() if n in AM_NAMES]
        codes = np.asarray(phases.values)
        film = cei_thickness(codes, am_codes, seed=seed)
        if name == "thick_cei":
            film = {d: 2.0 * v for d, v in film.items()}
    kw = dict(name=name, film_thickness=film, film_resistivity=rho if film else 0.0,
              cbd_tortuosity=cbd_tortuosity)
    if name in ("cbd_clogging", "full_clogging"):
        kw.update(cbd_diffusion=False, cbd_conduction=False)
    if name == "full_clogging":
        kw["pore_tortuosity_factor"] = 2.0
    kw.update(changes)
    return Scenario(**kw)
