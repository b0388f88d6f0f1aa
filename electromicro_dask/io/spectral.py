"""Lazy readers of ToF-SIMS / mass-spectrometry images into ``("y", "x", "mz")`` cubes.

- :func:`read_imzml`: imzML + ibd (continuous and processed), via pyimzml for the XML
  (optional extra ``readers``: ``pip install electromicro-dask[readers]``); the binary
  spectra are read lazily, one block of rows per task, straight from the ``.ibd`` file.
- :func:`read_si_ascii`: the ASCII exports of summed SI images that IONTOF SurfaceLab
  writes and seed 000's code reads: one file per SI image, rows ``x y counts``.
- :func:`read_tiff_stack`: per-peak SI images as a multi-page TIFF or a list of TIFFs.

IONTOF ``.ita``/``.itm`` raw files are not read here: the maintained reader (pySPM) pins
old versions of common packages; export SI images as ASCII or the cube as imzML instead.
Every reader checks the files' structure when it is called (truncated or corrupt files
raise :class:`~electromicro_dask.errors.InputError` before anything is computed).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ..core.arrays import _voxel_tuple
from ..core.errors import InputError

__all__ = ["read_imzml", "read_si_ascii", "read_tiff_stack"]

_STRUCT = {"f": np.float32, "d": np.float64, "i": np.int32, "l": np.int64,
           "h": np.int16, "q": np.int64}


def _cube(data, mz, voxel, name, attrs, species=None):
    ny, nx = data.shape[:2]
    coords = {"y": xr.Variable("y", voxel[0] * np.arange(ny), attrs={"units": "um"}),
              "x": xr.Variable("x", voxel[1] * np.arange(nx), attrs={"units": "um"}),
              "mz": xr.Variable("mz", np.asarray(mz, dtype=np.float64), attrs={"units": "m/z"})}
    if species is not None:
        coords["species"] = ("mz", list(species))
    out = xr.DataArray(data, dims=("y", "x", "mz"), coords=coords, name=name)
    out.attrs.update({"units": "counts", **attrs})
    return out


def _pixel_size(voxel_size, meta, argument="voxel_size"):
    if voxel_size is not None:
        return _voxel_tuple(voxel_size, ("y", "x"), argument)
    px, py = meta.get("pixel size x"), meta.get("pixel size y", meta.get("pixel size x"))
    if px is None:
        raise InputError(argument, "the pixel size in um (the file gives none)")
    return _voxel_tuple((float(py), float(px)), ("y", "x"), argument)


# --------------------------------------------------------------------------- imzML


def _imzml_rows(ibd, rows, nx, mz_off, int_off, lengths, mz_dtype, int_dtype, edges,
                continuous_len):
    """Spectra of a block of rows: direct for continuous files, binned for processed."""
    mm = np.memmap(ibd, dtype=np.uint8, mode="r")
    nch = continuous_len if edges is None else len(edges) - 1
    out = np.zeros((len(rows), nx, nch), np.float32)
    isz, msz = np.dtype(int_dtype).itemsize, np.dtype(mz_dtype).itemsize
    for r, y in enumerate(rows):
        for x in range(nx):
            n = int(lengths[y, x])
            if n <= 0:
                continue
            o = int(int_off[y, x])
            vals = np.frombuffer(mm[o:o + n * isz], dtype=int_dtype)
            if edges is None:
                out[r, x, :n] = vals
            else:
                m = int(mz_off[y, x])
                mzs = np.frombuffer(mm[m:m + n * msz], dtype=mz_dtype)
                k = np.searchsorted(edges, mzs, side="right") - 1
                ok = (k >= 0) & (k < nch)
                out[r, x] += np.bincount(k[ok], weights=vals[ok], minlength=nch)[:nch]
    return out


def read_imzml(path, voxel_size=None, mz_bins=None, rows_per_chunk=None):
    """Read an imzML file (with its ``.ibd``) into a lazy ``("y", "x", "mz")`` cube.

    Parameters
    ----------
    path : str or Path
        The ``.imzML`` file; the ``.ibd`` of the same name must sit next to it.
    voxel_size : float or (float, float), optional
        Pixel size in um; default from the file (IMS:1000046/47), an InputError if the
        file gives none.
    mz_bins : array or int, optional
        For processed files (one m/z array per pixel): bin edges of the common m/z axis,
        or a number of equal bins between the global min and max m/z (found by reading
        every m/z array once). Default for processed files: the sorted union of all m/z
        values if it has at most 65536 entries (centroided data), else an InputError
        asking for bins. Ignored for continuous files (one shared m/z axis).
    rows_per_chunk : int, optional
        Image rows per task (default: about 32 MiB of float32 per chunk).

    Returns
    -------
    xarray.DataArray
        float32 intensities, dims ``("y", "x", "mz")``, ``mz`` coordinate (bin centres
        for binned files, ``attrs["mz_edges"]``), coordinates in um; lazy (one task per
        block of rows, reading only those spectra). Pixels absent from the file are 0.

    Raises
    ------
    InputError
        pyimzml missing (install the ``readers`` extra), an unreadable or truncated
        file, compressed binary data.

    Examples
    --------
    >>> cube = read_imzml("section.imzML", voxel_size=0.125)  # doctest: +SKIP
    >>> cube.dims
    ('y', 'x', 'mz')
    """
    try:
        from pyimzml.ImzMLParser import ImzMLParser
    except ImportError:
        raise InputError("path", "pyimzml to read imzML (pip install "
                         "'electromicro-dask[readers]' or pip install pyimzml)") from None
    path = Path(path)
    if not path.is_file():
        raise InputError("path", f"an existing .imzML file, {str(path)!r} not found")
    ibd = path.with_suffix(".ibd")
    if not ibd.is_file():
        raise InputError("path", f"the binary file {ibd.name!r} next to {path.name!r}")
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = ImzMLParser(str(path), parse_lib="ElementTree")
    except Exception as exc:  # XML errors of several libraries
        raise InputError("path", f"a readable imzML file ({type(exc).__name__}: {exc})") from None
    if not p.coordinates:
        raise InputError("path", "an imzML file with at least one spectrum")
    for attr in ("mzCompression", "intensityCompression"):
        comp = getattr(p, attr, None)
        if comp is not None and type(comp).__name__ != "NoCompression":
            raise InputError("path", "uncompressed binary data (this file is compressed)")
    mz_dtype = np.dtype(_STRUCT.get(p.mzPrecision, np.float64))
    int_dtype = np.dtype(_STRUCT.get(p.intensityPrecision, np.float32))
    coords = np.asarray(p.coordinates, dtype=np.int64)[:, :2] - 1  # 1-based (x, y)
    if (coords < 0).any():
        raise InputError("path", "positive pixel coordinates in the imzML file")
    nx, ny = int(coords[:, 0].max()) + 1, int(coords[:, 1].max()) + 1
    n = np.asarray(p.intensityLengths, dtype=np.int64)
    if not np.array_equal(n, np.asarray(p.mzLengths, dtype=np.int64)):
        raise InputError("path", "equal lengths of m/z and intensity arrays per spectrum")
    mzo = np.asarray(p.mzOffsets, dtype=np.int64)
    into = np.asarray(p.intensityOffsets, dtype=np.int64)
    size = os.path.getsize(ibd)
    end = max(int((mzo + n * mz_dtype.itemsize).max()), int((into + n * int_dtype.itemsize).max()))
    if end > size:
        raise InputError("path", f"a complete .ibd file: spectra reach byte {end}, the file "
                         f"{ibd.name!r} has {size} (truncated?)")
    grid = np.full((3, ny, nx), -1, dtype=np.int64)
    lengths = np.zeros((ny, nx), np.int64)
    grid[0, coords[:, 1], coords[:, 0]] = mzo
    grid[1, coords[:, 1], coords[:, 0]] = into
    lengths[coords[:, 1], coords[:, 0]] = n
    continuous = bool(np.all(mzo == mzo[0]) and np.all(n == n[0]))
    mm = np.memmap(ibd, dtype=np.uint8, mode="r")

    def mz_of(i):
        return np.frombuffer(mm[mzo[i]:mzo[i] + n[i] * mz_dtype.itemsize], dtype=mz_dtype)

    edges = None
    if continuous:
        mz = mz_of(0).astype(np.float64)
        nch = mz.size
    else:
        if mz_bins is None:
            allmz = np.unique(np.concatenate([mz_of(i) for i in range(len(n))]))
            if allmz.size > 65536:
                raise InputError("mz_bins", f"bin edges or a number of bins for this processed "
                                 f"file ({allmz.size} distinct m/z values)")
            mid = 0.5 * (allmz[1:] + allmz[:-1]) if allmz.size > 1 else np.empty(0)
            first = allmz[0] - (mid[0] - allmz[0] if mid.size else 0.5)
            last = allmz[-1] + (allmz[-1] - mid[-1] if mid.size else 0.5)
            edges = np.concatenate([[first], mid, [np.nextafter(last, np.inf)]])
            mz = allmz.astype(np.float64)
        else:
            if np.ndim(mz_bins) == 0:
                lo = min(float(mz_of(i).min()) for i in range(len(n)) if n[i])
                hi = max(float(mz_of(i).max()) for i in range(len(n)) if n[i])
                edges = np.linspace(lo, np.nextafter(hi, np.inf), int(mz_bins) + 1)
            else:
                edges = np.asarray(mz_bins, dtype=np.float64)
                if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
                    raise InputError("mz_bins", "increasing bin edges (2 or more)")
            mz = 0.5 * (edges[:-1] + edges[1:])
        nch = mz.size
    del mm
    if rows_per_chunk is None:
        rows_per_chunk = max(1, int(32 * 2**20 // max(1, nx * nch * 4)))
    blocks = []
    for y0 in range(0, ny, int(rows_per_chunk)):
        rows = list(range(y0, min(ny, y0 + int(rows_per_chunk))))
        sl = slice(rows[0], rows[-1] + 1)
        task = dask.delayed(_imzml_rows, pure=True)(
            str(ibd), [r - rows[0] for r in rows], nx, grid[0, sl], grid[1, sl], lengths[sl],
            mz_dtype, int_dtype, edges, nch)
        blocks.append(da.from_delayed(task, shape=(len(rows), nx, nch), dtype=np.float32))
    data = da.concatenate(blocks, axis=0)
    voxel = _pixel_size(voxel_size, getattr(p, "imzmldict", {}) or {})
    attrs = {"source": str(path), "format": "imzML",
             "spectrum_mode": getattr(p, "spectrum_mode", None) or "unknown",
             "storage": "continuous" if continuous else "processed"}
    if edges is not None:
        attrs["mz_edges"] = edges.tolist()
    return _cube(data, mz, voxel, "cube", attrs)


# --------------------------------------------------------------------------- ASCII


_NUM = re.compile(r"^\s*[-+0-9.eE]+([\s,;]+[-+0-9.eE]+){2}\s*$")


def _read_xyc(path):
    """Rows ``x y counts`` (whitespace, comma or semicolon separated); other lines are
    headers and skipped (SurfaceLab writes a few comment lines first)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [ln for ln in fh if _NUM.match(ln)]
    except OSError as exc:
        raise InputError("files", f"readable files ({exc})") from None
    if not lines:
        raise InputError("files", f"rows of 'x y counts' in {str(path)!r}, found none")
    try:
        arr = np.array([re.split(r"[\s,;]+", ln.strip())[:3] for ln in lines], dtype=np.float64)
    except ValueError:
        raise InputError("files", f"numeric 'x y counts' rows in {str(path)!r}") from None
    return arr


