"""The sample store: one zarr (v3) group per sample, one variable per stage.

``save`` writes a variable atomically: the array (and any coordinate the store does not
have yet) is written completely into a staging group beside the store and only then
moved into the store by directory renames, so an interrupted write leaves no partial
variable and never touches existing ones (DESIGN.md, "Data model"). Each variable's
attrs carry provenance (function, parameters, package version, hash, time) and image
variables are listed in the group's OME-Zarr (NGFF 0.5) ``multiscales`` metadata so
napari can open them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from .arrays import as_volume
from .errors import InputError, StoreError
from .halo import register_source
from .progress import compute

__all__ = ["open_store", "save", "save_many", "save_table", "open_table", "tables", "provenance_hash",
           "variables", "delete", "jsonable"]

_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_AXIS_TYPE = {"z": "space", "y": "space", "x": "space", "angle": "custom", "t": "space",
              "mz": "custom", "q": "custom"}


def _version():
    from .. import __version__

    return __version__


def jsonable(obj):
    """Convert ``obj`` to plain JSON types (tuples to lists, numpy scalars to Python)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def provenance_hash(function, parameters, inputs=(), version=None):
    """SHA-256 of (inputs' hashes, function, parameters, package version), hex, 16 chars."""
    payload = json.dumps({"function": function, "parameters": jsonable(parameters),
                          "inputs": list(inputs), "version": version or _version()},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _restore_attrs(attrs):
    attrs = dict(attrs)
    if "phases" in attrs and isinstance(attrs["phases"], Mapping):
        attrs["phases"] = {int(k): v for k, v in attrs["phases"].items()}
    return attrs


def open_store(path):
    """Open a sample store lazily as an :class:`xarray.Dataset`.

    Parameters
    ----------
    path : str or Path
        A ``*.zarr`` directory written by :func:`save`.

    Returns
    -------
    xarray.Dataset
        Dask-backed variables with their coordinates (um) and attrs; ``attrs["phases"]``
        of segmentations has integer keys again.

    Examples
    --------
    >>> ds = open_store("sample.zarr")            # doctest: +SKIP
    >>> ds["phases"].attrs["phases"]              # doctest: +SKIP
    {0: 'pore', 1: 'cbd', 2: 'am'}
    """
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise InputError("path", f"an existing zarr v3 store written by save(), "
                         f"found none at {str(path)!r}")
    try:
        ds = xr.open_zarr(path, consolidated=False, zarr_format=3, chunks={})
    except Exception as exc:  # zarr/xarray raise many types for unreadable stores
        raise InputError("path", f"a readable zarr v3 store at {str(path)!r} ({exc})") from exc
    for name in list(ds.variables):
        ds[name].attrs = _restore_attrs(ds[name].attrs)
    for name, var in ds.data_vars.items():
        # Filters may read halos straight from zarr (core.halo) when the values are the
        # stored ones: same dtype, no scale/offset, no fill value turned into NaN.
        enc = var.encoding
        fill = enc.get("_FillValue")
        if (var.dtype == enc.get("dtype") and "scale_factor" not in enc
                and "add_offset" not in enc
                and (fill is None or (var.dtype.kind == "f" and np.isnan(fill)))):
            register_source(var.data, path / name)
    return ds


def variables(path):
    """Table of the store's variables: name, dims, shape, dtype and provenance."""
    import pandas as pd

    ds = open_store(path)
    rows = []
    for name, var in ds.data_vars.items():
        prov = var.attrs.get("provenance", {})
        rows.append({"name": name, "dims": ",".join(var.dims), "shape": "x".join(map(str, var.shape)),
                     "dtype": str(var.dtype), "function": prov.get("function", ""),
                     "hash": prov.get("hash", ""), "created": prov.get("created", ""),
                     "parameters": json.dumps(prov.get("parameters", {}), sort_keys=True)})
    return pd.DataFrame(rows)


def _staging_dir(path):
    return path.parent / f".{path.name}.staging"


def clear_staging(path):
    """Remove what killed writes left behind: the staging folder beside the store and
    zarr's orphan ``*.partial`` files inside it. Only call it when no other process is
    writing to this store (the runner does, at the start of a run)."""
    path = Path(path)
    removed = 0
    staging = _staging_dir(path)
    if staging.exists():
        removed += sum(1 for _ in staging.iterdir())
        shutil.rmtree(staging, ignore_errors=True)
    if path.is_dir():
        for f in path.rglob("*.partial"):
            f.unlink(missing_ok=True)
            removed += 1
    return removed


def _regular_chunks(arr):
    """zarr needs equal chunks (the last may be smaller): re-chunk dask arrays if not."""
    chunks = arr.chunks
    if chunks is None:
        return arr
    new = {}
    for dim, c in zip(arr.dims, chunks):
        if len(c) > 1 and (len(set(c[:-1])) > 1 or c[-1] > c[0]):
            new[dim] = max(c)
    return arr.chunk(new) if new else arr


def _ngff_axes(arr):
    axes = []
    for d in arr.dims:
        ax = {"name": d, "type": _AXIS_TYPE.get(d, "custom")}
        if d in ("z", "y", "x"):
            ax["unit"] = "micrometer"
        axes.append(ax)
    return axes


def _ngff_entry(arr, name):
    scale, translation = [], []
    for d in arr.dims:
        c = arr.coords[d].values if d in arr.coords else np.arange(arr.sizes[d])
        c = np.asarray(c, dtype=float)
        scale.append(float(c[1] - c[0]) if c.size > 1 else 1.0)
        translation.append(float(c[0]))
    return {"name": name, "axes": _ngff_axes(arr),
            "datasets": [{"path": name, "coordinateTransformations": [
                {"type": "scale", "scale": scale}, {"type": "translation", "translation": translation}]}]}


def save(data, path, name, provenance=None, overwrite=True, image=None):
    """Write ``data`` to the store at ``path`` as variable ``name``, atomically.

    The dask graph behind ``data`` is computed here (on the active distributed client
    if there is one), chunk by chunk, into a staging group; the variable appears in the
    store only once it is complete. Existing variables are never modified, except
    ``name`` itself when ``overwrite`` is true, which is replaced in one rename.

    Parameters
    ----------
    data : xarray.DataArray
        A DataArray in the data model (see :func:`as_volume`).
    path : str or Path
        Store directory (``sample.zarr``); created when missing.
    name : str
        Variable name (letters, digits, ``_`` and ``-``).
    provenance : dict, optional
        ``{"function": ..., "parameters": {...}, "inputs": [hashes]}``; the package
        version, creation time and a hash (:func:`provenance_hash`) are added.
    overwrite : bool
        Replace an existing variable of that name (default) or raise InputError.
    image : bool, optional
        List the variable in the OME-Zarr multiscales metadata; default: when it has
        two or more spatial dims.

    Returns
    -------
    dict
        The provenance record written to ``attrs["provenance"]``.

    Examples
    --------
    >>> import numpy as np
    >>> v = as_volume(np.zeros((8, 8, 8), "uint8"), voxel_size=0.5)
    >>> save(v, "sample.zarr", "raw")                           # doctest: +SKIP
    """
    return save_many({name: data}, path, provenance=provenance, overwrite=overwrite,
                     image=image)[name]


def _check_name(name):
    if not isinstance(name, str) or not name or not set(name) <= _NAME_OK or name[0] in "_-.":
        raise InputError("name", f"a variable name of letters, digits, '_' or '-', got {name!r}")


def _record(provenance, token=None):
    """The provenance record of a write: given fields plus version, hash and time."""
    prov = dict(jsonable(provenance or {}))
    prov.setdefault("function", "")
    prov.setdefault("parameters", {})
    prov.setdefault("inputs", [])
    prov["version"] = _version()
    if "hash" not in prov:
        # Without a recipe's provenance the data itself (its dask token) makes the hash, so
        # replacing an input by hand invalidates every stage that read it.
        extra = [token] if token is not None else []
        prov["hash"] = provenance_hash(prov["function"], prov["parameters"],
                                       prov["inputs"] + extra)
    prov["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return prov


def save_many(arrays, path, provenance=None, overwrite=True, image=None):
    """Write several variables with one computation (shared upstream work runs once).

    ``arrays`` maps names to DataArrays on compatible grids; each is written atomically as
    :func:`save` does and gets the same ``provenance``. Returns ``{name: record}``.
    """
    from dask.base import tokenize

    path = Path(path)
    if not arrays:
        raise InputError("arrays", "one or more {name: DataArray}")
    prepared = {}
    for name, data in arrays.items():
        _check_name(name)
        if not isinstance(data, xr.DataArray):
            raise InputError("data", "an xarray.DataArray (use as_volume() first)")
        arr = as_volume(data, argument="data")
        if name in arr.dims:
            raise InputError("name", f"a name that is not a dimension ({arr.dims}), got {name!r}")
        prepared[name] = _regular_chunks(arr)

    root = _open_root(path)
    existing = set(root.array_keys())
    clash = [n for n in prepared if n in existing]
    if clash and not overwrite:
        raise InputError("name", f"a variable not yet in {str(path)!r} (or overwrite=True), "
                         f"got {clash[0]!r}")
    # Coordinates already in the store (or in another of the arrays) must agree with each
    # new variable's: checked before anything is computed or written, so a mismatch leaves
    # the store as it was.
    seen = {}
    if existing:
        current = open_store(path)
        seen = {d: current.coords[d].values for d in current.coords}
    for arr in prepared.values():
        for d in arr.dims:
            new = arr.coords[d].values
            if d in seen:
                old = seen[d]
                if old.shape != new.shape or not np.allclose(old, new, rtol=1e-9, atol=0):
                    raise InputError("data", f"coordinates along {d!r} equal to those in the "
                                     f"store ({old.size} values from {old[0]:g} um); got "
                                     f"{new.size} from {new[0]:g} um. Save it to another store.")
            seen[d] = new

    records, variables, encoding = {}, {}, {}
    for name, arr in prepared.items():
        prov = _record(provenance, tokenize(arr.data))
        attrs = jsonable(arr.attrs)
        attrs["provenance"] = prov
        arr = arr.copy()
        arr.attrs = attrs
        arr.name = name
        arr = arr.drop_vars([c for c in arr.coords if c not in arr.dims])
        variables[name] = arr
        records[name] = prov
        if isinstance(arr.data, da.Array):
            encoding[name] = {"chunks": tuple(c[0] for c in arr.chunks)}

    names = ", ".join(repr(n) for n in variables)
    staging = _staging_dir(path) / uuid.uuid4().hex
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        ds = xr.Dataset(variables)
        delayed = ds.to_zarr(staging, mode="w-", zarr_format=3, consolidated=False,
                             compute=False, encoding=encoding)
        compute(delayed, label=f"writing {names} to {path}")
        # Everything is on disk: move it in, coordinates first, the variables last.
        for d in ds.dims:
            if not (path / d).exists():
                os.rename(staging / d, path / d)
        for name in variables:
            if (path / name).exists():
                trash = _staging_dir(path) / f"trash-{uuid.uuid4().hex}"
                os.rename(path / name, trash)
                os.rename(staging / name, path / name)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.rename(staging / name, path / name)
    except InputError:
        raise
    except Exception as exc:
        raise StoreError(f"writing {names} to {str(path)!r} failed; the store is unchanged "
                         f"({type(exc).__name__}: {exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            _staging_dir(path).rmdir()
        except OSError:
            pass

    for name, arr in variables.items():
        img = len([d for d in arr.dims if d in ("z", "y", "x")]) >= 2 if image is None else image
        _update_ngff(path, arr, name, img)
    return records


def _open_root(path):
    try:
        if (path / "zarr.json").is_file():
            return zarr.open_group(path, mode="r+", zarr_format=3)
        if path.exists() and any(path.iterdir()):
            raise InputError("path", f"a zarr v3 store or a new directory, {str(path)!r} is "
                             "neither")
        return zarr.open_group(path, mode="a", zarr_format=3)
    except InputError:
        raise
    except Exception as exc:
        raise InputError("path", f"a writable zarr v3 store at {str(path)!r} ({exc})") from exc


def _update_ngff(path, arr, name, image):
    root = zarr.open_group(path, mode="r+", zarr_format=3)
    ome = dict(root.attrs.get("ome", {"version": "0.5", "multiscales": []}))
    ms = [m for m in ome.get("multiscales", []) if m.get("name") != name]
    if image:
        ms.append(_ngff_entry(arr, name))
    ome["multiscales"] = ms
    root.attrs["ome"] = ome


def delete(path, name):
    """Remove variable ``name`` from the store (one rename, then cleanup)."""
    path = Path(path)
    if not (path / name / "zarr.json").is_file():
        raise InputError("name", f"a variable of {str(path)!r}, got {name!r}")
    trash = _staging_dir(path) / f"trash-{uuid.uuid4().hex}"
    trash.parent.mkdir(parents=True, exist_ok=True)
    os.rename(path / name, trash)
    shutil.rmtree(_staging_dir(path), ignore_errors=True)
    root = zarr.open_group(path, mode="r+", zarr_format=3)
    ome = dict(root.attrs.get("ome", {"version": "0.5", "multiscales": []}))
    ome["multiscales"] = [m for m in ome.get("multiscales", []) if m.get("name") != name]
    root.attrs["ome"] = ome


def _tables_dir(path):
    # A zarr sub-group, so zarr and xarray see a known node (xarray ignores sub-groups);
    # the tables themselves are JSON files inside it.
    d = Path(path) / "tables"
    if (Path(path) / "zarr.json").is_file() and not (d / "zarr.json").is_file():
        zarr.open_group(d, mode="a", zarr_format=3, attributes={"description":
                        "result tables of electromicro_dask, one JSON file each"})
    return d


def save_table(table, path, name, provenance=None):
    """Write a result table (DataFrame, Series or dict) into the store, atomically.

    Tables live in ``<store>/tables/<name>.json`` with the same provenance record as
    variables. Returns the provenance record.
    """
    import pandas as pd

    path = Path(path)
    if not isinstance(name, str) or not name or not set(name) <= _NAME_OK:
        raise InputError("name", f"a table name of letters, digits, '_' or '-', got {name!r}")
    _open_root(path)
    prov = _record(provenance, _table_token(table))
    if isinstance(table, pd.Series):
        body = {"kind": "series", "name": table.name, "index_name": table.index.name,
                "data": json.loads(table.to_json(orient="split"))}
    elif isinstance(table, pd.DataFrame):
        body = {"kind": "dataframe", "index_name": table.index.name,
                "data": json.loads(table.to_json(orient="split"))}
    elif isinstance(table, Mapping):
        body = {"kind": "dict", "data": jsonable(table)}
    else:
        raise InputError("table", f"a DataFrame, Series or dict, got {type(table).__name__}")
    body["provenance"] = prov
    d = _tables_dir(path)
    d.mkdir(exist_ok=True)
    tmp = d / f".{name}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, d / f"{name}.json")
    return prov


def _table_token(table):
    from dask.base import tokenize

    try:
        return tokenize(table)
    except Exception:  # an untokenizable dict: the hash then follows the provenance only
        return None


def open_table(path, name, with_provenance=False):
    """Read a table written by :func:`save_table` (DataFrame, Series or dict)."""
    import io

    import pandas as pd

    f = _tables_dir(path) / f"{name}.json"
    if not f.is_file():
        raise InputError("name", f"a table of {str(path)!r}, got {name!r}")
    body = json.loads(f.read_text())
    kind = body["kind"]
    if kind == "dataframe":
        out = pd.read_json(io.StringIO(json.dumps(body["data"])), orient="split")
        out.index.name = body.get("index_name")
    elif kind == "series":
        out = pd.read_json(io.StringIO(json.dumps(body["data"])), orient="split", typ="series")
        out.index.name = body.get("index_name")
        out.name = body.get("name")
    else:
        out = body["data"]
    return (out, body["provenance"]) if with_provenance else out


def tables(path):
    """Names of the tables in the store."""
    d = _tables_dir(path)
    return sorted(p.stem for p in d.glob("*.json") if p.name != "zarr.json") if d.is_dir() else []
