"""Validation of arrays into the data model, and the chunk policy.

Every image-like object is an :class:`xarray.DataArray` backed by a dask array, with
dimension names from one vocabulary and physical coordinates in micrometres
(DESIGN.md, "Data model"). The voxel size is read from the coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .errors import InputError
from .phases import phase_table

__all__ = [
    "DIMS",
    "as_volume",
    "as_segmentation",
    "voxel_size",
    "default_chunks",
    "chunk_bytes",
    "spatial_dims",
    "check_same_grid",
]

#: Dimension names the package understands (DESIGN.md).
DIMS = ("z", "y", "x", "mz", "q", "angle", "t")
_SPATIAL = ("z", "y", "x")
_DEFAULT_DIMS = {2: ("y", "x"), 3: ("z", "y", "x")}

#: Default chunk size in bytes: 128**3 voxels of uint8 (DESIGN.md chunk policy).
_DEFAULT_CHUNK_BYTES = 128**3


def chunk_bytes():
    """Target chunk size in bytes (dask config ``electromicro.chunk-bytes``, default 2 MiB)."""
    return int(dask.config.get("electromicro.chunk-bytes", _DEFAULT_CHUNK_BYTES))


def default_chunks(shape, dtype, limit=None):
    """Chunk shape of about ``limit`` bytes (default :func:`chunk_bytes`), near-cubic.

    With 1-byte voxels this is about 128**3; larger items give proportionally fewer
    voxels per chunk, so a chunk costs the same memory whatever the dtype.

    Examples
    --------
    >>> default_chunks((512, 512, 512), "uint8")
    ((128, 128, 128, 128), (128, 128, 128, 128), (128, 128, 128, 128))
    """
    limit = chunk_bytes() if limit is None else int(limit)
    itemsize = np.dtype(dtype).itemsize
    shape = tuple(int(s) for s in shape)
    budget = max(1.0, limit / itemsize)
    edge = {}
    free = list(range(len(shape)))
    # Axes shorter than the cubic edge are taken whole; the rest share what is left.
    while free:
        side = budget ** (1.0 / len(free))
        side = int(round(side)) if abs(side - round(side)) < 1e-6 else int(side)
        small = [i for i in free if shape[i] <= side]
        if not small:
            for i in free:
                edge[i] = max(1, side)
            break
        for i in small:
            edge[i] = shape[i]
            budget /= shape[i]
            free.remove(i)
    return da.core.normalize_chunks(tuple(edge[i] for i in range(len(shape))), shape=shape)


def _voxel_tuple(voxel_size, dims, argument="voxel_size"):
    if isinstance(voxel_size, Mapping):
        missing = [d for d in dims if d not in voxel_size]
        if missing:
            raise InputError(argument, f"a size for every dim {dims}, missing {missing}")
        vs = tuple(voxel_size[d] for d in dims)
    elif np.ndim(voxel_size) == 0:
        vs = (voxel_size,) * len(dims)
    else:
        vs = tuple(voxel_size)
        if len(vs) != len(dims):
            raise InputError(argument, f"one size per dim {dims}, got {len(vs)} values")
    try:
        vs = tuple(float(v) for v in vs)
    except (TypeError, ValueError):
        raise InputError(argument, f"numbers in micrometres, got {voxel_size!r}") from None
    if not all(math.isfinite(v) and v > 0 for v in vs):
        raise InputError(argument, f"positive finite sizes in micrometres, got {voxel_size!r}")
    return vs


def _check_dims(dims, ndim, argument="dims"):
    dims = tuple(dims)
    if len(dims) != ndim:
        raise InputError(argument, f"{ndim} names for a {ndim}-d array, got {dims}")
    unknown = [d for d in dims if d not in DIMS]
    if unknown:
        raise InputError(argument, f"names from {DIMS}, got {unknown}")
    if len(set(dims)) != len(dims):
        raise InputError(argument, f"distinct names, got {dims}")
    return dims


def _coordinate(n, step, origin=0.0):
    return origin + step * np.arange(n, dtype=np.float64)


def _step_of(coord, dim, argument):
    c = np.asarray(coord, dtype=np.float64)
    if c.ndim != 1:
        raise InputError(argument, f"1-d coordinate for {dim!r}")
    if c.size < 2:
        return None
    d = np.diff(c)
    step = float(d.mean())
    if not (step > 0 and np.allclose(d, step, rtol=1e-6, atol=0)):
        raise InputError(argument, f"increasing, evenly spaced coordinates along {dim!r}")
    return step


def voxel_size(data, dims=None):
    """Voxel size in micrometres along ``dims`` (default: spatial dims), from coordinates.

    Examples
    --------
    >>> import numpy as np
    >>> v = as_volume(np.zeros((4, 5, 6), "uint8"), voxel_size=(0.1, 0.2, 0.2))
    >>> voxel_size(v)
    (0.1, 0.2, 0.2)
    """
    dims = spatial_dims(data) if dims is None else tuple(dims)
    out = []
    for d in dims:
        if d not in data.coords:
            raise InputError("data", f"a coordinate in micrometres for dim {d!r}")
        step = _step_of(data.coords[d].values, d, "data")
        if step is None:
            step = float(data.coords[d].attrs.get("voxel_size", np.nan))
            if not np.isfinite(step):
                raise InputError("data", f"coordinate {d!r} with 2+ values or a voxel_size attr")
        out.append(round(step, 12))
    return tuple(out)


def spatial_dims(data):
    """The spatial dims (z, y, x) of ``data``, in its order."""
    return tuple(d for d in data.dims if d in _SPATIAL)


def as_volume(data, voxel_size=None, dims=None, chunks="auto", origin=None, name=None,
              argument="data"):
    """Validate ``data`` into the data model: a dask-backed DataArray with coordinates in um.

    Parameters
    ----------
    data : numpy.ndarray, dask.array.Array or xarray.DataArray
        2D images default to dims ``("y", "x")``, 3D volumes to ``("z", "y", "x")``.
    voxel_size : float, sequence or mapping, optional
        Voxel size in micrometres (one value, one per dim, or ``{dim: size}``). Required
        when ``data`` has no coordinates; must not contradict coordinates it has.
    dims : sequence of str, optional
        Dimension names from :data:`DIMS`.
    chunks : "auto", tuple or dict
        Chunking for numpy input or for re-chunking; "auto" applies the chunk policy
        (:func:`default_chunks`) to numpy input and keeps existing dask chunks.
    origin : float or sequence, optional
        Coordinate of the first voxel along each dim, in um (default 0).
    name : str, optional
        Name of the returned DataArray.

    Returns
    -------
    xarray.DataArray
        Dask-backed, with ``attrs["units"] = "um"`` and one coordinate per dim.

    Raises
    ------
    InputError
        Wrong number or names of dims, a missing or non-positive voxel size,
        coordinates that are not evenly spaced.

    Examples
    --------
    >>> import numpy as np
    >>> v = as_volume(np.zeros((64, 64, 64), "uint8"), voxel_size=0.5)
    >>> v.dims, float(v.x[1])
    (('z', 'y', 'x'), 0.5)
    """
    if isinstance(data, xr.Dataset):
        raise InputError(argument, "a DataArray, numpy or dask array, not a Dataset")
    if isinstance(data, xr.DataArray):
        arr = data
        if dims is not None and tuple(dims) != arr.dims:
            arr = arr.rename(dict(zip(arr.dims, _check_dims(dims, arr.ndim, "dims"))))
        _check_dims(arr.dims, arr.ndim, argument)
    else:
        if not hasattr(data, "shape") or not hasattr(data, "dtype"):
            try:
                data = np.asarray(data)
            except Exception:
                raise InputError(argument, "an array (numpy, dask or xarray)") from None
        if data.dtype == object or data.ndim == 0:
            raise InputError(argument, f"a numeric array with 1+ dims, got dtype {data.dtype}")
        if dims is None:
            if data.ndim not in _DEFAULT_DIMS:
                raise InputError("dims", f"dim names for a {data.ndim}-d array")
            dims = _DEFAULT_DIMS[data.ndim]
        dims = _check_dims(dims, data.ndim)
        arr = xr.DataArray(data, dims=dims)
    if any(s == 0 for s in arr.shape):
        raise InputError(argument, f"a non-empty array, got shape {arr.shape}")

    sdims = [d for d in arr.dims if d in _SPATIAL or d not in arr.coords]
    if voxel_size is not None:
        vs = dict(zip(sdims, _voxel_tuple(voxel_size, sdims)))
    else:
        vs = {}
    if origin is None:
        org = dict.fromkeys(sdims, 0.0)
    else:
        org = dict(zip(sdims, (origin,) * len(sdims) if np.ndim(origin) == 0 else origin))
    coords = {}
    for d in sdims:
        if d in arr.coords:
            step = _step_of(arr.coords[d].values, d, argument)
            if d in vs and step is not None and not np.isclose(step, vs[d], rtol=1e-6):
                raise InputError("voxel_size", f"{vs[d]} um along {d!r} as the coordinates say, "
                                 f"they give {step}")
            continue
        if d not in vs:
            raise InputError("voxel_size", f"a voxel size in um for dim {d!r} (data has no "
                             "coordinates)")
        # The voxel size also rides along as an attr, so a length-1 axis keeps it.
        coords[d] = xr.Variable(d, _coordinate(arr.sizes[d], vs[d], float(org[d])),
                                attrs={"units": "um", "voxel_size": vs[d]})
    if coords:
        arr = arr.assign_coords(coords)
    for d in sdims:
        arr.coords[d].attrs.setdefault("units", "um")

    if not isinstance(arr.data, da.Array):
        c = default_chunks(arr.shape, arr.dtype) if chunks == "auto" else chunks
        arr = arr.chunk(dict(zip(arr.dims, c)) if isinstance(c, tuple) else c)
    elif chunks != "auto":
        arr = arr.chunk(chunks)
    arr.attrs.setdefault("units", "um")
    if name is not None:
        arr.name = name
    return arr


def as_segmentation(data, phases=None, voxel_size=None, argument="phases"):
    """Validate a segmentation: unsigned integers with a ``{code: name}`` phase table.

    Float input is accepted if every value is a non-negative integer; a NaN is an
    :class:`InputError` (checking this computes one global reduction on float input).
    """
    table = phases if phases is not None else getattr(data, "attrs", {}).get("phases")
    if table is None:
        raise InputError(argument, 'a segmentation with attrs["phases"] = {code: name}')
    table = phase_table(table, argument)
    arr = as_volume(data, voxel_size=voxel_size, argument=argument)
    if arr.dtype.kind == "f":
        bad = da.any(~da.isfinite(arr.data) | (arr.data < 0) | (arr.data != da.floor(arr.data)))
        if bool(bad.compute()):
            raise InputError(argument, "non-negative integer phase codes (found NaN, inf, "
                             "negative or fractional values)")
    elif arr.dtype.kind == "i":
        if bool((arr.data < 0).any().compute()):
            raise InputError(argument, "non-negative integer phase codes")
    elif arr.dtype.kind not in "ub":
        raise InputError(argument, f"an integer label array, got dtype {arr.dtype}")
    top = max(table)
    dtype = np.uint8 if top < 256 else np.uint16
    if arr.dtype != dtype and np.dtype(arr.dtype).itemsize > np.dtype(dtype).itemsize:
        # Narrowing could wrap codes (300 -> 44): keep the wider type instead.
        dtype = arr.dtype if arr.dtype.kind == "u" else np.uint32
    if arr.dtype != dtype:
        arr = arr.astype(dtype)
    arr.attrs["phases"] = table
    return arr


def check_same_grid(a, b, argument="b"):
    """Raise InputError unless ``a`` and ``b`` share dims, shape and coordinates."""
    if a.dims != b.dims or a.shape != b.shape:
        raise InputError(argument, f"dims {a.dims} and shape {a.shape}, got {b.dims} {b.shape}")
    for d in a.dims:
        if d in a.coords and d in b.coords and not np.allclose(a[d].values, b[d].values):
            raise InputError(argument, f"the same coordinates along {d!r}")
