"""Segmentation of SI images into phases, pores and interphases (seed 000 section 2.1).

Each phase image (the sum of its specific SI images) is median filtered against
salt-and-pepper noise and then denoised with non-local means (seed 000, computational
section), normalised to its relative intensity, and every pixel is given to the phase
with the highest relative intensity. Pixels whose total-ion signal is below a threshold
are pores; interphases (SEI, CEI) are drawn on top where their reference-ion images
exceed a threshold (seed 000 Figs. 3A, 4).
"""

from __future__ import annotations

from collections.abc import Mapping

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .. import filters
from ..core.errors import InputError
from ..core.progress import compute
from .images import _stack_of, relative_intensity, robust_max, species_image

__all__ = ["segment_sims", "otsu_threshold", "reference_threshold"]

_UNASSIGNED = 255


def _names(spec, argument):
    if not isinstance(spec, Mapping):
        raise InputError(argument, f"a mapping {{phase: species or [species]}}, got {spec!r}")
    out = {}
    for k, v in spec.items():
        v = [v] if isinstance(v, str) else list(v)
        if not v:
            raise InputError(argument, f"at least one species for {k!r}")
        out[str(k)] = v
    return out


def _histogram(image, bins=1024):
    (hi,) = compute(image.data.max(), label="image max")
    hi = float(hi) if float(hi) > 0 else 1.0
    counts, edges = da.histogram(image.data, bins=bins, range=(0.0, hi))
    (counts,) = compute(counts, label="histogram")
    return np.asarray(counts, dtype=np.float64), edges