def _grid(arr, path):
    xy = arr[:, :2]
    if not np.all(xy == np.round(xy)):
        raise InputError("files", f"integer pixel indices x y in {str(path)!r}")
    xy = xy.astype(np.int64)
    xy -= xy.min(axis=0)
    nx, ny = int(xy[:, 0].max()) + 1, int(xy[:, 1].max()) + 1
    return xy, ny, nx


def _ascii_image(path, ny, nx, base):
    arr = _read_xyc(path)
    xy = arr[:, :2].astype(np.int64) - base
    if (xy < 0).any() or xy[:, 0].max() >= nx or xy[:, 1].max() >= ny:
        raise InputError("files", f"every file on the same {ny} x {nx} pixel grid; "
                         f"{str(path)!r} differs")
    img = np.zeros((ny, nx), np.float32)
    img[xy[:, 1], xy[:, 0]] = arr[:, 2]
    return img


def _species_table(species, files):
    """``{file: (name, mz)}`` from a mapping, a sidecar CSV/TSV, or the file names."""
    stems = [Path(f).stem for f in files]
    if species is None:
        out = {}
        for f, s in zip(files, stems):
            m = re.search(r"(\d+\.\d+)", s)
            out[f] = (s, float(m.group(1)) if m else np.nan)
        return out
    if isinstance(species, (str, os.PathLike)):
        import pandas as pd

        try:
            t = pd.read_csv(species, sep=None, engine="python")
        except Exception as exc:
            raise InputError("species", f"a readable table with columns file, species, mz ({exc})") from None
        cols = {c.lower(): c for c in t.columns}
        if not {"file", "species", "mz"} <= set(cols):
            raise InputError("species", f"columns file, species, mz; got {list(t.columns)}")
        species = {str(r[cols["file"]]): (str(r[cols["species"]]), float(r[cols["mz"]]))
                   for _, r in t.iterrows()}
    if not isinstance(species, Mapping):
        raise InputError("species", "a mapping {file name or stem: (species, mz)} or a table path")
    out = {}
    for f, s in zip(files, stems):
        hit = species.get(f, species.get(Path(f).name, species.get(s)))
        if hit is None:
            raise InputError("species", f"an entry for {Path(f).name!r}")
        name, mz = hit
        out[f] = (str(name), float(mz))
    return out


