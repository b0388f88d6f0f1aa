"""Lazy TIFF readers: a multi-page TIFF stack and a folder of TIFF slices."""

from __future__ import annotations

import contextlib
import glob as _glob
import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from dask.base import tokenize

from ..core.arrays import default_chunks
from ..core.errors import InputError
from ._lazy import FileArray, check_file, file_token, natural_key, to_dataarray, unit_factor

__all__ = ["read_tiff", "read_tiff_folder"]

_TIFF_SUFFIXES = (".tif", ".tiff")
# Resolution units of the TIFF standard (tag 296): 2 = inch, 3 = centimetre.
_RESUNIT_UM = {2: 25400.0, 3: 10000.0}


def _tifffile():
    import tifffile

    return tifffile


class _TiffComplaints(logging.Handler):
    """Collects what tifffile logs while parsing headers: it reports a corrupt or
    truncated file by logging and falling back to fewer pages, not by raising."""

    _SIGNS = ("invalid", "corrupt", "truncated", "failed", "cannot", "not enough")

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        msg = record.getMessage()
        if any(sign in msg.lower() for sign in self._SIGNS):
            self.messages.append(msg)


@contextlib.contextmanager
def _headers_checked(path, argument):
    logger = logging.getLogger("tifffile")
    handler = _TiffComplaints()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    if handler.messages:
        raise InputError(argument, f"a complete, valid TIFF file, {str(path)!r} is corrupt or "
                         f"truncated ({handler.messages[0].strip()})")


def _open_tiff(path, argument):
    tifffile = _tifffile()
    try:
        return tifffile.TiffFile(path)
    except Exception as exc:
        raise InputError(argument, f"a readable TIFF file, {str(path)!r} is not one "
                         f"({type(exc).__name__}: {exc})") from None


def _ome_voxel(tif):
    """Physical sizes from OME-XML Pixels attributes (unit default um), {dim: um}."""
    try:
        root = ET.fromstring(tif.ome_metadata)
    except Exception:
        return {}
    pixels = next((e for e in root.iter() if e.tag.endswith("Pixels")), None)
    if pixels is None:
        return {}
    out = {}
    for d in ("z", "y", "x"):
        size = pixels.get(f"PhysicalSize{d.upper()}")
        factor = unit_factor(pixels.get(f"PhysicalSize{d.upper()}Unit", "µm"))
        try:
            size = float(size)
        except (TypeError, ValueError):
            continue
        if factor is not None and np.isfinite(size) and size > 0:
            out[d] = size * factor
    return out


def _tiff_voxel(tif):
    """Voxel size {dim: um} the file records reliably (OME, ImageJ, resolution tags).

    Only calibrations with a known length unit are trusted: the resolution tags say
    pixels per unit (TIFF 6.0, tags 282/283/296); ImageJ stores its unit and the z
    spacing in the ImageDescription; a resolution of 1 pixel per unit with no unit is
    the writers' default, not a calibration.
    """
    if tif.is_ome and tif.ome_metadata:
        out = _ome_voxel(tif)
        if out:
            return out
    page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
    out = {}
    factor = None
    ij = tif.imagej_metadata if tif.is_imagej else None
    if ij:
        factor = unit_factor(ij.get("unit"))
        if factor is not None and "spacing" in ij:
            try:
                spacing = float(ij["spacing"])
                if spacing > 0:
                    out["z"] = spacing * factor
            except (TypeError, ValueError):
                pass
    if factor is None:
        factor = _RESUNIT_UM.get(int(page.resolutionunit))
    if factor is not None:
        try:
            rx, ry = (float(r) for r in page.resolution)
        except Exception:
            rx = ry = 0.0
        if rx > 0 and ry > 0:
            out["x"] = factor / rx
            out["y"] = factor / ry
    return out


def _check_extent(tif, series, path, argument):
    """A truncated file is caught here from the headers, before any pixel is read."""
    size = os.path.getsize(path)
    end = 0
    if series.dataoffset is not None:
        end = series.dataoffset + series.size * series.dtype.itemsize
    else:
        for page in series.pages:
            if page is None:
                continue
            offsets = getattr(page, "dataoffsets", ())
            counts = getattr(page, "databytecounts", ())
            for o, c in zip(offsets, counts):
                end = max(end, int(o) + int(c))
    if end > size:
        raise InputError(argument, f"a complete TIFF file, {str(path)!r} is truncated "
                         f"({size} bytes, its headers say {end})")


class _TiffStack(FileArray):
    """One TIFF series, read region by region through tifffile's zarr interface."""

    def __init__(self, path, shape, dtype, series=0):
        super().__init__(path, shape, dtype)
        self.series = int(series)

    def _open(self):
        import zarr

        tif = _tifffile().TiffFile(self.path)
        store = tif.series[self.series].aszarr()
        return tif, store, zarr.open(store, mode="r")

    def _close(self, handle):
        handle[1].close()
        handle[0].close()

    def _read(self, handle, index):
        return handle[2][index]


