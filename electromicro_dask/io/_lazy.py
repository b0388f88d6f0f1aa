"""Shared pieces of the lazy readers: a picklable file-backed array and unit handling.

A reader builds a small array-like object (shape, dtype, ``__getitem__``) that opens its
file on first access in each process and drops the handle when pickled, so the same
graph runs on the threaded scheduler and on distributed workers. ``dask.array.from_array``
turns it into one task per chunk.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

import dask.array as da
import numpy as np
from dask.base import tokenize

from ..core.arrays import _check_dims, as_volume, chunk_bytes
from ..core.errors import InputError

_CREATE_LOCK = threading.Lock()

#: Length units found in file metadata, in micrometres.
_UNITS_UM = {
    "um": 1.0, "µm": 1.0, "μm": 1.0, "\\u00b5m": 1.0, "micron": 1.0, "microns": 1.0,
    "micrometer": 1.0, "micrometre": 1.0, "micrometers": 1.0, "micrometres": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3, "nanometers": 1e-3,
    "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3, "cm": 1e4, "centimeter": 1e4,
    "m": 1e6, "meter": 1e6, "metre": 1e6, "a": 1e-4, "å": 1e-4, "angstrom": 1e-4,
}


def unit_factor(unit):
    """Micrometres per ``unit`` (a length unit name), or None when not a known length."""
    if unit is None:
        return None
    return _UNITS_UM.get(str(unit).strip().lower())


def natural_key(name):
    """Sort key that orders embedded numbers by value: ``slice_2`` before ``slice_10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(name))]


def check_file(path, argument="path"):
    """Return ``path`` as a Path if it is an existing readable file, else InputError."""
    try:
        p = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise InputError(argument, f"a file path, got {path!r}") from None
    if not p.exists():
        raise InputError(argument, f"an existing file, {str(p)!r} does not exist")
    if not p.is_file():
        raise InputError(argument, f"a file, {str(p)!r} is not one")
    if not os.access(p, os.R_OK):
        raise InputError(argument, f"a readable file, {str(p)!r} cannot be read")
    return p


class FileArray:
    """Picklable, lazily opened array-like over a file (base class of the readers).

    Subclasses set ``shape``, ``dtype``, ``path`` and implement ``_open()`` (returning
    a handle kept per process) and ``_read(handle, index)``. Reads are serialised per
    object within a process, as the underlying libraries (tifffile, h5py) share one
    file handle.
    """

    argument = "path"
    #: Whether reads share one handle and must take turns (False: each read opens its own).
    serialize = True

    def __init__(self, path, shape, dtype):
        self.path = str(path)
        self.shape = tuple(int(s) for s in shape)
        # Values come back in native byte order whatever the file's.
        self.file_dtype = np.dtype(dtype)
        self.dtype = self.file_dtype.newbyteorder("=")
        self._handle = None
        self._lock = None

    @property
    def ndim(self):
        return len(self.shape)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_lock"] = None
        return state

    def _open(self):
        return None

    def _close(self, handle):
        close = getattr(handle, "close", None)
        if close is not None:
            close()

    def __del__(self):
        if getattr(self, "_handle", None) is not None:
            try:
                self._close(self._handle)
            except Exception:
                pass

    def __getitem__(self, index):
        if self._lock is None:
            with _CREATE_LOCK:
                if self._lock is None:
                    self._lock = threading.Lock() if self.serialize else contextlib.nullcontext()
        with self._lock:
            try:
                if self._handle is None:
                    self._handle = self._open()
                out = self._read(self._handle, index)
            except InputError:
                raise
            except Exception as exc:  # a file changed or corrupt after it was checked
                raise InputError(self.argument, f"a readable file, reading {self.path!r} failed "
                                 f"({type(exc).__name__}: {exc})") from exc
        return np.asarray(out, dtype=self.dtype)


def file_token(path):
    """Token of a file's identity and state (path, size, mtime), for graph key names."""
    st = os.stat(path)
    return tokenize(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def normalize_chunks(chunks, shape, dtype, dims, previous=None):
    """Chunks for a reader: "auto" follows the chunk policy aligned to ``previous``."""
    if chunks == "auto" or chunks is None:
        return da.core.normalize_chunks("auto", shape=shape, limit=chunk_bytes(), dtype=dtype,
                                        previous_chunks=previous)
    if isinstance(chunks, dict):
        unknown = set(chunks) - set(dims)
        if unknown:
            raise InputError("chunks", f"a mapping with keys from {dims}, got {sorted(unknown)}")
        chunks = tuple(chunks.get(d, -1) for d in dims)
    try:
        return da.core.normalize_chunks(chunks, shape=shape, dtype=dtype)
    except Exception as exc:
        raise InputError("chunks", f'"auto", an int, a tuple or a {{dim: size}} mapping for '
                         f"shape {shape} ({exc})") from None


def default_dims(ndim, dims):
    if dims is None:
        if ndim == 2:
            return ("y", "x")
        if ndim == 3:
            return ("z", "y", "x")
        raise InputError("dims", f"dim names for a {ndim}-d array")
    return _check_dims(dims, ndim, "dims")


def to_dataarray(reader, name, dims, chunks, voxel_size, file_voxel=None, origin=None,
                 attrs=None, previous=None, source=None):
    """Wrap ``reader`` into a dask-backed DataArray in the data model.

    ``voxel_size`` (from the caller) wins; otherwise ``file_voxel`` ({dim: um}, from the
    file's metadata) must cover every dim that needs a coordinate.
    """
    dims = default_dims(reader.ndim, dims)
    if voxel_size is None:
        file_voxel = file_voxel or {}
        missing = [d for d in dims if d not in file_voxel]
        if missing:
            raise InputError("voxel_size", f"a voxel size in um: {source or reader.path!r} does "
                             f"not record one for {missing}")
        voxel_size = {d: file_voxel[d] for d in dims}
    c = normalize_chunks(chunks, reader.shape, reader.dtype, dims, previous)
    meta = np.empty((0,) * reader.ndim, dtype=reader.dtype)
    # The key names the file's state and the chunking, so equal reads share keys.
    arr = da.from_array(reader, chunks=c, name=f"{name}-{tokenize(c)}", lock=False,
                        asarray=False, meta=meta,
                        inline_array=False)
    out = as_volume(arr, voxel_size=voxel_size, dims=dims, origin=origin)
    out.name = None  # xarray takes the dask key otherwise
    out.attrs.update(attrs or {})
    return out
