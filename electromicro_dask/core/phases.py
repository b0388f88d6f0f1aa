"""Phase tables: the ``{code: name}`` mapping a segmentation carries in ``attrs["phases"]``.

One name means one thing everywhere (DESIGN.md, data model). The vocabulary below is
advisory: unknown names are accepted (a user may have ``"binder"``), but every public
call refers to phases by name, never by code.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import InputError

__all__ = ["VOCABULARY", "phase_table", "phase_code", "phase_codes", "DEFAULT_PHASES"]

#: Names used across the package, with their meaning.
VOCABULARY = {
    "pore": "pore space (electrolyte-filled in a cell)",
    "cbd": "carbon-binder domain",
    "am": "active material",
    "crack": "cracks inside active-material particles",
    "graphite": "graphite (with conductive carbon) in anodes",
    "silicon": "silicon (agglomerates) in anodes",
    "sei": "solid-electrolyte interphase",
    "cei": "cathode-electrolyte interphase",
    "separator": "separator",
    "nmc": "layered oxide cathode material (alias of am in cathode-specific tables)",
}

#: The three-phase table of a cathode segmentation, codes ordered dark to bright in
#: X-ray tomograms (seed 002 section 3.1).
DEFAULT_PHASES = {0: "pore", 1: "cbd", 2: "am"}


def phase_table(phases, argument="phases"):
    """Return a validated ``{int code: str name}`` table.

    Accepts a mapping (keys may be strings of integers, as JSON/zarr attrs store them)
    or a DataArray carrying ``attrs["phases"]``.
    """
    table = getattr(phases, "attrs", {}).get("phases") if not isinstance(phases, Mapping) else phases
    if table is None:
        raise InputError(argument, 'a segmentation with attrs["phases"] = {code: name}')
    if not isinstance(table, Mapping) or not table:
        raise InputError(argument, f"a non-empty mapping {{code: name}}, got {table!r}")
    out = {}
    for k, v in table.items():
        try:
            code = int(k)
        except (TypeError, ValueError):
            raise InputError(argument, f"integer phase codes, got {k!r}") from None
        if code < 0 or code > np.iinfo(np.uint16).max:
            raise InputError(argument, f"phase codes in [0, 65535], got {code}")
        if not isinstance(v, str) or not v:
            raise InputError(argument, f"phase names as non-empty strings, got {v!r}")
        out[code] = v
    if len(set(out.values())) != len(out):
        raise InputError(argument, f"each phase name once, got {list(out.values())}")
    return dict(sorted(out.items()))


def phase_code(phases, name, argument="phase"):
    """Code of phase ``name`` in the table of ``phases``; InputError naming ``argument``."""
    table = phase_table(phases)
    for code, n in table.items():
        if n == name:
            return code
    raise InputError(argument, f"one of {list(table.values())}, got {name!r}")


def phase_codes(phases, names, argument="phase"):
    """Codes of several phase names (a str is one name)."""
    if isinstance(names, str):
        names = [names]
    return [phase_code(phases, n, argument) for n in names]
