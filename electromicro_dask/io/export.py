"""Exports for modellers: TIFF stacks, raw + JSON, VTK images and surface meshes.

Every writer walks the volume slab by slab along its first axis (one dask chunk row at a
time), so a volume larger than memory is written with memory bounded by one slab.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from ..core.arrays import as_volume, spatial_dims
from ..core.arrays import voxel_size as _voxel_size_of
from ..core.errors import InputError
from ..core.store import jsonable

__all__ = ["to_tiff", "to_raw", "read_raw_json", "to_vtk", "read_vtk", "to_mesh"]


def _slabs(arr):
    """(start, numpy slab) along the first axis, one chunk row at a time."""
    start = 0
    for n in arr.data.chunks[0]:
        yield start, np.asarray(arr.data[start:start + n].compute())
        start += n


def _meta(arr):
    return {"dims": list(arr.dims), "shape": list(arr.shape), "dtype": arr.dtype.str,
            "voxel_size_um": list(_voxel_size_of(arr, arr.dims)),
            "origin_um": [float(arr[d].values[0]) for d in arr.dims],
            "phases": {str(k): v for k, v in arr.attrs.get("phases", {}).items()}}


def _atomic(path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.with_name(f".{path.name}.partial")


def to_tiff(data, path):
    """Write an image or label volume as one multi-page (Big)TIFF, slice by slice.

    The voxel size is stored in ImageJ metadata (``spacing`` along z, resolution in
    pixels per um in-plane) and the full metadata (dims, voxel size, phases) as JSON in
    the first page's description (``electromicro_dask:{...}``).

    Examples
    --------
    >>> to_tiff(seg, "phases.tif")                 # doctest: +SKIP
    """
    import tifffile

    arr = as_volume(data, argument="data")
    path, tmp = _atomic(path)
    meta = _meta(arr)
    vs = meta["voxel_size_um"]
    kwargs = {"resolution": (1.0 / vs[-1], 1.0 / vs[-2]), "resolutionunit": "NONE"}
    with tifffile.TiffWriter(tmp, bigtiff=arr.nbytes > 2**31) as tw:
        for start, slab in _slabs(arr):
            pages = slab if arr.ndim == 3 else slab[None]
            for i, page in enumerate(pages):
                # A prefix keeps tifffile from taking the JSON for its own "shaped" metadata.
                desc = ("electromicro_dask:" + json.dumps(jsonable(meta))) if start == 0 and i == 0 \
                    else None
                tw.write(page, contiguous=False, description=desc, metadata=None, **kwargs)
    os.replace(tmp, path)
    return path


def to_raw(data, path):
    """Write raw little-endian binary plus a JSON sidecar (``<path>.json``) with shape,
    dtype, byte order, dims, voxel size (um), origin and phase table."""
    arr = as_volume(data, argument="data")
    path, tmp = _atomic(path)
    dtype = arr.dtype.newbyteorder("<")
    with open(tmp, "wb") as f:
        for _start, slab in _slabs(arr):
            f.write(np.ascontiguousarray(slab, dtype=dtype).tobytes())
    meta = _meta(arr)
    meta["dtype"] = dtype.str
    meta["byte_order"] = "little"
    side, side_tmp = _atomic(str(path) + ".json")
    side_tmp.write_text(json.dumps(jsonable(meta), indent=1))
    os.replace(tmp, path)
    os.replace(side_tmp, side)
    return path


def read_raw_json(path, chunks="auto"):
    """Read a volume written by :func:`to_raw` (lazily, through a memory map)."""
    import dask.array as da

    path = Path(path)
    side = Path(str(path) + ".json")
    if not path.is_file() or not side.is_file():
        raise InputError("path", f"a raw file with its JSON sidecar, {str(path)!r} has none")
    meta = json.loads(side.read_text())
    shape, dtype = tuple(meta["shape"]), np.dtype(meta["dtype"])
    if path.stat().st_size != int(np.prod(shape)) * dtype.itemsize:
        raise InputError("path", f"{int(np.prod(shape)) * dtype.itemsize} bytes as the sidecar "
                         f"says, file has {path.stat().st_size}")
    mm = np.memmap(path, dtype=dtype, mode="r", shape=shape)
    arr = as_volume(da.from_array(mm, chunks=chunks), voxel_size=meta["voxel_size_um"],
                    dims=meta["dims"], origin=meta["origin_um"])
    if meta.get("phases"):
        arr.attrs["phases"] = {int(k): v for k, v in meta["phases"].items()}
    return arr


_VTK_TYPES = {"u1": "unsigned_char", "i1": "char", "u2": "unsigned_short", "i2": "short",
              "u4": "unsigned_int", "i4": "int", "f4": "float", "f8": "double"}


def to_vtk(data, path):
    """Write a 3D volume as a legacy binary VTK ``STRUCTURED_POINTS`` file (ParaView,
    VisIt), slice by slice. Axes are written x fastest as VTK expects; spacing and
    origin in um."""
    arr = as_volume(data, argument="data")
    if arr.ndim != 3 or spatial_dims(arr) != ("z", "y", "x"):
        raise InputError("data", f"a (z, y, x) volume, got dims {arr.dims}")
    key = arr.dtype.str[1:]
    if key not in _VTK_TYPES:
        raise InputError("data", f"a dtype VTK stores ({sorted(_VTK_TYPES)}), got {arr.dtype}")
    path, tmp = _atomic(path)
    nz, ny, nx = arr.shape
    vz, vy, vx = _voxel_size_of(arr, ("z", "y", "x"))
    oz, oy, ox = (float(arr[d].values[0]) for d in "zyx")
    header = ("# vtk DataFile Version 3.0\nelectromicro_dask " + json.dumps(
        {"phases": {str(k): v for k, v in arr.attrs.get("phases", {}).items()}})[:200] +
        f"\nBINARY\nDATASET STRUCTURED_POINTS\nDIMENSIONS {nx} {ny} {nz}\n"
        f"ORIGIN {ox!r} {oy!r} {oz!r}\nSPACING {vx!r} {vy!r} {vz!r}\n"
        f"POINT_DATA {nx * ny * nz}\nSCALARS values {_VTK_TYPES[key]} 1\nLOOKUP_TABLE default\n")
    with open(tmp, "wb") as f:
        f.write(header.encode("ascii"))
        for _start, slab in _slabs(arr):
            f.write(np.ascontiguousarray(slab, dtype=arr.dtype.newbyteorder(">")).tobytes())
    os.replace(tmp, path)
    return path


def read_vtk(path):
    """Read a file written by :func:`to_vtk` into a DataArray (in memory)."""
    raw = Path(path).read_bytes()
    marker = b"LOOKUP_TABLE default\n"
    cut = raw.find(marker)
    if not raw.startswith(b"# vtk DataFile") or cut < 0:
        raise InputError("path", f"a binary STRUCTURED_POINTS VTK file, {str(path)!r} is not")
    head = raw[:cut].decode("ascii").splitlines()
    fields = {ln.split()[0]: ln.split()[1:] for ln in head[2:] if ln.strip()}
    nx, ny, nz = (int(v) for v in fields["DIMENSIONS"])
    spacing = [float(v) for v in fields["SPACING"]][::-1]
    origin = [float(v) for v in fields["ORIGIN"]][::-1]
    inv = {v: k for k, v in _VTK_TYPES.items()}
    dtype = np.dtype(">" + inv[fields["SCALARS"][1]])
    data = np.frombuffer(raw[cut + len(marker):], dtype=dtype, count=nx * ny * nz)
    arr = as_volume(data.reshape(nz, ny, nx).astype(dtype.newbyteorder("=")), voxel_size=spacing,
                    origin=origin)
    phases = json.loads(head[1].split(" ", 1)[1]).get("phases") if head[1].startswith(
        "electromicro_dask {") else None
    if phases:
        arr.attrs["phases"] = {int(k): v for k, v in phases.items()}
    return arr


def to_mesh(phases, phase, path, step_size=1):
    """Write the surface of a phase as a triangle mesh (binary STL or binary PLY), block by block.

    Marching cubes (Lorensen and Cline 1987; :func:`skimage.measure.marching_cubes`) runs on
    each chunk row extended by one voxel, so every cube cell is meshed exactly once and the
    pieces join without gaps; the volume is padded with background so the surface closes.
    Vertex coordinates are in um. Returns the number of triangles.
    """
    from skimage.measure import marching_cubes

    from ..core.arrays import as_segmentation
    from ..core.phases import phase_codes

    seg = as_segmentation(phases)
    if seg.ndim != 3:
        raise InputError("phases", f"a 3D segmentation, got dims {seg.dims}")
    codes = phase_codes(seg, phase)
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("stl", "ply"):
        raise InputError("path", f"a file name ending in .stl or .ply, got {path.name!r}")
    spacing = np.asarray(_voxel_size_of(seg, ("z", "y", "x")))
    origin = np.asarray([float(seg[d].values[0]) for d in "zyx"])
    nz = seg.shape[0]
    bounds = np.cumsum((0,) + seg.data.chunks[0])
    path, tmp = _atomic(path)
    n_tri = 0
    tmp_tris = tmp.with_suffix(".tri")
    # Padded volume P: P[0] and P[nz + 1] background, P[k + 1] = plane k. Cell c lies between
    # P[c] and P[c + 1]; a chunk row [a, b) meshes cells a .. b - 1 (and nz for the last
    # row) from P[a .. b] (+ P[nz + 1]), so each cell is meshed exactly once.
    with open(tmp_tris, "wb") as ftri:
        for a, b in zip(bounds[:-1], bounds[1:]):
            slab = np.isin(np.asarray(seg.data[max(a - 1, 0):b].compute()), codes)
            slab = np.pad(slab.astype(np.float32),
                          ((1 if a == 0 else 0, 1 if b == nz else 0), (1, 1), (1, 1)))
            if slab.shape[0] < 2 or slab.max() == slab.min():
                continue
            verts, faces, _n, _v = marching_cubes(slab, level=0.5, step_size=step_size,
                                                  allow_degenerate=False)
            if len(faces) == 0:
                continue
            xyz = (verts + np.array([a - 1, -1, -1])) * spacing + origin
            ftri.write(xyz[faces][:, :, ::-1].astype(np.float32).tobytes())  # (x, y, z)
            n_tri += len(faces)
    tri_all = np.memmap(tmp_tris, dtype=np.float32, mode="r", shape=(n_tri, 3, 3)) if n_tri else \
        np.zeros((0, 3, 3), np.float32)
    with open(tmp, "wb") as f:
        if fmt == "stl":
            f.write(b"electromicro_dask surface mesh, um".ljust(80, b" "))
            f.write(struct.pack("<I", n_tri))
            rec = np.zeros(n_tri, dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
            if n_tri:
                v = np.asarray(tri_all)
                nrm = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
                nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-30)
                rec["n"], rec["v"] = nrm, v
            f.write(rec.tobytes())
        else:
            f.write(("ply\nformat binary_little_endian 1.0\ncomment units um\n"
                     f"element vertex {3 * n_tri}\nproperty float x\nproperty float y\n"
                     f"property float z\nelement face {n_tri}\nproperty list uchar int "
                     "vertex_indices\nend_header\n").encode())
            f.write(np.asarray(tri_all).reshape(-1, 3).astype("<f4").tobytes())
            face = np.zeros(n_tri, dtype=[("n", "u1"), ("i", "<i4", 3)])
            face["n"] = 3
            face["i"] = np.arange(3 * n_tri, dtype=np.int64).reshape(-1, 3)
            f.write(face.tobytes())
    del tri_all
    os.remove(tmp_tris)
    os.replace(tmp, path)
    return n_tri
