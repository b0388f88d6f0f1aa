"""PFIB-SEM segmentation (seed 001, "PFIB-SEM" experimental section): pore-back correction
and four phases (am, crack, cbd, pore) from relative intensity and top-hat filtering.

Pore back: a pore shows the brighter material behind it (deeper along the milling axis),
which a plain threshold takes for CBD. The seed tracks "voxels that remain relatively
unchanged from one slice to the other" with an adaptive background mixture model
(Stauffer and Grimson, CVPR 1999; Zivkovic, ICPR 2004): each pixel's value over the slice
sequence (the milling axis taken as time) is modelled, and values that persist frame after
frame are background. :func:`correct_pore_back` implements the equivalent per-column
temporal-stability test: the slice sequence of one pixel is cut into runs whose
consecutive values agree within ``tolerance`` (a one-component background model whose mean
follows the last value, i.e. learning rate 1, matched within ``k`` standard deviations as
in Stauffer and Grimson's matching rule). Sectioned material changes from slice to slice
(its texture is new in each section), whereas the pore back shows the same back wall for
as many slices as the pore is deep; runs of at least ``min_run_voxels`` stable voxels that
are not as bright as the active material are pore back, after an in-plane majority vote.

A pore only one to three slices deep in front of a particle (a CBD layer detached from the
particle by a thin gap, seed 001 Fig. 2D) gives that test nothing to work with, and it shows
the particle behind it at about the CBD grey value. :func:`pfib_phases` therefore also
applies a wall-copy test to CBD-grey voxels that have active material behind them along
the milling axis: pore back is a dimmed copy of the wall it shows,
``I = p + g a^(d-1) (I_wall - p)`` (``p`` the pore level, ``g`` the gain, ``a`` the
attenuation per slice, ``d`` the depth to the wall), so its residual against that model is
acquisition noise only, whereas sectioned CBD carries its own texture, new in every slice.
``g``, ``a`` and the residual's noise are learned from the voxels that the temporal test
has already recognised as pore back in front of a particle.
"""

from __future__ import annotations

import dask.array as da
from dask.array.overlap import ensure_minimum_chunksize
import numpy as np
import xarray as xr
from scipy import ndimage

from ..core.arrays import as_volume
from ..core.errors import InputError
from ..core.progress import compute

__all__ = ["correct_pore_back", "pfib_phases", "powder_phases", "PFIB_PHASES"]

PFIB_PHASES = {0: "pore", 1: "cbd", 2: "am", 3: "crack"}
_NBINS = 256


def _histogram(data):
    lo, hi = compute(data.min(), data.max(), label="grey range")
    lo, hi = float(lo), float(hi)
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise InputError("image", "finite grey values")
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = da.histogram(data, bins=_NBINS, range=(lo, hi))
    (counts,) = compute(counts, label="grey histogram")
    return counts, 0.5 * (edges[1:] + edges[:-1])


def _multiotsu(counts, centers, classes=3):
    from skimage.filters import threshold_multiotsu

    return tuple(float(t) for t in threshold_multiotsu(hist=(counts, centers), classes=classes))


def _smooth_inplane(block, axis, size):
    sizes = [size] * block.ndim
    sizes[axis] = 1
    return ndimage.uniform_filter(block.astype(np.float32), size=sizes, mode="nearest")


def _runs(block, axis, size, tol, run):
    s = np.moveaxis(_smooth_inplane(block, axis, size), axis, 0)
    n = s.shape[0]
    link = np.abs(np.diff(s, axis=0)) < tol  # link k joins voxels k and k + 1
    fwd = np.zeros(s.shape, dtype=np.int16)
    bwd = np.zeros(s.shape, dtype=np.int16)
    alive_f = np.ones(s.shape, dtype=bool)
    alive_b = np.ones(s.shape, dtype=bool)
    for j in range(run - 1):
        lf = np.zeros(s.shape, dtype=bool)
        lf[: max(n - 1 - j, 0)] = link[j:]
        lb = np.zeros(s.shape, dtype=bool)
        lb[j + 1:] = link[: max(n - 1 - j, 0)]
        alive_f &= lf
        alive_b &= lb
        fwd += alive_f
        bwd += alive_b
    stable = (fwd + bwd) >= run - 1
    return np.moveaxis(stable, 0, axis), np.moveaxis(s, 0, axis)


def _pore_back_block(block, axis, size, tol, run, t_am, pore_value, clean, want_mask):
    stable, s = _runs(block, axis, size, tol, run)
    mask = stable & (s < t_am)
    if clean > 1:
        # Pore back covers in-plane patches (the pore's cross-section); an in-plane
        # majority vote removes isolated chance runs in textured CBD and fills gaps.
        sizes = [clean] * block.ndim
        sizes[axis] = 1
        mask = ndimage.median_filter(mask.view(np.uint8), size=sizes, mode="nearest").astype(bool)
    mask &= s > pore_value
    if want_mask:
        return mask
    return np.where(mask, np.float32(pore_value), block).astype(block.dtype)


