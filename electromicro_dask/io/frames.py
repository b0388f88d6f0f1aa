"""Lazy reader of detector frames (SWAXS-CT scans) with their positioners.

Seed 004 records one Pilatus frame per beam position. ESRF BLISS writes them as LIMA HDF5
files, frames at ``/entry_0000/measurement/data`` with one frame per HDF5 chunk compressed
with bitshuffle-LZ4 (the filter comes from ``hdf5plugin``), and the motor positions per
frame in the scan's master file (``/<scan>.1/measurement/<motor>``); other beamlines write
EDF or CBF files, which fabio reads (notes/swaxs.md 1.2). Frames are placed by their
positioners, never by their order: interlaced angle subsets are not monotonic in time.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ..core.errors import InputError
from ._lazy import FileArray, check_file, file_token, natural_key

__all__ = ["read_frames", "LIMA_DATASET"]

#: Where LIMA (ESRF BLISS) detector files keep their frames.
LIMA_DATASET = "/entry_0000/measurement/data"

_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".nx5")


def _hdf5_filters():
    try:  # registers bitshuffle-LZ4 and the other beamline filters with h5py
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass


class _H5Frames(FileArray):
    def __init__(self, path, dataset, shape, dtype):
        super().__init__(path, shape, dtype)
        self.dataset = dataset

    def _open(self):
        import h5py

        _hdf5_filters()
        return h5py.File(self.path, "r")

    def _read(self, handle, index):
        return handle[self.dataset][index]


class _FabioFrames(FileArray):
    """The frames of one file fabio opens (EDF, CBF, ...): ``(n, ny, nx)``."""

    def _open(self):
        import fabio

        return fabio.open(self.path)

    def _close(self, handle):
        close = getattr(handle, "close", None)
        if close is not None:
            close()

    def _read(self, handle, index):
        idx = np.arange(self.shape[0])[index[0]]
        frames = [handle.data if handle.nframes == 1 else handle.getframe(int(i)).data
                  for i in np.atleast_1d(idx)]
        out = np.stack(frames)[(slice(None),) + tuple(index[1:])]
        return out if np.ndim(idx) else out[0]


def _files(paths):
    if isinstance(paths, (str, os.PathLike)):
        s = str(paths)
        found = sorted(glob.glob(s), key=natural_key) if any(c in s for c in "*?[") else [s]
        if not found:
            raise InputError("paths", f"files matching {s!r}; none found")
        paths = found
    try:
        files = [check_file(p, "paths") for p in paths]
    except TypeError:
        raise InputError("paths", f"a file, a glob pattern or a list of files, got {paths!r}") \
            from None
    if not files:
        raise InputError("paths", "at least one file")
    return files


def _open_one(path, dataset):
    if path.suffix.lower() in _HDF5_SUFFIXES:
        import h5py

        _hdf5_filters()
        try:
            with h5py.File(path, "r") as f:
                if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
                    raise InputError("dataset", f"a dataset of frames in {str(path)!r}, "
                                     f"{dataset!r} is not one")
                d = f[dataset]
                shape, dtype = d.shape, d.dtype
        except InputError:
            raise
        except Exception as exc:
            raise InputError("paths", f"a readable HDF5 file, {str(path)!r} is not one "
                             f"({type(exc).__name__}: {exc})") from None
        if len(shape) == 2:
            raise InputError("dataset", f"a stack of frames (n, ny, nx); {dataset!r} in "
                             f"{str(path)!r} is one image")
        if len(shape) != 3:
            raise InputError("dataset", f"frames (n, ny, nx), got shape {shape}")
        return _H5Frames(path, dataset, shape, dtype)
    try:
        import fabio
    except ImportError:
        raise InputError("paths", f"HDF5 files, or install fabio to read {path.suffix} "
                         "frames (pip install 'electromicro-dask[readers]')") from None
    try:
        with fabio.open(str(path)) as img:
            n = img.nframes
            shape, dtype = (n,) + img.data.shape, img.data.dtype
    except Exception as exc:
        raise InputError("paths", f"a detector image fabio can read, {str(path)!r} is not one "
                         f"({type(exc).__name__}: {exc})") from None
    return _FabioFrames(path, shape, dtype)


def _positioner(name, value, n):
    if isinstance(value, (str, os.PathLike)) and "::" in str(value):
        import h5py

        fname, dset = str(value).split("::", 1)
        p = check_file(fname, f"positioners[{name!r}]")
        try:
            with h5py.File(p, "r") as f:
                arr = np.asarray(f[dset][()], dtype=np.float64)
        except Exception:
            raise InputError(f"positioners[{name!r}]", f"a dataset {dset!r} in {fname!r}") \
                from None
    else:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"positioners[{name!r}]", "one number per frame, or "
                             "'file.h5::/path/to/dataset'") from None
    arr = arr.ravel()
    if arr.size != n:
        raise InputError(f"positioners[{name!r}]", f"one value per frame ({n} frames), got "
                         f"{arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"positioners[{name!r}]", "finite values")
    return arr


def read_frames(paths, dataset=LIMA_DATASET, positioners=None, frames_per_block=8):
    """Read detector frames lazily, with one positioner value per frame as coordinates.

    Parameters
    ----------
    paths : str, Path or sequence
        One file, a glob pattern (sorted naturally: ``_2`` before ``_10``) or a list of
        files in acquisition order; their frames are concatenated. HDF5 (LIMA layout,
        bitshuffle-LZ4 through ``hdf5plugin``) or any format fabio opens (EDF, CBF, ...).
    dataset : str
        The frames' dataset in HDF5 files (default LIMA's ``/entry_0000/measurement/data``).
    positioners : mapping, optional
        Name -> one value per frame: an array, or ``"master.h5::/1.1/measurement/rot"``.
        ``angle`` (degrees) and ``t`` (um) place the frames of a scan
        (:func:`electromicro_dask.scattering.to_sinogram`); others (``monitor``, ...) are
        kept as coordinates too.
    frames_per_block : int
        Frames per dask block: one task reads that many.

    Returns
    -------
    xarray.DataArray
        ``("frame", "det_y", "det_x")``, dask-backed, one task per block of frames; the
        positioners as coordinates along ``frame``.

    Examples
    --------
    >>> frames = read_frames("scan0003/pilatus_*.h5", positioners={        # doctest: +SKIP
    ...     "angle": "sample_0001.h5::/3.1/measurement/rot",
    ...     "t": "sample_0001.h5::/3.1/measurement/ty"})
    """
    if not isinstance(frames_per_block, (int, np.integer)) or frames_per_block < 1:
        raise InputError("frames_per_block", f"a positive integer, got {frames_per_block!r}")
    if not isinstance(dataset, str):
        raise InputError("dataset", f"a dataset path, got {dataset!r}")
    files = _files(paths)
    readers = [_open_one(p, dataset) for p in files]
    det = readers[0].shape[1:]
    for p, r in zip(files, readers):
        if r.shape[1:] != det:
            raise InputError("paths", f"frames of one detector shape {det}; {str(p)!r} has "
                             f"{r.shape[1:]}")
    parts = [da.from_array(r, chunks=(int(frames_per_block),) + det, asarray=False,
                           name=f"frames-{file_token(r.path)}-{dataset}-{frames_per_block}")
             for r in readers]
    data = da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    n = data.shape[0]
    coords = {"frame": np.arange(n)}
    for name, value in dict(positioners or {}).items():
        coords[str(name)] = ("frame", _positioner(name, value, n))
    out = xr.DataArray(data, dims=("frame", "det_y", "det_x"), coords=coords, name="frames",
                       attrs={"source": [str(Path(p)) for p in files], "dataset": dataset})
    return out
