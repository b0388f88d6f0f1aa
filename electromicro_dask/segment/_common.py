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


def window_mask(image, window, argument="window"):
    """The sampling window of a calibration as a boolean dask array on ``image``'s chunks.

    ``window`` is ``None`` (the whole image), a box ``{dim: (start, stop)}`` in the
    image's coordinates (um, ends included), or a boolean DataArray on the image's grid
    (e.g. the electrode without the void around it). Returns ``(mask or None, record)``,
    the record being what the calibrated result's attrs keep of the window.
    """
    import dask.array as da
    import xarray as xr

    if window is None:
        return None, None
    if isinstance(window, xr.DataArray):
        if window.dims != image.dims or window.shape != image.shape:
            raise InputError(argument, f"a boolean mask with dims {image.dims} and shape "
                             f"{image.shape}, got {window.dims} {window.shape}")
        if window.dtype != bool:
            raise InputError(argument, f"a boolean mask, got dtype {window.dtype}")
        m = window.data if isinstance(window.data, da.Array) else da.from_array(window.data)
        chunks = image.data.chunks if isinstance(image.data, da.Array) else "auto"
        return m.rechunk(chunks), "mask"
    if not hasattr(window, "items") or not window:
        raise InputError(argument, f"a {{dim: (start_um, stop_um)}} box or a boolean mask, got "
                         f"{window!r}")
    box = {}
    for d, lim in window.items():
        if d not in image.dims:
            raise InputError(argument, f"dims among {image.dims}, got {d!r}")
        try:
            lo, hi = (float(v) for v in lim)
        except (TypeError, ValueError):
            raise InputError(argument, f"{d}: a (start_um, stop_um) pair, got {lim!r}") from None
        c = np.asarray(image[d].values, dtype=np.float64)
        if not ((c >= lo) & (c <= hi)).any():
            raise InputError(argument, f"{d}: a range inside the volume ({c[0]:g} to "
                             f"{c[-1]:g} um), got ({lo:g}, {hi:g})")
        box[d] = (lo, hi)
    parts = []
    for d in image.dims:
        c = np.asarray(image[d].values, dtype=np.float64)
        lo, hi = box.get(d, (-np.inf, np.inf))
        parts.append((c >= lo) & (c <= hi))
    chunks = image.data.chunks if isinstance(image.data, da.Array) else None
    grids = [da.from_array(p, chunks=(chunks[i] if chunks else -1,))
             for i, p in enumerate(parts)]
    m = grids[0]
    for i, g in enumerate(grids[1:], start=1):
        m = m[..., None] & g.reshape((1,) * i + (-1,))
    return m, {d: list(v) for d, v in box.items()}