def _axis(image, milling_axis):
    if not isinstance(milling_axis, str) or milling_axis not in image.dims:
        raise InputError("milling_axis", f"one of the image dims {image.dims}, got {milling_axis!r}")
    return image.dims.index(milling_axis)


def correct_pore_back(image, milling_axis="z", tolerance=None, min_run_voxels=4,
                      smooth_voxels=1, clean_voxels=5, return_mask=False):
    """Detect and remove pore-back artefacts of a PFIB-SEM stack by temporal stability.

    A per-column temporal-stability test along the milling axis (the adaptive background
    model of Stauffer and Grimson 1999 / Zivkovic 2004 reduced to one component with
    learning rate 1, see the module notes): voxels in runs of at least ``min_run_voxels``
    consecutive slices whose in-plane-smoothed grey value changes by less than
    ``tolerance`` from slice to slice, darker than the active material, are pore back
    and are set to the pore grey value.

    Parameters
    ----------
    image : xarray.DataArray
        Grey-value volume (float), dims including ``milling_axis``.
    milling_axis : str
        Dimension along which the sections were milled (the look-ahead direction).
    tolerance : float, optional
        Largest slice-to-slice change of a stable voxel, in grey-value units. Default:
        2.5 standard deviations of the acquisition noise (Stauffer and Grimson's matching
        rule), the noise estimated from the slice-to-slice change of pure pores (darker
        than the midpoint between the pore level and the pore/CBD threshold, where only
        the noise changes) as median absolute change / (0.6745 * sqrt(2)).
    min_run_voxels : int
        Shortest run (in slices) recognised as pore back.
    smooth_voxels : int
        Size of the in-plane mean filter applied before the test (1: none).
    clean_voxels : int
        Size of the in-plane majority (median) filter applied to the mask (1: none).
    return_mask : bool
        Return the boolean pore-back mask instead of the corrected image.

    Returns
    -------
    xarray.DataArray
        Corrected image (same dtype) or boolean mask, lazy.

    Raises
    ------
    InputError
        ``milling_axis`` not a dimension of ``image``; bad parameters.

    Notes
    -----
    Computes the grey-value histogram (two small global reductions) for the pore level
    and the active-material threshold (three-class Otsu), and, when ``tolerance`` is not
    given, one reduction over the dark voxels. Chunked with ``map_overlap``: depth
    ``min_run_voxels`` along the milling axis, ``smooth_voxels // 2 + clean_voxels // 2``
    in-plane.

    Examples
    --------
    >>> from electromicro_dask import synth, segment
    >>> ds = synth.pfib_electrode((24, 48, 48), voxel_size=(0.1, 0.05, 0.05),
    ...                           particle_radius_um=(0.6, 0.1), seed=1)
    >>> img = synth.pfib_stack(ds["phases"])
    >>> segment.correct_pore_back(img, milling_axis="z").shape
    (24, 48, 48)
    """
    if not isinstance(image, xr.DataArray):
        image = as_volume(image, argument="image")
    ax = _axis(image, milling_axis)
    run = int(min_run_voxels)
    if run < 2:
        raise InputError("min_run_voxels", f"an int >= 2, got {min_run_voxels!r}")
    size = int(smooth_voxels)
    if size < 1:
        raise InputError("smooth_voxels", f"a positive int, got {smooth_voxels!r}")
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float32)
    data = image.data
    counts, centers = _histogram(data)
    t_pore, t_am = _multiotsu(counts, centers)
    dark = centers < t_pore
    pore_value = float(centers[dark][np.argmax(counts[dark])]) if dark.any() else float(centers[0])
    if tolerance is None:
        # Pure pores only (well below the pore/CBD threshold): there only the
        # acquisition noise changes from slice to slice.
        tol = _noise_tolerance(data, ax, size, 0.5 * (pore_value + t_pore))
    else:
        tol = float(tolerance)
        if not tol > 0:
            raise InputError("tolerance", f"a positive grey-value step, got {tolerance!r}")
    clean = int(clean_voxels)
    if clean < 1:
        raise InputError("clean_voxels", f"a positive int, got {clean_voxels!r}")
    depth = {a: (run if a == ax else size // 2 + clean // 2) for a in range(data.ndim)}
    depth = {a: min(d, data.shape[a]) for a, d in depth.items()}
    data = data.rechunk(tuple(ensure_minimum_chunksize(max(depth[a], 1), c)
                              for a, c in enumerate(data.chunks)))
    out = data.map_overlap(_pore_back_block, depth=depth, boundary="none", trim=True,
                           dtype=bool if return_mask else data.dtype, axis=ax, size=size,
                           tol=tol, run=run, t_am=t_am, pore_value=pore_value,
                           clean=clean, want_mask=bool(return_mask))
    res = image.copy(data=out)
    res.name = "pore_back" if return_mask else image.name
    res.attrs = dict(image.attrs, pore_back_tolerance=tol, pore_value=pore_value,
                     milling_axis=milling_axis, min_run_voxels=run)
    return res


def _noise_tolerance(data, ax, size, t_dark, k=2.5):
    if size > 1:
        depth = {a: (0 if a == ax else size // 2) for a in range(data.ndim)}
        data = data.map_overlap(_smooth_inplane, depth=depth, boundary="none", axis=ax,
                                size=size, dtype=np.float32)
    n = data.shape[ax]
    a = data[tuple(slice(1, n) if d == ax else slice(None) for d in range(data.ndim))]
    b = data[tuple(slice(0, n - 1) if d == ax else slice(None) for d in range(data.ndim))]
    change = abs(a - b)
    dark = (a < t_dark) & (b < t_dark)
    # Median |change| of pure-pore voxel pairs from a fine histogram (chunk-invariant
    # integer counts); for Gaussian noise of sd s, median |x1 - x2| = 0.6745 * sqrt(2) * s.
    (top,) = compute(da.where(dark, change, 0).max(), label="pore-back noise range")
    top = float(top)
    if not top > 0:
        raise InputError("image", "some dark (pore) voxels to estimate the noise; pass tolerance")
    counts, edges = da.histogram(change, bins=4096, range=(0.0, top),
                                 weights=dark.astype(np.float64))
    (counts,) = compute(counts, label="pore-back noise")
    cum = np.cumsum(counts)
    med = edges[np.searchsorted(cum, cum[-1] / 2.0) + 1]
    return float(k * med / (0.6745 * np.sqrt(2.0)))


def _ellipsoid(radii):
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radii)]
    return sum((g / max(r, 1e-9)) ** 2 if r > 0 else g.astype(float) ** 2 * 1e9
               for g, r in zip(grids, radii)) <= 1.0 + 1e-9


def _phases_block(block, t_void, t_am, foot, foot_in, tophat, th_delta, axis):
    img = block.astype(np.float32)
    am = img > t_am
    void = img < t_void
    if tophat > 1:
        # Black top-hat (closing minus image, in-plane): thin dark gaps inside bright
        # particles whose grey value is lifted toward CBD by partial volume.
        sizes = [tophat] * img.ndim
        sizes[axis] = 1
        bth = ndimage.grey_closing(img, size=sizes, mode="nearest") - img
        gap = bth > th_delta
        void |= gap & ~am
    # Voids and CBD-grey voxels enclosed by a secondary particle are cracks: CBD and pores
    # lie between particles. Enclosed = inside the closing of the AM mask (which bridges
    # the crack) and at least crack_depth_um deep in it (the closing also fills the
    # concave necks between touching particles, which reach the particle envelope).
    inside = ndimage.grey_closing(am.view(np.uint8), footprint=foot, mode="nearest")
    if foot_in is not None:
        inside = ndimage.grey_erosion(inside, footprint=foot_in, mode="nearest")
    inside = inside.astype(bool)
    out = np.where(void, np.uint8(0), np.uint8(1))
    out[inside & ~am] = 3
    out[am] = 2
    return out


#: Wall-copy test (module notes): a chain of voxels in front of a wall is pore back when the
#: mean squared residual from the wall outward is below _WALL_MS noise variances and at least
#: half the candidates in its in-plane window agree; where _WALL_REGION of them agree the
#: voxel follows its region (a detached patch), whatever its own residual.
_WALL_MS = 2.0
_WALL_REGION = 0.6
_WALL_BINS = 1024


def _wall_chain(img, t_void, t_am, depth):
    """Along axis 0: the distance ``d`` (1..depth) from each CBD-grey voxel to the first
    active-material voxel behind it (larger index) reached through CBD-grey voxels only,
    and that wall's grey value (``d = 0`` and NaN where there is none)."""
    n = img.shape[0]
    mid = (img > t_void) & (img < t_am)
    am = img > t_am
    dist = np.zeros(img.shape, dtype=np.int16)
    wall = np.full(img.shape, np.nan)
    for k in range(n - 2, -1, -1):
        # The chain of voxel k continues that of the voxel behind it.
        nd = np.where(am[k + 1], 1, np.where(dist[k + 1] > 0, dist[k + 1] + 1, 0))
        ok = mid[k] & (nd > 0) & (nd <= depth)
        dist[k] = np.where(ok, nd, 0)
        wall[k] = np.where(ok, np.where(am[k + 1], img[k + 1], wall[k + 1]), np.nan)
    return dist, wall


def _chain_mean_square(r, dist):
    """Mean of ``r**2`` over each voxel's chain from the wall out to the voxel (axis 0)."""
    total = np.zeros(r.shape)
    count = np.zeros(r.shape, dtype=np.int16)
    for k in range(r.shape[0] - 2, -1, -1):
        on = dist[k] > 0
        more = dist[k] > 1  # the voxel behind belongs to the same chain
        total[k] = np.where(on, r[k] ** 2 + np.where(more, total[k + 1], 0.0), 0.0)
        count[k] = np.where(on, 1 + np.where(more, count[k + 1], 0), 0)
    return total / np.maximum(count, 1)


def _box_count(mask, window):
    """Number of True voxels in the in-plane ``window`` (axes 1..) around each voxel, zero
    outside the array; exact integer sums, so identical for any chunking."""
    out = mask.astype(np.int32)
    h = window // 2
    for ax in range(1, mask.ndim):
        pad = [(0, 0)] * mask.ndim
        pad[ax] = (h + 1, h)
        c = np.cumsum(np.pad(out, pad), axis=ax)
        n = mask.shape[ax]
        hi = np.take(c, np.arange(window, window + n), axis=ax)
        lo = np.take(c, np.arange(0, n), axis=ax)
        out = hi - lo
    return out


def _wall_samples_block(img, corrected, axis, depth, t_void, t_am, pore_value, own):
    """Histograms (depth, bins) of the dimming ``q = (I - p) / (I_wall - p)`` per depth over
    the CBD-grey voxels in front of a wall that the temporal test set to the pore value
    (``corrected``), counted where ``own`` (the block without its halo)."""
    i = np.moveaxis(img, axis, 0).astype(np.float64)
    fixed = np.moveaxis(corrected, axis, 0) == np.float32(pore_value)
    dist, wall = _wall_chain(i, t_void, t_am, depth)
    # Samples: chains the temporal test corrected all the way to the wall (a chain
    # through sectioned CBD would mix that CBD's texture into the model).
    take = np.zeros(i.shape, dtype=bool)
    for k in range(i.shape[0] - 1, -1, -1):
        behind = take[k + 1] if k + 1 < i.shape[0] else False
        take[k] = (dist[k] > 0) & fixed[k] & ((dist[k] == 1) | behind)
    take &= np.moveaxis(own, axis, 0)
    q = (i[take] - pore_value) / (wall[take] - pore_value)
    d = dist[take].astype(np.int64) - 1
    b = np.clip((q * _WALL_BINS).astype(np.int64), 0, _WALL_BINS - 1)
    hist = np.bincount(d * _WALL_BINS + b, minlength=depth * _WALL_BINS)
    return hist.reshape(depth, _WALL_BINS)


def _weighted_median(values, counts):
    order = np.argsort(values, kind="stable")
    c = np.cumsum(counts[order])
    return float(values[order][np.searchsorted(c, c[-1] / 2.0)])


def _wall_model(img_data, corrected, axis, depth, t_void, t_am, pore_value):
    """Gain and attenuation per slice of the pore back, learned from the voxels the temporal
    test corrected in front of a wall (module notes): the median dimming at each depth,
    ``log q_d = log g + (d - 1) log a`` fitted by weighted least squares. None unless two
    depths have 20 such voxels or more (the temporal test's runs span several slices, so
    real pore back gives samples at several depths)."""
    dd = {a: min(depth if a == axis else 0, img_data.shape[a]) for a in range(img_data.ndim)}
    none = {a: "none" for a in dd}
    ov_i = da.overlap.overlap(img_data, depth=dd, boundary=none)
    ov_s = da.overlap.overlap(corrected, depth=dd, boundary=none)

    def block(i, corr, block_info=None):
        # Count the voxels of this block only, not those of its halo.
        loc = block_info[0]["chunk-location"][axis]
        last = block_info[0]["num-chunks"][axis] - 1
        own = [slice(None)] * i.ndim
        own[axis] = slice(dd[axis] if loc > 0 else 0,
                          i.shape[axis] - (dd[axis] if loc < last else 0))
        mask = np.zeros(i.shape, dtype=bool)
        mask[tuple(own)] = True
        h = _wall_samples_block(i, corr, axis, depth, t_void, t_am, pore_value, mask)
        return h[(None,) * i.ndim]

    counts = da.map_blocks(block, ov_i, ov_s, dtype=np.int64,
                           new_axis=list(range(img_data.ndim, img_data.ndim + 2)),
                           chunks=tuple((1,) * len(c) for c in ov_i.chunks)
                           + ((depth,), (_WALL_BINS,)))
    (hist,) = compute(counts.sum(axis=tuple(range(img_data.ndim))), label="pore-back model")
    centers = (np.arange(_WALL_BINS) + 0.5) / _WALL_BINS
    n_d = hist.sum(axis=1)
    use = np.nonzero(n_d >= 20)[0]
    if use.size < 2:
        return None
    med = np.array([_weighted_median(centers, hist[d]) for d in use])
    slope, icept = np.polyfit(use.astype(float), np.log(med), 1, w=np.sqrt(n_d[use]))
    return {"gain": float(np.exp(icept)), "attenuation": float(min(np.exp(slope), 1.0)),
            "samples": int(n_d.sum())}


def _wall_copy_block(img, seg, axis, depth_voxels, window, t_void, t_am, pore_value, gain,
                     atten, sigma, cbd):
    i = np.moveaxis(img, axis, 0).astype(np.float64)
    sg = np.moveaxis(seg, axis, 0)
    dist, wall = _wall_chain(i, t_void, t_am, depth_voxels)
    cand = dist > 0
    r = np.where(cand, i - pore_value - gain * atten ** (dist - 1.0) * (wall - pore_value), 0.0)
    good = cand & (_chain_mean_square(r, dist) < _WALL_MS * sigma ** 2)
    n = _box_count(cand, window)
    ng = _box_count(good, window)
    copy = cand & (sg == cbd) & ((good & (2 * ng >= n)) | (ng >= _WALL_REGION * n))
    return np.moveaxis(np.where(copy, np.uint8(0), sg).astype(seg.dtype), 0, axis)


def _enclosed(solid, like):
    """Voxels outside ``solid`` whose face-connected region does not reach the border of the
    volume: ``scipy.ndimage.binary_fill_holes(solid) & ~solid`` on chunked data, through
    the chunked labeling of :func:`~electromicro_dask.label.connected_components`."""
    from ..label import connected_components

    labels = connected_components(like.copy(data=~solid), connectivity=1).data
    faces = []
    for a in range(labels.ndim):
        for i in (0, labels.shape[a] - 1):
            faces.append(da.take(labels, [i], axis=a).ravel())
    (border,) = compute(da.unique(da.concatenate(faces)), label="voids reaching the border")
    return (labels > 0) & ~da.isin(labels, border)


def pfib_phases(image, milling_axis="z", pore_back=True, thresholds=None,
                crack_closing_um=0.1, crack_depth_um=0.2, tophat_voxels=3, cracks_as_pore=False,
                wall_copy=True, pore_back_depth_voxels=8, wall_window_voxels=5,
                fill_enclosed=True, **pore_back_kwargs):
    """Four phases of a PFIB-SEM stack: am, crack, cbd, pore (seed 001).

    After the pore-back correction (:func:`correct_pore_back`), voxels are classed by
    relative intensity (three-class Otsu thresholds: voids, CBD, active material) and a
    black top-hat (thin dark gaps in bright particles count as voids); voids and
    CBD-grey voxels enclosed by secondary particles (inside a closing of the AM mask with
    an ellipsoid of radius ``crack_closing_um``, eroded by ``crack_depth_um``) are cracks,
    the others pores or CBD. Voids and CBD-grey regions that active material encloses in 3D
    (seed 001: intergranular cracks stop inside their secondary particle) are cracks
    too, however wide: a hole filling, which a junction of several cracks needs where the
    closing cannot bridge it. A crack shows the particle behind it dimmed to about the
    CBD's grey, so enclosed voxels nearer the AM threshold than that grey level (the
    median of the middle class) are the particle's darkest grains, not cracks.

    Parameters
    ----------
    image : xarray.DataArray
        Grey-value volume (float), brighter = denser (NMC > CBD > void).
    milling_axis : str
        The milling (slice) axis, for the pore-back correction and the in-plane filters.
    pore_back : bool
        Apply :func:`correct_pore_back` first.
    thresholds : (float, float), optional
        Void/CBD and CBD/AM grey thresholds (default: three-class Otsu of the corrected
        image's histogram, Liao, Chen and Chung 2001).
    crack_closing_um : float
        Radius (um) of the closing that bridges cracks; about half the widest crack.
    crack_depth_um : float
        Least depth (um) of a crack inside the closed particle envelope.
    tophat_voxels : int
        In-plane size of the black top-hat (1: none).
    cracks_as_pore : bool
        Merge cracks into the pore phase (when cracks count as electrolyte).
    wall_copy : bool
        With ``pore_back``, also apply the wall-copy test (module notes) to CBD-grey voxels
        with active material behind them: thin pores in front of particles (a detached
        CBD layer) that are too shallow for the temporal test. The slices must be in
        milling order (the material behind a slice has a larger index).
    pore_back_depth_voxels : int
        Deepest wall (slices behind the voxel) the wall-copy test looks for.
    wall_window_voxels : int
        In-plane size (odd) of the window in which candidates vote on the wall-copy test.
    fill_enclosed : bool
        Class non-AM regions that do not reach the border of the volume, through
        face-connected non-AM voxels, as cracks (``scipy.ndimage.binary_fill_holes`` of
        the AM mask, chunked).
    **pore_back_kwargs
        Passed to :func:`correct_pore_back`.

    Returns
    -------
    xarray.DataArray
        uint8 segmentation, ``attrs["phases"] = {0: "pore", 1: "cbd", 2: "am", 3: "crack"}``
        (without 3 when ``cracks_as_pore``), lazy.

    Raises
    ------
    InputError
        Unknown ``milling_axis``, bad thresholds or sizes.

    Notes
    -----
    The histogram for the thresholds is a small global reduction. Chunked with
    ``map_overlap`` (depth: the closing radius plus the top-hat half-size per axis).
    The hole filling labels the non-AM voxels (one global pass for the labels'
    equivalences, and the blocks on the volume's faces once more for the labels that
    reach the border). The wall-copy test adds two reductions (the
    pore-back model, counted per block without halos, and the pure-pore noise) and one
    ``map_overlap`` pass (depth
    ``pore_back_depth_voxels`` along the milling axis, ``wall_window_voxels // 2``
    in-plane); the segmentation before it is computed twice, so persist the image of a
    large stack first. The learned model is in ``attrs["wall_copy"]`` (``gain``,
    ``attenuation`` per slice, residual noise ``sigma``, ``samples``; None when the image
    shows too little pore back to learn it, and then the test is skipped). On the
    synthetic three-sample study it takes the NMC-CBD contact loss measured for a known
    -9.5 / -19.8 % from -4.6 / -9.5 % to -8.1 / -17.7 % (``benchmarks/bench_pfib_contact.py``);
    the hole filling and the dark-grain rule take the crack growth measured for a known
    +9.1 / +23.2 % from +7.9 / +17.8 % to +9.5 / +22.2 % (``workflows/pfib_seed001.yaml``).

    Examples
    --------
    >>> from electromicro_dask import synth, segment
    >>> ds = synth.pfib_electrode((24, 48, 48), voxel_size=(0.1, 0.05, 0.05),
    ...                           particle_radius_um=(0.6, 0.1), seed=1)
    >>> seg = segment.pfib_phases(synth.pfib_stack(ds["phases"]))
    >>> sorted(seg.attrs["phases"].values())
    ['am', 'cbd', 'crack', 'pore']
    """
    from ..core.arrays import voxel_size

    if not isinstance(image, xr.DataArray):
        image = as_volume(image, argument="image")
    ax = _axis(image, milling_axis)
    if not crack_closing_um >= 0:
        raise InputError("crack_closing_um", f"a non-negative radius, got {crack_closing_um!r}")
    if not crack_depth_um >= 0:
        raise InputError("crack_depth_um", f"a non-negative length, got {crack_depth_um!r}")
    tophat = int(tophat_voxels)
    if tophat < 1:
        raise InputError("tophat_voxels", f"a positive int, got {tophat_voxels!r}")
    wall_depth, window = int(pore_back_depth_voxels), int(wall_window_voxels)
    if wall_depth < 1:
        raise InputError("pore_back_depth_voxels",
                         f"a positive int, got {pore_back_depth_voxels!r}")
    if window < 1 or window % 2 == 0:
        raise InputError("wall_window_voxels", f"a positive odd int, got {wall_window_voxels!r}")
    if not isinstance(image.data, da.Array):
        image = image.chunk()
    img = correct_pore_back(image, milling_axis, **pore_back_kwargs) if pore_back else image
    if not np.issubdtype(img.dtype, np.floating):
        img = img.astype(np.float32)
    counts, centers = _histogram(img.data)
    if thresholds is None:
        t_void, t_am = _multiotsu(counts, centers)
    else:
        try:
            t_void, t_am = (float(t) for t in thresholds)
        except (TypeError, ValueError):
            raise InputError("thresholds", f"two grey values, got {thresholds!r}") from None
        if not t_void < t_am:
            raise InputError("thresholds", f"increasing (void/CBD < CBD/AM), got {thresholds!r}")
    spacing = voxel_size(img)
    radii = [int(np.floor(crack_closing_um / v + 1e-9)) for v in spacing]
    foot = _ellipsoid(radii)
    radii_in = [int(np.floor(crack_depth_um / v + 1e-9)) for v in spacing]
    foot_in = _ellipsoid(radii_in) if max(radii_in) > 0 else None
    data = img.data
    depth = {a: min(2 * radii[a] + radii_in[a] + (0 if a == ax else tophat // 2 + 1),
                    data.shape[a]) for a in range(data.ndim)}
    data = data.rechunk(tuple(ensure_minimum_chunksize(max(depth[a], 1), c)
                              for a, c in enumerate(data.chunks)))
    th_delta = 0.5 * (t_am - t_void)
    out = data.map_overlap(_phases_block, depth=depth, boundary="none", trim=True,
                           dtype=np.uint8, t_void=t_void, t_am=t_am, foot=foot, foot_in=foot_in,
                           tophat=tophat, th_delta=th_delta, axis=ax)
    model = None
    if pore_back and wall_copy:
        raw = image.data
        if not np.issubdtype(raw.dtype, np.floating):
            raw = raw.astype(np.float32)
        raw = raw.rechunk(out.chunks)
        pore_value = float(img.attrs["pore_value"])
        model = _wall_model(raw, img.data.rechunk(out.chunks), ax, wall_depth, t_void, t_am,
                            pore_value)
        if model is not None:
            # The residual's noise: the acquisition noise of the voxel and of its wall
            # (dimmed by at most g), from the slice-to-slice change of pure pores.
            noise = _noise_tolerance(raw, ax, 1, 0.5 * (pore_value + t_void)) / 2.5
            model["sigma"] = float(noise * np.sqrt(1.0 + model["gain"] ** 2))
            dd = {a: min(wall_depth if a == ax else window // 2, data.shape[a])
                  for a in range(data.ndim)}
            chunks = tuple(ensure_minimum_chunksize(max(dd[a], 1), c)
                           for a, c in enumerate(out.chunks))
            out = da.map_overlap(_wall_copy_block, raw.rechunk(chunks), out.rechunk(chunks),
                                 depth=dd, boundary="none", trim=True, dtype=np.uint8,
                                 axis=ax, depth_voxels=wall_depth, window=window,
                                 t_void=t_void, t_am=t_am, pore_value=pore_value,
                                 gain=model["gain"], atten=model["attenuation"],
                                 sigma=model["sigma"], cbd=1)
    if fill_enclosed:
        out = da.where(_enclosed(out == 2, img) & (out != 2), np.uint8(3), out)
    # Inside a particle a crack shows the particle behind it, dimmed to about the CBD's
    # grey; the darkest grains of a textured particle fall just below the AM threshold.
    # Enclosed voxels nearer that threshold than the CBD grey level are particle.
    middle = (centers > t_void) & (centers < t_am)
    if middle.any():
        level = _weighted_median(centers[middle], counts[middle])
        out = da.where((out == 3) & (img.data > 0.5 * (level + t_am)), np.uint8(2), out)
    phases = dict(PFIB_PHASES)
    if cracks_as_pore:
        out = da.where(out == 3, np.uint8(0), out)
        del phases[3]
    seg = img.copy(data=out)
    seg.name = "phases"
    seg.attrs = {"phases": phases, "thresholds": (t_void, t_am), "milling_axis": milling_axis,
                 "pore_back": bool(pore_back), "wall_copy": model,
                 "fill_enclosed": bool(fill_enclosed),
                 "crack_closing_um": float(crack_closing_um),
                 "crack_depth_um": float(crack_depth_um)}
    return seg


def _crack_footprints(img, crack_closing_um, crack_depth_um):
    from ..core.arrays import voxel_size

    spacing = voxel_size(img)
    radii = [int(np.floor(crack_closing_um / v + 1e-9)) for v in spacing]
    radii_in = [int(np.floor(crack_depth_um / v + 1e-9)) for v in spacing]
    return radii, _ellipsoid(radii), radii_in, (_ellipsoid(radii_in) if max(radii_in) > 0
                                                 else None)


_WATERSHED_MARGIN = 8


def _powder_block(block, t_lo, t_hi, foot, foot_in, axis, tophat, th_delta):
    from skimage.segmentation import watershed

    img = block.astype(np.float32)
    markers = np.zeros(img.shape, np.int32)
    markers[img >= t_hi] = 2
    markers[img <= t_lo] = 1
    if tophat > 1:
        # thin dark gaps (cracks) whose grey value partial volume and pore back lift
        # toward the particles': a black top-hat in-plane, as in pfib_phases
        sizes = [tophat] * img.ndim
        sizes[axis] = 1
        bth = ndimage.grey_closing(img, size=sizes, mode="nearest") - img
        markers[bth > th_delta] = 1
    # In-plane gradient magnitude: the milling axis is sampled more coarsely and carries
    # the pore-back residue, so the basins are shaped by the section's own edges.
    grad = np.zeros_like(img)
    for a in range(img.ndim):
        if a != axis:
            grad += ndimage.sobel(img, axis=a, mode="nearest") ** 2
    am = watershed(np.sqrt(grad), markers) == 2
    inside = ndimage.grey_closing(am.view(np.uint8), footprint=foot, mode="nearest")
    if foot_in is not None:
        inside = ndimage.grey_erosion(inside, footprint=foot_in, mode="nearest")
    out = np.zeros(img.shape, np.uint8)
    out[inside.astype(bool) & ~am] = 3
    out[am] = 2
    return out


def powder_phases(image, milling_axis="z", pore_back=True, threshold=None, marker_margin=0.25,
                  crack_closing_um=0.1, crack_depth_um=0.2, tophat_voxels=3,
                  cracks_as_pore=False, **pore_back_kwargs):
    """Pores, active material and cracks of a raw powder (no CBD) by a three-component
    grey-value watershed (seed 001, raw-powder reference).

    Without a CBD phase the grey values between void and particle are partial-volume
    rims, not a third material; a three-class threshold would call them CBD and, inside
    the particle envelopes, cracks. Here voxels clearly darker or brighter than the
    two-class Otsu threshold (by ``marker_margin`` of the distance between the two class
    means) seed a watershed on the in-plane gradient magnitude (Beucher and Meyer 1993,
    :func:`skimage.segmentation.watershed`) that gives every rim voxel to the void or to
    the particle whose edge it belongs to; voids enclosed by a secondary particle (inside
    a closing of the particle mask, ``crack_depth_um`` deep) are cracks, as in
    :func:`pfib_phases`.

    Parameters
    ----------
    image : xarray.DataArray
        Grey-value volume, particles bright.
    milling_axis : str
    pore_back : bool
        Apply :func:`correct_pore_back` first.
    threshold : float, optional
        Void / particle grey threshold (default: two-class Otsu of the corrected image).
    marker_margin : float
        Share of the distance between the void and particle mean grey values kept free of
        markers on each side of the threshold (0 to 0.5).
    crack_closing_um, crack_depth_um, tophat_voxels, cracks_as_pore
        As in :func:`pfib_phases` (the black top-hat's thin dark gaps are void markers).
    **pore_back_kwargs
        Passed to :func:`correct_pore_back`.

    Returns
    -------
    xarray.DataArray
        uint8 ``{0: "pore", 2: "am", 3: "crack"}`` (codes of :data:`PFIB_PHASES`), lazy
        (``map_overlap``).

    Notes
    -----
    Chunked with ``map_overlap``; the overlap adds 8 voxels to the closing's reach, so the
    result is independent of the chunking as long as no unmarked region (a rim between
    void and particle markers) is wider than that, which holds for rims of a few voxels.

    Examples
    --------
    >>> seg = powder_phases(pfib_stack_of_a_powder)                       # doctest: +SKIP
    """
    if not isinstance(image, xr.DataArray):
        image = as_volume(image, argument="image")
    ax = _axis(image, milling_axis)
    if not 0 <= float(marker_margin) < 0.5:
        raise InputError("marker_margin", f"a share in [0, 0.5), got {marker_margin!r}")
    if not crack_closing_um >= 0:
        raise InputError("crack_closing_um", f"a non-negative radius, got {crack_closing_um!r}")
    if not crack_depth_um >= 0:
        raise InputError("crack_depth_um", f"a non-negative length, got {crack_depth_um!r}")
    if not isinstance(image.data, da.Array):
        image = image.chunk()
    img = correct_pore_back(image, milling_axis, **pore_back_kwargs) if pore_back else image
    img = img.astype(np.float32)
    counts, centers = _histogram(img.data)
    t = _multiotsu(counts, centers, classes=2)[0] if threshold is None else float(threshold)
    below, above = centers <= t, centers > t
    if not (counts[below].sum() and counts[above].sum()):
        raise InputError("threshold", f"a grey value between the darkest and brightest, got {t}")
    m0 = float((counts[below] * centers[below]).sum() / counts[below].sum())
    m1 = float((counts[above] * centers[above]).sum() / counts[above].sum())
    gap = float(marker_margin) * (m1 - m0)
    radii, foot, radii_in, foot_in = _crack_footprints(img, crack_closing_um, crack_depth_um)
    data = img.data
    tophat = int(tophat_voxels)
    if tophat < 1:
        raise InputError("tophat_voxels", f"a positive int, got {tophat_voxels!r}")
    # the watershed floods each unmarked rim from the markers around it: a margin of
    # _WATERSHED_MARGIN voxels beyond the closing's reach keeps the flooding order, and
    # so the result, independent of where the blocks end
    depth = {a: min(2 * radii[a] + radii_in[a] + _WATERSHED_MARGIN
                    + (0 if a == ax else tophat // 2 + 1), data.shape[a])
             for a in range(data.ndim)}
    data = data.rechunk(tuple(ensure_minimum_chunksize(max(depth[a], 1), c)
                              for a, c in enumerate(data.chunks)))
    out = data.map_overlap(_powder_block, depth=depth, boundary="none", trim=True,
                           dtype=np.uint8, t_lo=t - gap, t_hi=t + gap, foot=foot,
                           foot_in=foot_in, axis=ax, tophat=tophat, th_delta=0.5 * (m1 - m0))
    phases = {0: "pore", 2: "am", 3: "crack"}
    if cracks_as_pore:
        out = da.where(out == 3, np.uint8(0), out)
        del phases[3]
    seg = img.copy(data=out)
    seg.name = "phases"
    seg.attrs = {"phases": phases, "threshold": t, "markers": (t - gap, t + gap),
                 "milling_axis": milling_axis, "pore_back": bool(pore_back),
                 "method": "three-component watershed (powder)"}
    return seg
