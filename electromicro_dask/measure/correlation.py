"""Two-point correlation functions S2(r) and centered coverage functions C_ab(r) (seed 002 sec. 5.1).

``S2_ab(h) = P(x in A, x + h in B)`` is estimated without periodic wrap-around as
``sum_x 1_A(x) 1_B(x + h) / N(h)``, where both points must lie in the volume and ``N(h)``
counts such pairs (the unbiased minus-sampling estimator, Ohser and Muecklich 2000, sec.
6.2; Torquato, *Random Heterogeneous Materials*, 2002, ch. 2). The centered function
``C_ab(h) = S2_ab(h) - eps_A eps_B`` is seed 002's coverage probability function.

Chunking: the pairs whose first point lies in a block are counted from that block and a
halo of ``r_max`` voxels around it (one zero-padded FFT correlation per block), so every
pair of the volume is counted exactly once; the integer counts per lag are added over the
blocks. Memory per task is a few times (chunk + 3 r_max)^3 complex numbers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import fft as sp_fft

from ..core.arrays import voxel_size
from ..core.errors import InputError
from ..core.phases import phase_code
from ..core.progress import compute
from ..core.reduce import blockwise_bincount
from .surface import _segmentation

__all__ = ["two_point_correlation", "TwoPointCorrelation"]


@dataclass
class TwoPointCorrelation:
    """Result of :func:`two_point_correlation`.

    Attributes
    ----------
    phase_a, phase_b : str
        The phases; ``S2`` is ``P(x in phase_a, x + r in phase_b)``.
    eps_a, eps_b : float
        Volume fractions of the two phases.
    radial : pandas.DataFrame
        Columns ``r_um`` (mean lag length in the bin), ``s2``, ``c`` (centered,
        ``s2 - eps_a eps_b``), ``n_lags``; S2 is averaged over the lattice lags in each
        radial bin (isotropic average, as PoreSpy does).
    axes : pandas.DataFrame
        Long table with columns ``axis``, ``r_um``, ``s2``, ``c`` for lags along each
        axis (average of the lags +r and -r).
    lags : xarray.DataArray
        ``S2`` for every lattice lag in the box ``|h_i| <= r_max`` (dims ``d<dim>``,
        coordinates in um).
    """

    phase_a: str
    phase_b: str
    eps_a: float
    eps_b: float
    radial: pd.DataFrame
    axes: pd.DataFrame
    lags: xr.DataArray = field(repr=False)


def _ensure_min_chunks(data, depth):
    chunks = tuple(da.overlap.ensure_minimum_chunksize(max(1, depth[i]), c)
                   if len(c) > 1 else c for i, c in enumerate(data.chunks))
    return data.rechunk(chunks) if chunks != data.chunks else data


def _corr_block(block, code_a, code_b, radius, block_info=None):
    """Pair counts per lag (box of half-widths ``radius``) for first points in the core.

    The core is cut into sub-blocks whose padded FFT stays within ``_FFT_BLOCK_BYTES``,
    each correlated with the points within ``radius`` of it, so a task's memory does not
    grow with the chunk."""
    loc = block_info[0]["chunk-location"]
    nb = block_info[0]["num-chunks"]
    nd = block.ndim
    lo = [radius[i] if loc[i] > 0 else 0 for i in range(nd)]
    hi = [block.shape[i] - (radius[i] if loc[i] < nb[i] - 1 else 0) for i in range(nd)]
    out = np.zeros(tuple(2 * r + 1 for r in radius), np.int64)
    edge = _sub_edge(radius)
    starts = [range(lo[i], hi[i], edge[i]) for i in range(nd)]
    for start in itertools.product(*starts):
        a_sl = tuple(slice(s, min(s + edge[i], hi[i])) for i, s in enumerate(start))
        b_lo = [max(0, s - radius[i]) for i, s in enumerate(start)]
        b_sl = tuple(slice(b_lo[i], min(a_sl[i].stop + radius[i], block.shape[i]))
                     for i in range(nd))
        a = block[a_sl] == code_a
        if not a.any():
            continue
        b = block[b_sl] == code_b
        if not b.any():
            continue
        out += _fft_counts(a, b, [s - bl for s, bl in zip(start, b_lo)], radius)
    return out.reshape((1,) * nd + out.shape)


def _fft_counts(a, b, lo, radius):
    """``sum_y a(y) b(y + lo + h)`` for every lag ``|h_i| <= radius_i`` (exact integers)."""
    nd = a.ndim
    # Zero padding to ext + r_max along each axis keeps the circular FFT correlation free
    # of wrap-around for every lag |h| <= r_max.
    size = [sp_fft.next_fast_len(b.shape[i] + radius[i], real=True) for i in range(nd)]
    fa = sp_fft.rfftn(a.astype(np.float64), s=size)
    fa = np.conj(fa, out=fa)
    fa *= sp_fft.rfftn(b.astype(np.float64), s=size)
    c = sp_fft.irfftn(fa, s=size)
    del fa
    # corr(h) = sum_y a(y) b(y + lo + h), read at (lo + h) mod size
    idx = np.ix_(*[np.mod(lo[i] + np.arange(-radius[i], radius[i] + 1), size[i])
                  for i in range(nd)])
    return np.rint(c[idx]).astype(np.int64)


#: Memory budget of one FFT correlation (about five float64 arrays of the padded
#: sub-block): larger chunks are worked through in sub-blocks, so that a task fits
#: beside a small worker's baseline.
_FFT_BLOCK_BYTES = 64 * 2**20


def _sub_edge(radius):
    """Edge of the sub-blocks whose padded FFT (edge ~ sub-block + 3 r) stays within
    ``_FFT_BLOCK_BYTES``."""
    edge = int((_FFT_BLOCK_BYTES / 40) ** (1 / len(radius)))
    return [max(r, edge - 3 * r, 1) for r in radius]


def _lag_counts(data, code_a, code_b, radius):
    data = _ensure_min_chunks(data, radius)
    ov = da.overlap.overlap(data, depth={i: radius[i] for i in range(data.ndim)},
                            boundary={i: "none" for i in range(data.ndim)})
    nd = data.ndim
    per_block = ov.map_blocks(
        _corr_block, code_a, code_b, tuple(radius), dtype=np.int64,
        new_axis=list(range(nd, 2 * nd)),
        chunks=tuple((1,) * len(c) for c in data.chunks) + tuple((2 * r + 1,) for r in radius))
    return per_block.sum(axis=tuple(range(nd)))


def two_point_correlation(phases, phase_a, phase_b=None, r_max_um=None, bin_width_um=None):
    """Two-point correlation S2 and centered coverage function C of one or two phases.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation (2D or 3D) with ``attrs["phases"]``.
    phase_a : str
        First phase.
    phase_b : str, optional
        Second phase (default ``phase_a``: the autocorrelation S2 of ``phase_a``).
    r_max_um : float, optional
        Largest lag in micrometres (default: a quarter of the smallest extent of the
        volume). Costs grow with (chunk + 3 r_max)^3 per block.
    bin_width_um : float, optional
        Width of the radial bins (default: the smallest voxel size).

    Returns
    -------
    TwoPointCorrelation
        With ``radial`` and ``axes`` DataFrames, the lag map ``lags`` and the volume
        fractions ``eps_a``, ``eps_b``.

    Notes
    -----
    Exact over the whole volume, not periodic: a lag counts only pairs with both points
    inside. Computes one global reduction (integer pair counts per lag, a box of
    ``(2 r_max + 1)^d`` numbers). PoreSpy's ``metrics.two_point_correlation`` uses the
    same non-periodic estimator on a whole in-memory array; its ``probability_scaled``
    equals ``radial["s2"]`` for the same bins.

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask import measure
    >>> seg = emd.as_volume((np.arange(20) % 4 < 2).astype("uint8")[:, None, None]
    ...                     * np.ones((1, 6, 6), "uint8"), voxel_size=1.0)
    >>> seg.attrs["phases"] = {0: "pore", 1: "am"}
    >>> tpc = measure.two_point_correlation(seg, "am", r_max_um=2)
    >>> z = tpc.axes[tpc.axes.axis == "z"]
    >>> [round(v, 3) for v in z.s2]
    [0.5, 0.263, 0.0]
    """
    seg = _segmentation(phases)
    code_a = phase_code(seg, phase_a, "phase_a")
    phase_b = phase_a if phase_b is None else phase_b
    code_b = phase_code(seg, phase_b, "phase_b")
    spacing = np.array(voxel_size(seg))
    shape = np.array(seg.shape)
    if r_max_um is None:
        r_max_um = 0.25 * float(np.min(shape * spacing))
    try:
        r_max_um = float(r_max_um)
    except (TypeError, ValueError):
        raise InputError("r_max_um", f"a length in um, got {r_max_um!r}") from None
    if not np.isfinite(r_max_um) or r_max_um <= 0:
        raise InputError("r_max_um", f"a positive length in um, got {r_max_um}")
    radius = [int(min(np.floor(r_max_um / s + 1e-9), n - 1)) for s, n in zip(spacing, shape)]
    if bin_width_um is None:
        bin_width_um = float(spacing.min())
    try:
        bin_width_um = float(bin_width_um)
    except (TypeError, ValueError):
        raise InputError("bin_width_um", f"a length in um, got {bin_width_um!r}") from None
    if not np.isfinite(bin_width_um) or bin_width_um <= 0:
        raise InputError("bin_width_um", f"a positive length in um, got {bin_width_um}")

    counts = _lag_counts(seg.data, code_a, code_b, radius)
    top = max(code_a, code_b) + 1
    frac = blockwise_bincount(da.minimum(seg.data, top).astype(np.int64), top + 1)
    counts, frac = compute(counts, frac, label="two-point correlation")
    eps_a = float(frac[code_a]) / seg.size
    eps_b = float(frac[code_b]) / seg.size

    offs = [np.arange(-r, r + 1) for r in radius]
    grids = np.meshgrid(*offs, indexing="ij")
    n_pairs = np.ones(counts.shape)
    for g, n in zip(grids, shape):
        n_pairs = n_pairs * (n - np.abs(g))
    s2 = counts / n_pairs
    dist = np.sqrt(sum((g * s) ** 2 for g, s in zip(grids, spacing)))

    edges = np.arange(0.0, r_max_um + bin_width_um, bin_width_um)
    which = np.digitize(dist.ravel(), edges) - 1
    keep = (dist.ravel() <= r_max_um + 1e-9) & (which < len(edges) - 1)
    w = which[keep]
    nb = len(edges) - 1
    n_lags = np.bincount(w, minlength=nb)
    s2_sum = np.bincount(w, weights=s2.ravel()[keep], minlength=nb)
    r_sum = np.bincount(w, weights=dist.ravel()[keep], minlength=nb)
    ok = n_lags > 0
    radial = pd.DataFrame({"r_um": r_sum[ok] / n_lags[ok], "s2": s2_sum[ok] / n_lags[ok],
                           "n_lags": n_lags[ok]})
    radial["c"] = radial["s2"] - eps_a * eps_b
    radial = radial[["r_um", "s2", "c", "n_lags"]]

    rows = []
    centre = tuple(radius)
    for i, dim in enumerate(seg.dims):
        for k in range(radius[i] + 1):
            plus = list(centre)
            minus = list(centre)
            plus[i] += k
            minus[i] -= k
            v = 0.5 * (s2[tuple(plus)] + s2[tuple(minus)])
            rows.append((dim, k * spacing[i], v, v - eps_a * eps_b))
    axes = pd.DataFrame(rows, columns=["axis", "r_um", "s2", "c"])

    lags = xr.DataArray(s2, dims=[f"d{d}" for d in seg.dims],
                        coords={f"d{d}": o * s for d, o, s in zip(seg.dims, offs, spacing)},
                        name="s2", attrs={"units": "1", "phase_a": phase_a, "phase_b": phase_b})
    return TwoPointCorrelation(phase_a, phase_b, eps_a, eps_b, radial, axes, lags)
