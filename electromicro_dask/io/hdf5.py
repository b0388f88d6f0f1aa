"""Lazy HDF5 reader."""

from __future__ import annotations

import os

import numpy as np

from ..core.errors import InputError
from ._lazy import FileArray, check_file, file_token, to_dataarray, unit_factor

__all__ = ["read_hdf5"]

# Attributes that calibrate a dataset in a known unit: ``element_size_um`` is the
# ilastik/Fiji HDF5 convention; ``voxel_size`` needs a ``voxel_size_unit(s)`` beside it.
_UM_ATTRS = ("element_size_um", "voxel_size_um")


def _h5py():
    import h5py

    return h5py


class _HDF5Dataset(FileArray):
    """An HDF5 dataset opened on first access in each process (h5py handles don't pickle)."""

    def __init__(self, path, dataset, shape, dtype):
        super().__init__(path, shape, dtype)
        self.dataset = dataset

    def _open(self):
        return _h5py().File(self.path, "r")

    def _read(self, handle, index):
        return handle[self.dataset][index]


def _datasets(f):
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, _h5py().Dataset) else None)
    return names


def _attr_voxel(ds, dims):
    attrs = ds.attrs
    values, factor = None, None
    for key in _UM_ATTRS:
        if key in attrs:
            values, factor = attrs[key], 1.0
            break
    else:
        if "voxel_size" in attrs:
            unit = attrs.get("voxel_size_unit", attrs.get("voxel_size_units"))
            if isinstance(unit, bytes):
                unit = unit.decode()
            factor = unit_factor(unit)
            values = attrs["voxel_size"] if factor is not None else None
    if values is None:
        return {}
    v = np.atleast_1d(np.asarray(values, dtype=float))
    if v.size == 1:
        v = np.repeat(v, len(dims))
    if v.size != len(dims) or not np.all(np.isfinite(v) & (v > 0)):
        return {}
    return {d: float(x) * factor for d, x in zip(dims, v)}


def read_hdf5(path, dataset=None, voxel_size=None, dims=None, chunks="auto"):
    """Read an HDF5 dataset lazily into a DataArray.

    Parameters
    ----------
    path : str or Path
        HDF5 file.
    dataset : str, optional
        Path of the dataset inside the file; may be omitted when the file holds exactly one.
    voxel_size : float, sequence or mapping, optional
        Voxel size in micrometres. Required unless the dataset has an
        ``element_size_um`` / ``voxel_size_um`` attribute (or ``voxel_size`` with a
        ``voxel_size_unit``); when given it wins.
    dims : sequence of str, optional
        Default ``("y", "x")`` or ``("z", "y", "x")``.
    chunks : "auto", tuple or mapping
        "auto": the package chunk policy aligned to the dataset's own HDF5 chunks.

    Returns
    -------
    xarray.DataArray
        Dask-backed; each worker process opens the file once, on its first task.

    Raises
    ------
    InputError
        ``path`` missing or not HDF5, ``dataset`` absent or a group, ``voxel_size`` missing.

    Examples
    --------
    >>> v = read_hdf5("scan.h5", "/exchange/data", voxel_size=0.65)   # doctest: +SKIP
    """
    p = check_file(path, "path")
    h5py = _h5py()
    try:
        f = h5py.File(p, "r")
    except Exception as exc:
        raise InputError("path", f"a readable HDF5 file, {str(p)!r} is not one "
                         f"({type(exc).__name__}: {exc})") from None
    with f:
        names = _datasets(f)
        if dataset is None:
            if len(names) != 1:
                raise InputError("dataset", f"the dataset to read, one of {names}")
            dataset = names[0]
        try:
            ds = f[dataset]
        except Exception:
            raise InputError("dataset", f"a dataset of {str(p)!r}, got {dataset!r}; it has "
                             f"{names}") from None
        if not isinstance(ds, h5py.Dataset):
            raise InputError("dataset", f"a dataset, {dataset!r} is a group; datasets: {names}")
        shape, dtype, previous = ds.shape, ds.dtype, ds.chunks
        if dtype.kind not in "biuf":
            raise InputError("dataset", f"a numeric dataset, {dataset!r} has dtype {dtype}")
        if ds.chunks is None and ds.compression is None:
            offset = ds.id.get_offset()
            if offset is not None and offset + ds.id.get_storage_size() > os.path.getsize(p):
                raise InputError("path", f"a complete HDF5 file, {str(p)!r} is truncated")
        ndim = len(shape)
        d = dims if dims is not None else {2: ("y", "x"), 3: ("z", "y", "x")}.get(ndim)
        file_voxel = _attr_voxel(ds, tuple(d)) if d is not None else {}
    reader = _HDF5Dataset(p, dataset, shape, dtype)
    return to_dataarray(reader, f"read-hdf5-{file_token(p)}-{dataset}".replace("/", "_"),
                        dims, chunks, voxel_size, file_voxel=file_voxel, previous=previous,
                        attrs={"source": str(p.resolve()), "dataset": dataset})
