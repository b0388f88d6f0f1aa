"""Secondary-ion (SI) images from a ToF-SIMS cube: m/z windows, totals, relative
intensities and RGB overlays (seed 000 section 2.1, Fig. 1A-C)."""

from __future__ import annotations

from collections.abc import Mapping

import dask.array as da
import numpy as np
import xarray as xr

from ..core.arrays import as_volume
from ..core.errors import InputError
from ..core.progress import compute

__all__ = ["si_images", "species_image", "relative_intensity", "rgb_overlay",
           "robust_max", "check_cube"]


def check_cube(cube, argument="cube"):
    """Validate a ``("y", "x", "mz")`` DataArray with an ``mz`` coordinate."""
    if not isinstance(cube, xr.DataArray):
        raise InputError(argument, f"an xarray.DataArray with dims ('y', 'x', 'mz'), got {type(cube).__name__}")
    if cube.dims != ("y", "x", "mz"):
        raise InputError(argument, f"dims ('y', 'x', 'mz'), got {cube.dims}")
    if "mz" not in cube.coords:
        raise InputError(argument, "an 'mz' coordinate (m/z of each channel)")
    return as_volume(cube, argument=argument)


def _windows(species):
    if not isinstance(species, Mapping) or not species:
        raise InputError("species", f"a non-empty mapping {{name: (mz, half_width)}}, got {species!r}")
    out = {}
    for name, win in species.items():
        try:
            mz, hw = (float(v) for v in win)
        except (TypeError, ValueError):
            raise InputError("species", f"(mz, half_width) pairs, got {name!r}: {win!r}") from None
        if not (np.isfinite(mz) and hw > 0):
            raise InputError("species", f"finite m/z and a positive half width, got {name!r}: {win!r}")
        out[str(name)] = (mz, hw)
    return out


def _bin_edges(cube, mzc):
    edges = cube.attrs.get("mz_edges")
    if edges is not None and len(edges) == mzc.size + 1:
        e = np.asarray(edges, dtype=np.float64)
        return e[:-1], e[1:]
    if mzc.size == 1:
        return mzc, mzc
    order = np.argsort(mzc)
    srt = mzc[order]
    mid = 0.5 * (srt[1:] + srt[:-1])
    lo = np.concatenate([[srt[0] - (mid[0] - srt[0])], mid])
    hi = np.concatenate([mid, [srt[-1] + (srt[-1] - mid[-1])]])
    lo_o, hi_o = np.empty_like(lo), np.empty_like(hi)
    lo_o[order], hi_o[order] = lo, hi
    return lo_o, hi_o


def si_images(cube, species, total=True):
    """Integrate m/z windows of a spectral cube into SI images (lazy sums along ``mz``).

    Parameters
    ----------
    cube : xarray.DataArray
        Counts with dims ``("y", "x", "mz")`` and an ``mz`` coordinate (channel centres),
        chunked along any axes. Bin edges are ``attrs["mz_edges"]`` when present, else
        half-way between channel centres.
    species : dict
        ``{name: (mz, half_width)}``: the channels whose bins overlap
        ``[mz - half_width, mz + half_width]`` are summed (e.g. ``{"Si-": (27.98, 0.05)}``).
    total : bool
        Also return the total-ion image (the sum over all channels, seed 000 Fig. 1A).

    Returns
    -------
    xarray.Dataset
        ``si``: float32 ``("y", "x", "mz")`` stack, one channel per species, with
        coordinates ``mz`` (window centres) and ``species`` (names) along ``mz``, one chunk
        along ``mz``; ``total``: float32 ``("y", "x")``. Lazy; the window sums do not
        depend on the chunking (integer counts summed exactly in float64).

    Raises
    ------
    InputError
        Wrong dims, a window holding no channel.

    Examples
    --------
    >>> from electromicro_dask.synth import sims_section, sims_cube
    >>> cube = sims_cube(sims_section((64, 64), 0.25), n_channels=64)
    >>> si = si_images(cube, {"Si-": (27.98, 0.3), "C2-": (24.0, 0.3)})
    >>> si.si.shape, list(si.species.values)
    ((64, 64, 2), ['Si-', 'C2-'])
    """
    cube = check_cube(cube)
    wins = _windows(species)
    mzc = np.asarray(cube.mz.values, dtype=np.float64)
    lo_e, hi_e = _bin_edges(cube, mzc)
    layers = []
    for name, (mz, hw) in wins.items():
        # Channels whose bin overlaps the window (a peak may straddle a bin edge).
        sel = np.nonzero((hi_e > mz - hw) & (lo_e < mz + hw))[0]
        if sel.size == 0:
            raise InputError("species", f"a window holding at least one channel; {name!r} "
                             f"({mz} +- {hw}) is outside or between channels "
                             f"[{mzc.min():.3f}, {mzc.max():.3f}]")
        part = cube.data[:, :, int(sel[0]):int(sel[-1]) + 1]
        if sel.size != sel[-1] - sel[0] + 1:  # non-contiguous (unsorted mz axis)
            part = cube.data[:, :, sel]
        layers.append(part.sum(axis=2, dtype=np.float64).astype(np.float32))
    stack = da.stack(layers, axis=2).rechunk({2: -1})
    names = list(wins)
    si = xr.DataArray(stack, dims=("y", "x", "mz"),
                      coords={"y": cube.y, "x": cube.x,
                              "mz": xr.Variable("mz", [wins[n][0] for n in names],
                                                attrs={"units": "m/z"}),
                              "species": ("mz", names)},
                      attrs={"units": "counts",
                             "windows": {n: list(wins[n]) for n in names}})
    out = {"si": si}
    if total:
        tot = cube.data.sum(axis=2, dtype=np.float64).astype(np.float32)
        out["total"] = xr.DataArray(tot, dims=("y", "x"), coords={"y": cube.y, "x": cube.x},
                                    attrs={"units": "counts"})
    return xr.Dataset(out)