def otsu_threshold(image, bins=1024):
    """Otsu's threshold (IEEE Trans. SMC 9 (1979) 62) from the exact global histogram of a
    lazy image (one small global computation; independent of the chunking)."""
    counts, edges = _histogram(image, bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(counts)
    w1 = w0[-1] - w0
    m0 = np.cumsum(counts * centres)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def reference_threshold(image, k=5.0):
    """Default threshold of a reference-ion image: the larger of Otsu's threshold and the
    background level plus ``k`` robust standard deviations (median + k * 1.4826 * MAD on
    the strided subsample of :func:`robust_max`), so a pristine electrode without the
    interphase does not get one from noise."""
    arr = image.data
    step = max(1, int(np.ceil((arr.size / 1_000_000) ** (1.0 / arr.ndim))))
    (sub,) = compute(arr[tuple(slice(None, None, step) for _ in range(arr.ndim))],
                     label="background")
    sub = np.asarray(sub, dtype=np.float64).ravel()
    med = float(np.median(sub))
    mad = float(np.median(np.abs(sub - med))) * 1.4826
    return max(otsu_threshold(image), med + k * mad)


def _noise_sigma(img):
    """Noise level for non-local means, estimated (wavelet MAD, skimage.estimate_sigma)
    on the central 64 x 64 pixels as filters.nl_means does: independent of chunking."""
    import warnings

    from skimage.restoration import estimate_sigma

    centre = tuple(slice(max(0, n // 2 - 32), n // 2 + 32) for n in img.shape)
    (block,) = compute(img.data[centre], label="noise level")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(estimate_sigma(np.asarray(block, dtype=np.float64)))


def _filter(img, median_size, nlm, patch_size, patch_distance):
    out = img
    if median_size and median_size > 1:
        out = filters.median(out, size_voxels=median_size)
    if nlm:
        sigma = _noise_sigma(out)
        # A (nearly) empty image, e.g. a reference ion absent from a pristine electrode,
        # has no noise to estimate: non-local means would only spread NaN.
        if np.isfinite(sigma) and sigma > 0:
            out = filters.nl_means(out, patch_size_voxels=patch_size,
                                   patch_distance_voxels=patch_distance, sigma=sigma)
    return out.astype(np.float32)


def _argmax_block(stack, dominance):
    order = np.argsort(stack, axis=-1)
    top = np.take_along_axis(stack, order[..., -1:], axis=-1)[..., 0]
    codes = order[..., -1].astype(np.uint8)
    if dominance > 1.0 and stack.shape[-1] > 1:
        second = np.take_along_axis(stack, order[..., -2:-1], axis=-1)[..., 0]
        codes[top < dominance * second] = _UNASSIGNED
    return codes


def _resolve_block(codes, radius, n_phases):
    """Give an unassigned pixel the most frequent assigned phase in its window."""
    from scipy.ndimage import uniform_filter

    bad = codes == _UNASSIGNED
    if not bad.any():
        return codes
    size = 2 * radius + 1
    votes = np.stack([uniform_filter((codes == k).astype(np.float32), size, mode="constant")
                      for k in range(n_phases)], axis=-1)
    best = np.argmax(votes, axis=-1).astype(np.uint8)
    none = votes.max(axis=-1) <= 0
    out = codes.copy()
    fill = bad & ~none
    out[fill] = best[fill]
    return out


def segment_sims(si, phases, interphases=None, total=None, pore_threshold=None,
                 interphase_thresholds=None, dominance=1.0, median_size_voxels=3,
                 nl_means=True, patch_size_voxels=5, patch_distance_voxels=6,
                 percentile=99.5, resolve_radius_voxels=2, return_filtered=False):
    """Segment SI images: argmax of relative intensity, pores, interphases on top.

    Parameters
    ----------
    si : xarray.Dataset or xarray.DataArray
        The output of :func:`si_images` (``si`` stack and ``total``), a Dataset of 2D SI
        images named by species (and ``total``), or an SI stack with
        dims ``("y", "x", "mz")`` and a ``species`` coordinate (e.g. from a reader).
    phases : dict
        ``{phase: species or [species]}``: the SIs specific to each phase, e.g.
        ``{"graphite": ["C2-", "C3-"], "silicon": ["Si-", "SiO2-"]}``.
    interphases : dict, optional
        ``{interphase: [reference species]}``, e.g. ``{"sei": ["LiO-", "LiCO2-"]}`` or
        ``{"cei": ["P18OO2-", "LiCO3-", "CO3-"]}`` (seed 000 Figs. 3, 4).
    total : xarray.DataArray, optional
        Total-ion image; default ``si["total"]``, else the sum of all SI images.
    pore_threshold : float, optional
        Pixels whose filtered total-ion signal is below it are pores. Default: Otsu's
        threshold of the filtered total-ion image (its histogram).
    interphase_thresholds : dict, optional
        ``{interphase: threshold}`` on the filtered reference image (counts). Default
        per interphase: :func:`reference_threshold`.
    dominance : float
        A phase must exceed the runner-up's relative intensity by this factor; pixels
        where none does are given the most frequent phase among their neighbours within
        ``resolve_radius_voxels``. 1.0 is the plain argmax.
    median_size_voxels : int
        Median filter size (0 or 1: none).
    nl_means : bool
        Apply non-local means after the median filter.
    patch_size_voxels, patch_distance_voxels : int
        Non-local means patch size and search distance.
    percentile : float
        Percentile of each filtered phase image taken as relative intensity 1.
    return_filtered : bool
        Also return the filtered relative-intensity images (``rel_<phase>`` for phases
        and interphases).

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        uint8 segmentation ``("y", "x")`` with ``attrs["phases"] = {0: "pore", 1: first
        phase, ..., then interphases}`` and ``attrs["thresholds"]``; with
        ``return_filtered`` a Dataset of ``phases`` and the 2D ``rel_<name>`` images.
        Lazy except for the global thresholds and normalisations (small computations on
        histograms and strided subsamples, independent of the chunking).

    Raises
    ------
    InputError
        Unknown species, "pore" among the phases, an empty phase list.

    Examples
    --------
    >>> from electromicro_dask.synth import sims_section, sims_cube
    >>> from electromicro_dask.sims import si_images
    >>> cube = sims_cube(sims_section((64, 64), 0.25), n_channels=64)
    >>> si = si_images(cube, {"C2-": (24.0, 0.3), "Si-": (27.98, 0.3), "LiO-": (23.01, 0.3)})
    >>> seg = segment_sims(si, {"graphite": "C2-", "silicon": "Si-"}, {"sei": "LiO-"})
    >>> seg.attrs["phases"]
    {0: 'pore', 1: 'graphite', 2: 'silicon', 3: 'sei'}
    """
    stack = _stack_of(si)
    ph = _names(phases, "phases")
    inter = _names(interphases or {}, "interphases")
    if not ph:
        raise InputError("phases", "at least one phase")
    clash = ({"pore"} & (set(ph) | set(inter))) | (set(ph) & set(inter))
    if clash:
        raise InputError("phases", f"distinct phase names other than 'pore', got {sorted(clash)} twice")
    if dominance < 1.0:
        raise InputError("dominance", f"a factor >= 1, got {dominance}")
    if total is None:
        if isinstance(si, xr.Dataset) and "total" in si:
            total = si["total"]
        else:
            total = stack.sum("mz", dtype=np.float32).drop_vars(
                [c for c in stack.coords if c not in ("y", "x")], errors="ignore")
    fargs = (median_size_voxels, nl_means, patch_size_voxels, patch_distance_voxels)

    filt = {n: _filter(species_image(si, s), *fargs) for n, s in ph.items()}
    refs = {n: _filter(species_image(si, s), *fargs) for n, s in inter.items()}
    tot_f = _filter(total, *fargs)
    # The filtered 2D images are kept in (worker) memory, 4 bytes per pixel each: the
    # thresholds and normalisations below read them several times, and recomputing
    # non-local means for each would cost more than holding a 2D section.
    keys = [*filt, *(f"ref:{n}" for n in refs), "total"]
    done = dask.persist(*filt.values(), *refs.values(), tot_f)
    held = dict(zip(keys, done))
    filt = {n: held[n] for n in filt}
    refs = {n: held[f"ref:{n}"] for n in refs}
    tot_f = held["total"]
    rel = relative_intensity(filt, percentile)
    # Phase codes 1.. in the given order; 0 is pore.
    rel_stack = da.stack([rel[n].data for n in ph], axis=-1).rechunk({2: -1})
    codes = rel_stack.map_blocks(_argmax_block, dominance=float(dominance), drop_axis=2,
                                 dtype=np.uint8)
    if dominance > 1.0:
        r = int(resolve_radius_voxels)
        codes = codes.map_overlap(_resolve_block, depth=r, boundary="none", dtype=np.uint8,
                                  radius=r, n_phases=len(ph))
        # Still unresolved (no assigned neighbour): plain argmax.
        codes = da.where(codes == _UNASSIGNED,
                         rel_stack.map_blocks(_argmax_block, dominance=1.0, drop_axis=2,
                                              dtype=np.uint8), codes)
    seg = codes + np.uint8(1)

    thr_pore = otsu_threshold(tot_f) if pore_threshold is None else float(pore_threshold)
    seg = da.where(tot_f.data < thr_pore, np.uint8(0), seg)

    thresholds = {"pore": thr_pore}
    table = {0: "pore", **{i + 1: n for i, n in enumerate(ph)}}
    given = dict(interphase_thresholds or {})
    unknown = set(given) - set(inter)
    if unknown:
        raise InputError("interphase_thresholds", f"keys from {sorted(inter)}, got {sorted(unknown)}")
    ref_imgs = {}
    for j, name in enumerate(inter):
        code = len(ph) + 1 + j
        ref = refs[name]
        thr = reference_threshold(ref) if name not in given else float(given[name])
        seg = da.where(ref.data > thr, np.uint8(code), seg)
        thresholds[name] = thr
        table[code] = name
        ref_imgs[name] = ref
    out = xr.DataArray(seg.astype(np.uint8), dims=("y", "x"),
                       coords={"y": stack.y, "x": stack.x}, name="phases",
                       attrs={"phases": table, "thresholds": thresholds, "units": "um",
                              "species": {**ph, **inter}, "dominance": float(dominance)})
    if not return_filtered:
        return out
    out_vars = {"phases": out}
    for n in ph:
        out_vars[f"rel_{n}"] = rel[n].assign_attrs(units="relative intensity")
    for name, ref in ref_imgs.items():
        sc = robust_max(ref, percentile) or 1.0
        out_vars[f"rel_{name}"] = (ref / np.float32(sc)).astype(np.float32).assign_attrs(
            units="relative intensity", scale=sc)
    return xr.Dataset(out_vars)
