"""Helpers shared by the three-phase segmentations of seed 002 (AM, CBD, pore)."""

from __future__ import annotations

import numpy as np

from ..core.errors import InputError

#: Codes of the three-phase segmentations (dark to bright, as :func:`segment.threshold`).
PHASES3 = {0: "pore", 1: "cbd", 2: "am"}
CODES3 = {name: code for code, name in PHASES3.items()}


def check_fractions3(fractions, argument="fractions"):
    """``{"pore", "cbd", "am"}`` fractions in [0, 1] summing to 1, as floats (InputError)."""
    if not hasattr(fractions, "items"):
        raise InputError(argument, f"a mapping of pore, cbd and am to fractions, got {fractions!r}")
    try:
        f = {str(k): float(v) for k, v in fractions.items()}
    except (TypeError, ValueError):
        raise InputError(argument, f"numeric fractions, got {fractions!r}") from None
    if set(f) != set(CODES3):
        raise InputError(argument, f"fractions for exactly pore, cbd and am, got {sorted(f)}")
    if any(not (0.0 <= v <= 1.0) or not np.isfinite(v) for v in f.values()):
        raise InputError(argument, f"values in [0, 1], got {f}")
    if abs(sum(f.values()) - 1.0) > 1e-6:
        raise InputError(argument, f"values summing to 1, got {sum(f.values()):.6g}")
    return {n: f[n] for n in ("pore", "cbd", "am")}
