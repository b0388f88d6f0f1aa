"""Default species (m/z windows) and phase / interphase assignments of seed 000.

Anodes (graphite-silicon): graphite + carbon from C2-, C3-; silicon from Si-, SiO2-;
the SEI from LiO- and LiCO2- (section 2.1). Cathodes (NMC): NMC from NiO-, MnO-; CBD
from C2-, C3- and CF- (PVdF); the CEI from LiCO3-, CO3- and the P18OO2- isotope, which
avoids the sub-surface artefact of PO3- (Fig. 4).
"""

from __future__ import annotations

from ..synth.sims import SIMS_SPECTRA

__all__ = ["SPECIES", "ANODE", "CATHODE", "species_windows"]


def _mz_table():
    out = {}
    for peaks in SIMS_SPECTRA.values():
        for p in peaks:
            out.setdefault(p[0], float(p[1]))
    return out


#: m/z of the species of :data:`electromicro_dask.synth.sims.SIMS_SPECTRA`.
SPECIES = _mz_table()

ANODE = {"phases": {"graphite": ["C2-", "C3-"], "silicon": ["Si-", "SiO2-"]},
         "interphases": {"sei": ["LiO-", "LiCO2-"]}, "agglomerate_phase": "silicon"}
CATHODE = {"phases": {"cbd": ["C2-", "C3-", "CF-"], "nmc": ["NiO-", "MnO-"]},
           "interphases": {"cei": ["P18OO2-", "LiCO3-", "CO3-"]},
           "agglomerate_phase": "nmc"}


def species_windows(names, half_width=0.2, table=None):
    """``{name: (mz, half_width)}`` for species names from :data:`SPECIES` (or ``table``).

    Examples
    --------
    >>> species_windows(["Si-"], 0.05)
    {'Si-': (27.977, 0.05)}
    """
    from ..core.errors import InputError

    table = SPECIES if table is None else table
    missing = [n for n in names if n not in table]
    if missing:
        raise InputError("species", f"names from {sorted(table)}, got {missing}")
    return {n: (table[n], float(half_width)) for n in names}