def _stack_of(si):
    if isinstance(si, xr.Dataset):
        if "si" in si:
            si = si["si"]
        else:
            # A Dataset of 2D SI images named by species (as a store keeps them).
            names = [str(n) for n in si.data_vars if n != "total" and si[n].dims == ("y", "x")]
            if not names:
                raise InputError("si", "a Dataset from si_images ('si' stack) or of 2D SI "
                                 "images named by species")
            stack = da.stack([si[n].data.astype(np.float32) for n in names], axis=2)
            si = xr.DataArray(stack.rechunk({2: -1}), dims=("y", "x", "mz"),
                              coords={"y": si.y, "x": si.x,
                                      "mz": np.arange(len(names), dtype=np.float64),
                                      "species": ("mz", names)})
    if not isinstance(si, xr.DataArray) or si.dims != ("y", "x", "mz") or "species" not in si.coords:
        raise InputError("si", "SI images: dims ('y', 'x', 'mz') with a 'species' coordinate "
                         "(the output of si_images or a reader)")
    return si


def species_image(si, names):
    """Sum of the SI images of ``names`` (one species name or a list), lazy float32.

    Examples
    --------
    >>> from electromicro_dask.synth import sims_section, sims_cube
    >>> si = si_images(sims_cube(sims_section((32, 32), 0.25), n_channels=64),
    ...                {"LiO-": (23.01, 0.3), "LiCO2-": (51.0, 0.3)})
    >>> species_image(si, ["LiO-", "LiCO2-"]).dims
    ('y', 'x')
    """
    stack = _stack_of(si)
    names = [names] if isinstance(names, str) else list(names)
    have = [str(s) for s in stack.species.values]
    missing = [n for n in names if n not in have]
    if not names or missing:
        raise InputError("species", f"names from {have}, got {names}")
    idx = [have.index(n) for n in names]
    img = stack.isel(mz=idx).sum("mz", dtype=np.float32)
    img = img.drop_vars([c for c in img.coords if c not in ("y", "x")])
    img.attrs = {"units": "counts", "species": names}
    return img


def robust_max(image, percentile=99.5, max_samples=1_000_000):
    """The ``percentile`` of an image's values, computed on a fixed strided subsample.

    The subsample (every k-th pixel along each axis, k chosen so at most
    ``max_samples`` pixels are taken) depends only on the image's shape, so the result is
    the same for any chunking. One small global computation.
    """
    arr = image.data if isinstance(image, xr.DataArray) else image
    step = max(1, int(np.ceil((arr.size / max_samples) ** (1.0 / arr.ndim))))
    sub = arr[tuple(slice(None, None, step) for _ in range(arr.ndim))]
    (vals,) = compute(sub, label="robust max")
    vals = np.asarray(vals, dtype=np.float64)
    return float(np.percentile(vals, percentile))


def relative_intensity(images, percentile=99.5):
    """Normalise each image to its robust maximum, so different SIs compare (seed 000:
    each pixel is given to the phase with the highest *relative* intensity).

    Parameters
    ----------
    images : dict of DataArray or xarray.Dataset
        Images to normalise (e.g. per-phase sums of SI images).
    percentile : float
        Percentile of each image taken as its 1.0 (robust against hot pixels).

    Returns
    -------
    xarray.Dataset
        float32 images, lazy, with ``attrs["scale"]`` the divisor (one small global
        computation per image, see :func:`robust_max`).

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume
    >>> img = as_volume(np.arange(100.0).reshape(10, 10), voxel_size=1.0)
    >>> float(relative_intensity({"a": img}, percentile=100)["a"].max())
    1.0
    """
    items = dict(images.data_vars) if isinstance(images, xr.Dataset) else dict(images)
    out = {}
    for name, img in items.items():
        scale = robust_max(img, percentile)
        scale = scale if scale > 0 else 1.0
        rel = (img / np.float32(scale)).astype(np.float32)
        rel.attrs = {"scale": scale, "percentile": percentile}
        out[name] = rel
    return xr.Dataset(out)


def rgb_overlay(red=None, green=None, blue=None, percentile=99.5):
    """An RGB overlay of up to three images (seed 000 Fig. 1C), each scaled to [0, 1].

    Returns
    -------
    xarray.DataArray
        float32, dims ``("y", "x", "rgb")``, lazy; a missing channel is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume
    >>> img = as_volume(np.ones((8, 8)), voxel_size=1.0)
    >>> rgb_overlay(red=img).shape
    (8, 8, 3)
    """
    chans = [red, green, blue]
    ref = next((c for c in chans if c is not None), None)
    if ref is None:
        raise InputError("red", "at least one of red, green, blue")
    layers = []
    for c in chans:
        if c is None:
            layers.append(da.zeros(ref.shape, dtype=np.float32, chunks=ref.data.chunks))
        else:
            s = robust_max(c, percentile) or 1.0
            layers.append(da.clip(c.data.astype(np.float32) / np.float32(s), 0, 1))
    return xr.DataArray(da.stack(layers, axis=-1), dims=("y", "x", "rgb"),
                        coords={"y": ref.y, "x": ref.x, "rgb": ["red", "green", "blue"]})
