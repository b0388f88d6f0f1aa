"""Ingest raw data into the sample store: pick the reader, re-chunk, write atomically."""

from __future__ import annotations

import os
from pathlib import Path

from ..core.arrays import default_chunks
from ..core.errors import InputError
from ..core.store import save
from .hdf5 import read_hdf5
from .raw import read_npy, read_raw
from .tiff import read_tiff, read_tiff_folder

__all__ = ["ingest", "read"]

_HDF5 = (".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".nx5")
_TIFF = (".tif", ".tiff")
_RAW = (".raw", ".bin", ".dat", ".img", ".vol")


def _kind(src, shape):
    s = os.fspath(src)
    if any(ch in s for ch in "*?[") or Path(s).expanduser().is_dir():
        return "tiff_folder"
    suffix = Path(s).suffix.lower()
    if suffix in _TIFF:
        return "tiff"
    if suffix in _HDF5:
        return "hdf5"
    if suffix == ".npy":
        return "npy"
    if suffix in _RAW or shape is not None:
        return "raw"
    raise InputError("src", f"a TIFF file, a folder/glob of TIFF slices, an HDF5 file "
                     f"({', '.join(_HDF5)}), a .npy file or a raw file with shape and dtype "
                     f"given; got {s!r}")


def read(src, voxel_size=None, dataset=None, shape=None, dtype=None, byte_order="<",
         offset=0, dims=None, chunks="auto"):
    """Read ``src`` lazily with the reader its type calls for (see :func:`ingest`)."""
    kind = _kind(src, shape)
    if kind == "tiff_folder":
        return read_tiff_folder(src, voxel_size=voxel_size, dims=dims, chunks=chunks)
    if kind == "tiff":
        return read_tiff(src, voxel_size=voxel_size, dims=dims, chunks=chunks)
    if kind == "hdf5":
        return read_hdf5(src, dataset, voxel_size=voxel_size, dims=dims, chunks=chunks)
    if kind == "npy":
        return read_npy(src, voxel_size=voxel_size, dims=dims, chunks=chunks)
    if shape is None or dtype is None:
        raise InputError("shape" if shape is None else "dtype",
                         f"the shape and dtype of the raw file {os.fspath(src)!r}")
    return read_raw(src, shape, dtype, byte_order=byte_order, offset=offset,
                    voxel_size=voxel_size, dims=dims, chunks=chunks)


def ingest(src, store, name="raw", voxel_size=None, dataset=None, shape=None, dtype=None,
           chunks="auto", byte_order="<", offset=0, dims=None):
    """Read ``src`` lazily, re-chunk it to the chunk policy and write it to ``store``.

    The reader follows the source: a folder or glob pattern -> :func:`read_tiff_folder`;
    ``.tif``/``.tiff`` -> :func:`read_tiff`; ``.h5``/``.hdf5``/``.nxs`` ->
    :func:`read_hdf5` (``dataset``); ``.npy`` -> :func:`read_npy`; ``.raw``/``.bin``/
    ``.dat`` or ``shape`` given -> :func:`read_raw` (``shape``, ``dtype``, ``byte_order``,
    ``offset``). The write is atomic (:func:`electromicro_dask.core.store.save`): on any
    failure the store is left as it was.

    Parameters
    ----------
    src : str or Path
        The source file, folder or glob pattern.
    store : str or Path
        The sample store (``sample.zarr``), created when missing.
    name : str
        Variable name in the store (default ``"raw"``).
    voxel_size : float, sequence or mapping, optional
        Voxel size in micrometres; required unless the file records it.
    chunks : "auto", tuple or mapping
        Chunks of the stored variable; "auto" is :func:`default_chunks` (about 2 MiB).

    Returns
    -------
    dict
        The provenance record of the new variable (function ``"io.ingest"``).

    Notes
    -----
    Slices of a folder are read one task per slice and band of rows (see
    :func:`read_tiff_folder`, ``chunks="bands"``); re-chunking them into cubes holds
    about one chunk-depth slab of bands at a time.

    Examples
    --------
    >>> ingest("scan/", "sample.zarr", voxel_size=(0.03, 0.01, 0.01))   # doctest: +SKIP
    """
    src_s = os.fspath(src)
    voxel_size = _parse_voxel_size(voxel_size)
    # Slices are read in bands of rows, so that cutting them into cubes holds one
    # band-slab per worker instead of a slab of whole slices.
    data = read(src, voxel_size=voxel_size, dataset=dataset, shape=shape, dtype=dtype,
                byte_order=byte_order, offset=offset, dims=dims,
                chunks="bands" if _kind(src, shape) == "tiff_folder" else "auto")
    # The reader's key names the files' state (size, mtime), so the provenance hash
    # changes when the source does even if the path stays the same.
    source_state = data.data.name.rsplit("-", 1)[0]
    if chunks == "auto":
        target = dict(zip(data.dims, default_chunks(data.shape, data.dtype)))
    elif isinstance(chunks, dict):
        target = chunks
    else:
        try:
            target = dict(zip(data.dims, tuple(chunks)))
        except TypeError:
            target = dict.fromkeys(data.dims, chunks)
    try:
        data = data.chunk(target)
    except Exception as exc:
        raise InputError("chunks", f'"auto", a tuple or a {{dim: size}} mapping ({exc})') from None
    source = src_s if any(ch in src_s for ch in "*?[") else str(Path(src_s).expanduser().resolve())
    params = {"src": source, "voxel_size": [float(v) for v in _voxel_of(data)],
              "dataset": dataset, "shape": list(shape) if shape is not None else None,
              "dtype": str(dtype) if dtype is not None else None, "byte_order": byte_order,
              "offset": offset, "dims": list(data.dims),
              "chunks": [c[0] for c in data.chunks], "source_state": source_state}
    return save(data, store, name, provenance={"function": "io.ingest", "parameters": params})


def _parse_voxel_size(voxel_size):
    """Accept "0.03,0.01,0.01" or "0.5" (from the command line) as well as numbers."""
    if not isinstance(voxel_size, str):
        return voxel_size
    try:
        values = [float(v) for v in voxel_size.replace(" ", ",").split(",") if v]
    except ValueError:
        raise InputError("voxel_size", f"numbers in um separated by commas, got "
                         f"{voxel_size!r}") from None
    if not values:
        raise InputError("voxel_size", f"numbers in um, got {voxel_size!r}")
    return values[0] if len(values) == 1 else tuple(values)


def _voxel_of(data):
    from ..core.arrays import voxel_size as _vs

    return _vs(data, data.dims)