def _file_list(files, patterns):
    if isinstance(files, (str, os.PathLike)):
        p = Path(files)
        if p.is_dir():
            found = sorted(f for pat in patterns for f in glob.glob(str(p / pat)))
        else:
            found = sorted(glob.glob(str(p)))
    else:
        found = [str(f) for f in files]
    if not found:
        raise InputError("files", f"at least one file, none found for {files!r}")
    missing = [f for f in found if not Path(f).is_file()]
    if missing:
        raise InputError("files", f"existing files, missing {missing[:3]}")
    return found


def read_si_ascii(files, species=None, voxel_size=None):
    """Read ASCII SI images (``x y counts`` rows, one file per species) into a cube.

    Parameters
    ----------
    files : str, Path or list
        A directory (all ``*.txt``, ``*.asc``, ``*.csv`` in it), a glob pattern or a
        list of files.
    species : dict or path, optional
        ``{file name or stem: (species, mz)}`` or a sidecar table (CSV/TSV with columns
        ``file``, ``species``, ``mz``). Default: the species is the file's stem and the
        m/z the first decimal number in it (NaN if none).
    voxel_size : float or (float, float)
        Pixel size in um (the exports carry none). Required.

    Returns
    -------
    xarray.DataArray
        float32 ``("y", "x", "mz")`` with one channel per file, sorted by m/z, coordinates
        ``mz`` and ``species``; lazy (the first file is read to find the grid).

    Examples
    --------
    >>> cube = read_si_ascii("exports/", voxel_size=0.125)  # doctest: +SKIP
    >>> list(cube.species.values)  # doctest: +SKIP
    ['LiO-', 'Si-', 'LiCO2-']
    """
    found = _file_list(files, ("*.txt", "*.asc", "*.csv"))
    if voxel_size is None:
        raise InputError("voxel_size", "the pixel size in um (ASCII exports carry none)")
    voxel = _voxel_tuple(voxel_size, ("y", "x"), "voxel_size")
    table = _species_table(species, found)
    first = _read_xyc(found[0])
    _, ny, nx = _grid(first, found[0])
    base = first[:, :2].min(axis=0).astype(np.int64)
    order = sorted(found, key=lambda f: (np.isnan(table[f][1]), table[f][1]))
    layers = [da.from_delayed(dask.delayed(_ascii_image, pure=True)(f, ny, nx, base),
                              shape=(ny, nx), dtype=np.float32) for f in order]
    data = da.stack(layers, axis=2)
    mz = [table[f][1] for f in order]
    if any(np.isnan(mz)):
        mz = [m if not np.isnan(m) else float(i) for i, m in enumerate(mz)]
    return _cube(data, mz, voxel, "si", {"source": [str(f) for f in order],
                                          "format": "ascii x y counts"},
                 species=[table[f][0] for f in order])


