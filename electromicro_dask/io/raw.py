"""Lazy readers of raw binary and ``.npy`` files, and numpy arrays."""

from __future__ import annotations

import math
import os

import numpy as np

from ..core.arrays import as_volume
from ..core.errors import InputError
from ._lazy import FileArray, check_file, file_token, to_dataarray

__all__ = ["read_raw", "read_npy", "from_numpy"]

_ORDERS = {"<": "<", "little": "<", ">": ">", "big": ">", "=": "=", "native": "="}


class _RawFile(FileArray):
    """A raw binary array read through a fresh read-only memmap per block (picklable)."""

    serialize = False

    def __init__(self, path, shape, dtype, offset, fortran=False):
        super().__init__(path, shape, dtype)
        self.offset = int(offset)
        self.fortran = bool(fortran)

    def _read(self, handle, index):
        mm = np.memmap(self.path, dtype=self.file_dtype, mode="r", offset=self.offset,
                       shape=self.shape, order="F" if self.fortran else "C")
        try:
            return np.array(mm[index])
        finally:
            del mm


def read_raw(path, shape, dtype, byte_order="<", offset=0, voxel_size=None, dims=None,
             chunks="auto"):
    """Read a raw binary volume lazily (C order, the last axis varying fastest).

    Parameters
    ----------
    path : str or Path
        The binary file.
    shape : sequence of int
        Array shape, e.g. ``(nz, ny, nx)``.
    dtype : str or numpy.dtype
        Element type (``"uint8"``, ``"uint16"``, ``"float32"``, ...).
    byte_order : {"<", ">", "little", "big", "="}
        Byte order of the file (default little-endian); values come back in native order.
    offset : int
        Header bytes before the data.
    voxel_size : float, sequence or mapping
        Voxel size in micrometres (required: raw files carry no calibration).
    dims, chunks
        As in :func:`read_tiff`.

    Raises
    ------
    InputError
        ``path`` missing, or its size differs from ``offset + prod(shape) * itemsize``;
        a bad ``shape``, ``dtype``, ``byte_order`` or ``offset``; ``voxel_size`` missing.

    Examples
    --------
    >>> v = read_raw("vol.raw", (330, 8192, 8192), "uint8",
    ...              voxel_size=(0.03, 0.01, 0.01))               # doctest: +SKIP
    """
    p = check_file(path, "path")
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError("shape", f"a sequence of positive integers, got {shape!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise InputError("shape", f"a sequence of positive integers, got {shape!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InputError("dtype", f"a numpy dtype, got {dtype!r}") from None
    if dt.kind not in "biuf" or dt.names:
        raise InputError("dtype", f"a numeric dtype, got {dt}")
    if byte_order not in _ORDERS:
        raise InputError("byte_order", f"one of {sorted(_ORDERS)}, got {byte_order!r}")
    dt = dt.newbyteorder(_ORDERS[byte_order])
    if not isinstance(offset, (int, np.integer)) or offset < 0:
        raise InputError("offset", f"a non-negative number of bytes, got {offset!r}")
    expected = int(offset) + math.prod(shape) * dt.itemsize
    size = os.path.getsize(p)
    if size != expected:
        raise InputError("path", f"a raw file of offset + prod(shape) * itemsize = {expected} "
                         f"bytes (shape {shape}, {dt}, offset {offset}), {str(p)!r} has {size}")
    if voxel_size is None:
        raise InputError("voxel_size", "a voxel size in um (raw files carry none)")
    reader = _RawFile(p, shape, dt, offset)
    return to_dataarray(reader, f"read-raw-{file_token(p)}-{dt.str}-{offset}", dims, chunks,
                        voxel_size, attrs={"source": str(p.resolve())})


def read_npy(path, voxel_size=None, dims=None, chunks="auto"):
    """Read a ``.npy`` file lazily (memory-mapped per block); ``voxel_size`` in um is required.

    Examples
    --------
    >>> v = read_npy("vol.npy", voxel_size=0.5)   # doctest: +SKIP
    """
    p = check_file(path, "path")
    try:
        mm = np.load(p, mmap_mode="r", allow_pickle=False)
        shape, dt, fortran = mm.shape, mm.dtype, bool(mm.flags.f_contiguous and mm.ndim > 1
                                                        and not mm.flags.c_contiguous)
        offset = mm.offset
        del mm
    except Exception as exc:
        raise InputError("path", f"a readable .npy file, {str(p)!r} is not one "
                         f"({type(exc).__name__}: {exc})") from None
    if dt.kind not in "biuf":
        raise InputError("path", f"a numeric array, {str(p)!r} holds dtype {dt}")
    if voxel_size is None:
        raise InputError("voxel_size", "a voxel size in um (.npy files carry none)")
    reader = _RawFile(p, shape, dt, offset, fortran=fortran)
    return to_dataarray(reader, f"read-npy-{file_token(p)}", dims, chunks, voxel_size,
                        attrs={"source": str(p.resolve())})


def from_numpy(array, voxel_size, dims=None, chunks="auto"):
    """A numpy (or dask) array as a DataArray in the data model; see :func:`as_volume`.

    Examples
    --------
    >>> import numpy as np
    >>> from_numpy(np.zeros((4, 8, 8), "uint8"), voxel_size=0.5).dims
    ('z', 'y', 'x')
    """
    if voxel_size is None:
        raise InputError("voxel_size", "a voxel size in um")
    return as_volume(array, voxel_size=voxel_size, dims=dims, chunks=chunks, argument="array")
