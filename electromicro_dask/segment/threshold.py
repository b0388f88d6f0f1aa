"""Global thresholding to target volume fractions (seed 002, section 3.1) or multi-Otsu.

Seed 002 chooses the two global grey-value thresholds of its "Thresholding" method so
that the volume fractions of pore, CBD and AM equal the fractions known from the
electrode's recipe. Here the thresholds are quantiles of one global histogram of the
whole volume (the only global quantity computed, 2**16 bins). Integer images have many
exactly equal grey values, which a threshold cannot split; their ties are broken by a
deterministic, chunk-invariant sub-level jitter (a hash of the voxel's global index), the
"global ranking" that lets a quantile match a fraction to within one voxel's share.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from ..core.arrays import as_volume
from ..core.errors import InputError
from ..core.progress import compute
from ..core.random import block_offsets, uniform_block
from ._common import window_mask

__all__ = ["threshold"]

_BINS = 65536


def _jitter(block, seed, global_shape, block_info=None):
    off = block_offsets(None, block_info)
    return block.astype(np.float64) + uniform_block(block.shape, off, global_shape, seed,
                                                    stream=7)


def _classify(block, edges):
    return np.searchsorted(edges, block, side="right").astype(np.uint8)


def _check_fractions(fractions):
    if not hasattr(fractions, "items") or len(fractions) < 2:
        raise InputError("fractions", f"a mapping of 2+ phase names to fractions, dark to "
                         f"bright, got {fractions!r}")
    try:
        f = {str(k): float(v) for k, v in fractions.items()}
    except (TypeError, ValueError):
        raise InputError("fractions", f"numeric fractions, got {fractions!r}") from None
    if any(not (0.0 <= v <= 1.0) for v in f.values()):
        raise InputError("fractions", f"values in [0, 1], got {f}")
    if abs(sum(f.values()) - 1.0) > 1e-6:
        raise InputError("fractions", f"values summing to 1, got {sum(f.values()):.6g}")
    return f


def threshold(image, fractions=None, phases=("pore", "cbd", "am"), seed=0, window=None):
    """Segment a grey-value image with global thresholds.

    Parameters
    ----------
    image : xarray.DataArray
        Grey-value image or volume (2D or 3D).
    fractions : dict, optional
        Target volume fraction per phase name, **ordered from darkest to brightest**,
        summing to 1 (e.g. ``{"pore": 0.3, "cbd": 0.15, "am": 0.55}``). The thresholds are
        chosen so the realised fractions match these. Without it, multi-Otsu thresholds
        (Liao, Chen and Chung 2001) split the histogram into ``len(phases)`` classes.
    phases : sequence of str
        Phase names dark to bright when ``fractions`` is not given.
    seed : int
        Seed of the tie-breaking jitter for integer images.
    window : dict or xarray.DataArray, optional
        Sampling window of the calibration (seed 002 fits inside the electrode, without
        the void around it): a box ``{dim: (start_um, stop_um)}`` or a boolean mask on the
        image's grid. The thresholds come from the voxels inside it (their fractions match
        ``fractions``); the whole image is classified.

    Returns
    -------
    xarray.DataArray
        uint8 segmentation, ``attrs["phases"] = {0: darkest, ...}``, with the
        thresholds (grey values) in ``attrs["thresholds"]``. Computes one global
        histogram; the classification itself stays lazy.

    Raises
    ------
    InputError
        Fractions that do not sum to 1, fewer than two phases, an image with NaNs, a
        window outside the image.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume, segment
    >>> img = as_volume(np.random.default_rng(0).random((32, 32, 32)), voxel_size=1.0)
    >>> seg = segment.threshold(img, fractions={"pore": 0.25, "am": 0.75})
    >>> seg.attrs["phases"]
    {0: 'pore', 1: 'am'}
    """
    image = as_volume(image, argument="image")
    if fractions is not None:
        f = _check_fractions(fractions)
        names = list(f)
    else:
        names = [str(p) for p in phases]
        if len(names) < 2 or len(set(names)) != len(names):
            raise InputError("phases", f"two or more distinct names, got {phases!r}")
    data = image.data
    if data.dtype.kind in "iub":
        data = data.map_blocks(_jitter, int(seed), data.shape, dtype=np.float64)
    elif data.dtype.kind != "f":
        raise InputError("image", f"a numeric grey-value image, got dtype {data.dtype}")
    mask, record = window_mask(image, window)
    inside = data if mask is None else da.where(mask, data, np.nan)
    lo, hi, bad, n_in = compute(da.nanmin(inside), da.nanmax(inside),
                                (~da.isfinite(data)).any(),
                                data.size if mask is None else mask.sum(),
                                label="grey-value range")
    if bad:
        raise InputError("image", "finite grey values (found NaN or inf)")
    if int(n_in) == 0:
        raise InputError("window", "a window holding voxels of the image, got an empty one")
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        hi = lo + 1.0
    weights = None if mask is None else mask.astype(np.float64)
    counts, edges = da.histogram(data, bins=_BINS, range=(lo, hi), weights=weights)
    (counts,) = compute(counts, label="global histogram")
    edges = np.asarray(edges)
    cdf = np.cumsum(counts) / counts.sum()

    if fractions is not None:
        targets = np.cumsum([f[n] for n in names])[:-1]
        # Threshold inside the bin where the cumulative fraction crosses the target,
        # interpolated linearly within the bin.
        thr = []
        for t in targets:
            i = int(np.searchsorted(cdf, t, side="left"))
            i = min(i, _BINS - 1)
            c0 = cdf[i - 1] if i > 0 else 0.0
            w = (t - c0) / max(cdf[i] - c0, 1e-300)
            thr.append(edges[i] + np.clip(w, 0.0, 1.0) * (edges[i + 1] - edges[i]))
        method = "fractions"
    else:
        from skimage.filters import threshold_multiotsu

        centres = 0.5 * (edges[:-1] + edges[1:])
        # multi-Otsu's cost grows with bins**classes: use a 256-bin histogram.
        coarse = counts.reshape(256, -1).sum(axis=1)
        cc = centres.reshape(256, -1).mean(axis=1)
        thr = list(threshold_multiotsu(hist=(coarse, cc), classes=len(names)))
        method = "multi-otsu"
    thr = np.asarray(thr, dtype=np.float64)
    seg = data.map_blocks(_classify, thr, dtype=np.uint8)
    out = image.copy(data=seg)
    out.name = "phases"
    out.attrs = {"units": "um", "phases": dict(enumerate(names)),
                 "thresholds": [float(t) for t in thr], "method": method}
    if fractions is not None:
        out.attrs["target_fractions"] = f
    if record is not None:
        out.attrs["window"] = record
    return out
