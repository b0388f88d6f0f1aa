"""Probabilities to phases at exact target fractions by global ranking (seed 002, §3.3).

Seed 002 turns the network's predicted composition (probabilities of AM, CBD and pore per
voxel) into a trinarization matching the known volume fractions in two ways:

- ``NN-P1-P2-P3`` (six orderings): the voxels with the highest probability of phase P1
  become P1 until its target fraction is reached; among the rest, those with the highest
  probability of P2 become P2 until its fraction is reached; the rest is P3.
- ``NN-P1-Cond`` (three variants): P1 as above; the rest is split by the conditional
  probability ``p2 / (p2 + p3)`` of P2 given "not P1", which gives the one trinarization
  matching both remaining fractions.

"Highest" is a global ranking over the whole volume, not per block: each step's cut is a
global quantile, found from histograms of the ranking key refined around the target
rank (a few passes over the data, each returning one small histogram). Equal keys (e.g.
probabilities that saturate at 1) are ordered by a tiny, deterministic jitter drawn from
the global voxel index (:mod:`core.random`), so the counts match the targets to within a
few voxels and the result does not depend on the chunking.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from ..core.errors import InputError
from ..core.progress import compute
from ..core.random import uniform_block
from ._common import CODES3, PHASES3, check_fractions3, window_mask

__all__ = ["convert", "CONVERSIONS"]

_SHORT = {"AM": "am", "CBD": "cbd", "P": "pore"}


def _methods():
    import itertools

    out = {}
    for perm in itertools.permutations(("AM", "CBD", "P")):
        out["NN-" + "-".join(perm)] = (tuple(_SHORT[p] for p in perm), False)
    for p1 in ("AM", "CBD", "P"):
        rest = tuple(_SHORT[p] for p in ("AM", "CBD", "P") if p != p1)
        out[f"NN-{p1}-Cond"] = ((_SHORT[p1],) + rest, True)
    return out


#: The nine conversions of seed 002: name -> (phase order, conditional).
CONVERSIONS = _methods()

_JITTER = 1e-9
_BINS = 4096
_PASSES = 8


def _key_block(p, idx, order, cond, t1, seed, global_shape, block_info=None):
    """Ranking key of step 1 (t1 is None) or step 2 (t1 given) for a (3, ...) block."""
    loc = block_info[0]["array-location"][1:]
    off = tuple(lo for lo, _ in loc)
    shape = p.shape[1:]
    j1 = uniform_block(shape, off, global_shape, seed, stream=11)
    k1 = p[idx[order[0]]].astype(np.float64) + _JITTER * j1
    if t1 is None:
        return k1
    j2 = uniform_block(shape, off, global_shape, seed, stream=12)
    p2 = p[idx[order[1]]].astype(np.float64)
    if cond:
        s = p2 + p[idx[order[2]]].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            p2 = np.where(s > 0, p2 / np.where(s > 0, s, 1.0), 0.5)
    k2 = p2 + _JITTER * j2
    return np.where(k1 >= t1, -1.0, k2)


def _label_block(p, idx, order, cond, t1, t2, seed, global_shape, codes, block_info=None):
    k2 = _key_block(p, idx, order, cond, t1, seed, global_shape, block_info)
    k1 = _key_block(p, idx, order, cond, None, seed, global_shape, block_info)
    out = np.full(k1.shape, codes[2], dtype=np.uint8)
    out[k2 >= t2] = codes[1]
    out[k1 >= t1] = codes[0]
    return out


def _top_cut(key, n_target):
    """Key value t with #(key >= t) == n_target (up to ties), by refined histograms.

    Keys below 0 are excluded (voxels already assigned); valid keys lie in [0, 1 + 1e-6].
    """
    if n_target <= 0:
        return np.inf
    lo, hi = 0.0, 1.0 + 1e-6
    above = 0  # keys >= hi already counted
    for _ in range(_PASSES):
        counts, edges = da.histogram(key, bins=_BINS, range=(lo, hi))
        (counts,) = compute(counts, label="ranking histogram")
        edges = np.asarray(edges)
        from_top = above + np.cumsum(counts[::-1])  # keys >= edges[_BINS - 1 - i]
        i = int(np.searchsorted(from_top, n_target, side="left"))
        if i >= _BINS:  # fewer valid keys than the target: take them all
            return lo
        j = _BINS - 1 - i
        n_hi = int(from_top[i] - counts[j])  # keys >= edges[j + 1]
        n_lo = int(from_top[i])  # keys >= edges[j]
        if n_lo - n_hi <= 1 or edges[j + 1] - edges[j] <= 4 * np.spacing(edges[j + 1]):
            return edges[j] if (n_lo - n_target) <= (n_target - n_hi) else edges[j + 1]
        lo, hi, above = edges[j], np.nextafter(edges[j + 1], -np.inf), n_hi
    return edges[j] if (n_lo - n_target) <= (n_target - n_hi) else edges[j + 1]


def convert(probabilities, fractions, method="NN-AM-Cond", seed=0, window=None):
    """Trinarize predicted compositions at the target fractions (seed 002, §3.3).

    Parameters
    ----------
    probabilities : xarray.DataArray
        Dims ``("phase", z, y, x)`` (2D works too), phases pore, cbd and am (e.g. the
        output of :func:`segment.mlp`).
    fractions : dict
        Target fractions ``{"pore": .., "cbd": .., "am": ..}`` summing to 1.
    method : str
        One of :data:`CONVERSIONS`: ``"NN-AM-CBD-P"``, ``"NN-AM-P-CBD"``,
        ``"NN-CBD-AM-P"``, ``"NN-CBD-P-AM"``, ``"NN-P-AM-CBD"``, ``"NN-P-CBD-AM"``,
        ``"NN-AM-Cond"``, ``"NN-CBD-Cond"``, ``"NN-P-Cond"``.
    seed : int
        Seed of the tie-breaking jitter.
    window : dict or xarray.DataArray, optional
        Sampling window of the ranking: a box ``{dim: (start_um, stop_um)}`` or a boolean
        mask on the spatial grid. The cuts are global quantiles of the voxels inside it
        (whose fractions then match ``fractions``); every voxel is labelled.

    Returns
    -------
    xarray.DataArray
        uint8 segmentation ``{0: "pore", 1: "cbd", 2: "am"}``, lazy; the two cuts
        (global quantiles of the ranking keys, computed from a few global histograms)
        are in ``attrs["cuts"]``. Fractions match the targets to within a few voxels.
        Each cut reads the probabilities two to four times: save them to the store (or
        ``persist``) first rather than passing a lazy :func:`segment.mlp` graph, which
        would be re-evaluated on every pass.

    Raises
    ------
    InputError
        Unknown method, fractions not summing to 1, probabilities without a ``phase``
        dim holding pore, cbd and am.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from electromicro_dask import segment
    >>> p = np.random.default_rng(0).dirichlet([1, 1, 1], size=(8, 8)).transpose(2, 0, 1)
    >>> prob = xr.DataArray(p, dims=("phase", "y", "x"),
    ...                     coords={"phase": ["pore", "cbd", "am"]}).chunk()
    >>> seg = segment.convert(prob, {"pore": 0.25, "cbd": 0.25, "am": 0.5}, "NN-AM-Cond")
    >>> int((seg == 2).sum())
    32
    """
    if method not in CONVERSIONS:
        raise InputError("method", f"one of {list(CONVERSIONS)}, got {method!r}")
    targets = check_fractions3(fractions)
    if not isinstance(probabilities, xr.DataArray) or "phase" not in probabilities.dims:
        raise InputError("probabilities", "a DataArray with a 'phase' dim (pore, cbd, am)")
    names = [str(v) for v in probabilities["phase"].values] if "phase" in probabilities.coords \
        else list(PHASES3.values())
    if sorted(names) != sorted(CODES3):
        raise InputError("probabilities", f"phases pore, cbd and am, got {names}")
    prob = probabilities.transpose("phase", ...)
    data = prob.data if isinstance(prob.data, da.Array) else da.from_array(prob.data)
    data = data.rechunk({0: -1})
    idx = {n: names.index(n) for n in CODES3}
    order, cond = CONVERSIONS[method]
    spatial = data.shape[1:]
    grid = prob.isel(phase=0, drop=True)
    mask, record = window_mask(grid.chunk(dict(zip(grid.dims, data.chunks[1:]))), window)
    if mask is None:
        total = int(np.prod(spatial))
    else:
        (total,) = compute(mask.sum(), label="window size")
        total = int(total)
        if total == 0:
            raise InputError("window", "a window holding voxels, got an empty one")
    n1 = int(round(targets[order[0]] * total))
    n2 = int(round(targets[order[1]] * total))
    kw = dict(idx=idx, order=order, cond=cond, seed=int(seed), global_shape=spatial,
              drop_axis=0, dtype=np.float64)

    def ranked(key):
        # keys below 0 take no part in the ranking: outside the window, -2
        return key if mask is None else da.where(mask, key, -2.0)

    k1 = data.map_blocks(_key_block, t1=None, **kw)
    t1 = _top_cut(ranked(k1), n1)
    k2 = data.map_blocks(_key_block, t1=t1, **kw)
    t2 = _top_cut(ranked(k2), n2)
    codes = np.array([CODES3[n] for n in order], dtype=np.uint8)
    kw.update(dtype=np.uint8)
    seg = data.map_blocks(_label_block, t1=t1, t2=t2, codes=codes, **kw)
    dims = prob.dims[1:]
    out = xr.DataArray(seg, dims=dims, coords={d: prob.coords[d] for d in dims
                                                if d in prob.coords},
                       name="phases",
                       attrs={"units": "um", "phases": dict(PHASES3), "method": method,
                              "order": list(order), "conditional": bool(cond),
                              "cuts": [float(t1), float(t2)], "target_fractions": targets})
    if record is not None:
        out.attrs["window"] = record
    return out