def read_tiff(path, voxel_size=None, dims=None, chunks="auto"):
    """Read a (multi-page) TIFF lazily into a DataArray.

    Parameters
    ----------
    path : str or Path
        A TIFF file; its first series is read (pages stacked along ``z``).
    voxel_size : float, sequence or mapping, optional
        Voxel size in micrometres. Required unless the file records it for every dim
        (OME-XML physical sizes; ImageJ unit, pixel size and ``spacing``; resolution
        tags with an inch/centimetre unit). When given it wins over the file.
    dims : sequence of str, optional
        Dim names; default ``("y", "x")`` for one page, ``("z", "y", "x")`` for a stack.
    chunks : "auto", tuple or mapping
        Dask chunks; "auto" follows the package chunk policy aligned to the file's
        pages/strips/tiles.

    Returns
    -------
    xarray.DataArray
        Dask-backed; each task opens the file once per process and reads only the
        strips or tiles of its chunk.

    Raises
    ------
    InputError
        ``path`` missing, not a TIFF, truncated, or colour/multi-channel;
        ``voxel_size`` missing when the file does not record it.

    Examples
    --------
    >>> v = read_tiff("stack.tif", voxel_size=(0.05, 0.01, 0.01))   # doctest: +SKIP
    >>> v.dims                                                        # doctest: +SKIP
    ('z', 'y', 'x')
    """
    p = check_file(path, "path")
    with _headers_checked(p, "path"), _open_tiff(p, "path") as tif:
        try:
            series = tif.series[0]
            shape, dtype, axes = tuple(series.shape), np.dtype(series.dtype), series.axes
        except Exception as exc:
            raise InputError("path", f"a TIFF with an image series, {str(p)!r} has none "
                             f"({type(exc).__name__}: {exc})") from None
        # Colour samples and channels are no volume axis; dims given by the caller
        # say what the axes mean and override this.
        if dims is None and any(n > 1 for a, n in zip(axes, shape) if a in "SC"):
            raise InputError("path", f"a single-channel grey-value TIFF, {str(p)!r} has "
                             f"axes {axes!r} of shape {shape}; pass dims=... to read it as is")
        _check_extent(tif, series, p, "path")
        file_voxel = _tiff_voxel(tif)
        page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
        own = _own_metadata(page, len(shape))
        origin = None
        if own is not None:
            # a file this package wrote (io.export.to_tiff): its dims, voxel size and origin
            file_voxel = dict(zip(own["dims"], own["voxel_size_um"]))
            dims = tuple(own["dims"]) if dims is None else dims
            if voxel_size is None and tuple(dims) == tuple(own["dims"]):
                origin = tuple(own["origin_um"])
        rows = int(getattr(page, "rowsperstrip", 0) or 0) or None
        if page.is_tiled:
            previous = tuple([1] * (len(shape) - 2) + [page.tilelength, page.tilewidth])
        else:
            previous = tuple([1] * (len(shape) - 2) + [min(rows or shape[-2], shape[-2]),
                                                       shape[-1]])
    reader = _TiffStack(p, shape, dtype)
    attrs = {"source": str(p.resolve())}
    if own is not None and own.get("phases"):
        attrs["phases"] = {int(k): v for k, v in own["phases"].items()}
    return to_dataarray(reader, f"read-tiff-{file_token(p)}", dims, chunks, voxel_size,
                        file_voxel=file_voxel, origin=origin, previous=previous, attrs=attrs)


_OWN_PREFIX = "electromicro_dask:"


def _own_metadata(page, ndim):
    """The JSON metadata :func:`electromicro_dask.io.export.to_tiff` writes into the first
    page's description, when it is there and fits the series."""
    import json

    desc = getattr(page, "description", "") or ""
    if not desc.startswith(_OWN_PREFIX):
        return None
    try:
        meta = json.loads(desc[len(_OWN_PREFIX):])
        ok = (len(meta["dims"]) == ndim == len(meta["voxel_size_um"]) == len(meta["origin_um"]))
    except (ValueError, KeyError, TypeError):
        return None
    return meta if ok else None


def _list_slices(folder_or_glob):
    s = os.fspath(folder_or_glob)
    if any(ch in s for ch in "*?["):
        files = [Path(f) for f in _glob.glob(os.path.expanduser(s)) if os.path.isfile(f)]
        where = f"the pattern {s!r}"
    else:
        folder = Path(s).expanduser()
        if not folder.is_dir():
            raise InputError("folder", f"an existing folder of TIFF slices or a glob pattern, "
                             f"{s!r} is neither")
        files = [f for f in folder.iterdir()
                 if f.is_file() and f.suffix.lower() in _TIFF_SUFFIXES]
        where = f"the folder {s!r}"
    if not files:
        raise InputError("folder", f"TIFF slices (*.tif, *.tiff), found none in {where}")
    return sorted(files, key=lambda f: natural_key(f.name))