# --------------------------------------------------------------------------- TIFF


def _tiff_page(path, key):
    import tifffile

    try:
        return np.asarray(tifffile.imread(path, key=key), dtype=np.float32)
    except Exception as exc:
        raise InputError("path", f"a readable TIFF page {key} of {str(path)!r} ({exc})") from None


def read_tiff_stack(path, mz=None, species=None, voxel_size=None):
    """Read per-peak SI images from a multi-page TIFF (or a list of TIFFs) into a cube.

    Parameters
    ----------
    path : str, Path or list
        One multi-page TIFF (one page per peak) or a list of single-page TIFFs.
    mz : sequence of float, optional
        m/z of each page (default 0, 1, 2, ...).
    species : sequence of str, optional
        Species names of the pages (default ``"peak<i>"``).
    voxel_size : float or (float, float)
        Pixel size in um. Required.

    Returns
    -------
    xarray.DataArray
        float32 ``("y", "x", "mz")``, one page per channel, lazy (one task per page).

    Raises
    ------
    InputError
        Unreadable or truncated TIFF, pages of different shapes, ``mz`` or ``species``
        of the wrong length.

    Examples
    --------
    >>> cube = read_tiff_stack("peaks.tif", mz=[23.0, 28.0], voxel_size=0.125)  # doctest: +SKIP
    """
    import tifffile

    paths = [str(path)] if isinstance(path, (str, os.PathLike)) else [str(p) for p in path]
    if voxel_size is None:
        raise InputError("voxel_size", "the pixel size in um")
    voxel = _voxel_tuple(voxel_size, ("y", "x"), "voxel_size")
    pages = []
    for p in paths:
        if not Path(p).is_file():
            raise InputError("path", f"an existing TIFF file, {p!r} not found")
        size = os.path.getsize(p)
        try:
            with tifffile.TiffFile(p) as tf:
                for i, page in enumerate(tf.pages):
                    end = max((o + c for o, c in zip(page.dataoffsets, page.databytecounts)),
                              default=0)
                    if end > size:
                        raise InputError("path", f"a complete TIFF: page {i} of {p!r} ends at "
                                         f"byte {end}, the file has {size} (truncated?)")
                    if len(page.shape) != 2:
                        raise InputError("path", f"2D pages, page {i} of {p!r} has shape {page.shape}")
                    pages.append((p, i, tuple(page.shape), page.dtype))
        except InputError:
            raise
        except Exception as exc:
            raise InputError("path", f"a readable TIFF file {p!r} ({type(exc).__name__}: {exc})") from None
    if not pages:
        raise InputError("path", "a TIFF with at least one page")
    shape = pages[0][2]
    if any(pg[2] != shape for pg in pages):
        raise InputError("path", f"pages of one shape, got {sorted({pg[2] for pg in pages})}")
    n = len(pages)
    mz = np.arange(n, dtype=np.float64) if mz is None else np.asarray(mz, dtype=np.float64)
    if mz.shape != (n,):
        raise InputError("mz", f"{n} m/z values (one per page), got {mz.size}")
    species = [f"peak{i}" for i in range(n)] if species is None else [str(s) for s in species]
    if len(species) != n:
        raise InputError("species", f"{n} names (one per page), got {len(species)}")
    layers = [da.from_delayed(dask.delayed(_tiff_page, pure=True)(p, i), shape=shape,
                              dtype=np.float32) for p, i, _, _ in pages]
    data = da.stack(layers, axis=2)
    return _cube(data, mz, voxel, "si", {"source": paths, "format": "tiff"}, species=species)