class _TiffSlices(FileArray):
    """A stack of single-image TIFF files, one file per index along the first axis."""

    argument = "folder"
    serialize = False

    def __init__(self, files, shape, dtype):
        super().__init__(files[0], shape, dtype)
        self.files = [str(f) for f in files]

    def _read_slice(self, tifffile, f, rest, whole):
        if whole:
            img = tifffile.imread(f)
            return (img[rest] if img.shape == self.shape[1:] else None), img.shape
        # Only the strips/tiles of the region are read and decoded.
        import zarr

        store = tifffile.imread(f, aszarr=True)
        try:
            z = zarr.open(store, mode="r")
            return (z[rest] if z.shape == self.shape[1:] else None), z.shape
        finally:
            store.close()

    def _read(self, handle, index):
        tifffile = _tifffile()
        index = index if isinstance(index, tuple) else (index,)
        if any(i is Ellipsis for i in index):
            k = index.index(Ellipsis)
            index = index[:k] + (slice(None),) * (3 - len(index) + 1) + index[k + 1:]
        zs = np.arange(self.shape[0])[index[0]]
        rest = tuple(index[1:])
        out = []
        whole = all(isinstance(r, slice) and r.indices(n) == (0, n, 1)
                    for r, n in zip(rest, self.shape[1:]))
        for i in np.atleast_1d(zs):
            try:
                img, shape = self._read_slice(tifffile, self.files[i], rest, whole)
            except InputError:
                raise
            except Exception as exc:  # a slice changed or corrupt after it was listed
                raise InputError("folder", f"readable TIFF slices, reading {self.files[i]!r} "
                                 f"failed ({type(exc).__name__}: {exc})") from exc
            if shape != self.shape[1:]:
                raise InputError("folder", f"slices of shape {self.shape[1:]}, "
                                 f"{self.files[i]!r} has {shape}")
            out.append(img)
        out = np.stack(out)
        return out[0] if np.ndim(zs) == 0 else out


def read_tiff_folder(folder_or_glob, voxel_size=None, dims=None, chunks="auto"):
    """Read a folder of TIFF slices lazily, stacked along ``z``, one task per slice.

    Files are ordered by natural sort of their names (``slice_2`` before ``slice_10``).
    Every file's header is checked (shape, dtype, page count) before any pixel is read.

    Parameters
    ----------
    folder_or_glob : str or Path
        A folder (its ``*.tif``/``*.tiff`` files) or a glob pattern (``"scan/img_*.tif"``).
    voxel_size : float, sequence or mapping, optional
        Voxel size in micrometres; required unless the first slice records a full 3D
        calibration (OME physical sizes or ImageJ ``spacing``).
    dims : sequence of str, optional
        Default ``("z", "y", "x")``.
    chunks : "auto", "bands", tuple or mapping
        "auto": chunks ``(1, ny, nx)``, one task per file. "bands": one task per file
        and band of rows as the chunk policy cuts ``y`` (each task decodes only the
        strips of its band), so re-chunking into cubes holds one band-slab, not a
        slab of whole slices, in memory. A tuple or ``{dim: size}`` is used as given.

    Returns
    -------
    xarray.DataArray
        Dask-backed; with the default chunks each task reads one file.

    Raises
    ------
    InputError
        ``folder`` empty or missing, a slice unreadable, truncated, multi-page, or of
        another shape or dtype than the first (the message names the file);
        ``voxel_size`` missing.

    Examples
    --------
    >>> v = read_tiff_folder("scan/", voxel_size=(0.03, 0.01, 0.01))   # doctest: +SKIP
    >>> v.data.numblocks[0] == v.sizes["z"]                            # doctest: +SKIP
    True
    """
    files = _list_slices(folder_or_glob)
    shape = dtype = None
    file_voxel = {}
    for f in files:
        if not os.access(f, os.R_OK):
            raise InputError("folder", f"readable TIFF slices, {str(f)!r} cannot be read")
        with _headers_checked(f, "folder"), _open_tiff(f, "folder") as tif:
            try:
                series = tif.series[0]
                s, dt = tuple(series.shape), np.dtype(series.dtype).newbyteorder("=")
            except Exception as exc:
                raise InputError("folder", f"TIFF slices with an image, {str(f)!r} has none "
                                 f"({type(exc).__name__}: {exc})") from None
            if len(s) != 2:
                raise InputError("folder", f"single 2D grey-value images per file, "
                                 f"{str(f)!r} has shape {s} (axes {series.axes!r})")
            _check_extent(tif, series, f, "folder")
            if shape is None:
                shape, dtype = s, dt
                file_voxel = _tiff_voxel(tif)
            elif s != shape or dt != dtype:
                raise InputError("folder", f"slices of one shape and dtype ({shape}, {dtype} "
                                 f"as {files[0].name!r}), {str(f)!r} has {s}, {dt}")
    full = (len(files),) + shape
    reader = _TiffSlices(files, full, dtype)
    if chunks in ("auto", None):
        chunks = ((1,) * len(files), (shape[0],), (shape[1],))
    elif chunks == "bands":
        band = default_chunks(full, dtype)[1][0]
        chunks = (1, band, shape[1])
    token = tokenize([file_token(f) for f in files])
    return to_dataarray(reader, f"read-tiff-folder-{token}",
                        dims, chunks, voxel_size, file_voxel=file_voxel,
                        source=os.fspath(folder_or_glob),
                        attrs={"source": os.fspath(Path(os.fspath(folder_or_glob)).expanduser())})
