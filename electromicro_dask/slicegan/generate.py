"""Lazy generation of volumes of any size from one global latent field.

With generator paddings ``p >= k - s`` (true of the v1.1 configuration) every output
voxel depends only on latent voxels that exist, never on a border, and the network in
eval mode (batch norm as a fixed affine map from its running statistics, as the
reference's ``util.test_img`` uses it) is translation-equivariant: shifting the latent
by one voxel shifts the output by ``P = prod(strides)`` voxels (32 for v1.1). The output
of ``n`` latent voxels covers global voxels ``[0, P*n - C)`` (``C = 64`` for v1.1), so an
output block ``[o0, o1)`` is the crop of the generator applied to the latent tile
``[o0 // P, ceil((o1 + C) / P))`` -- its own latent voxels plus a halo of ``C / P``
voxels (2 for v1.1). The latent field is a chunk-invariant function of the global latent
index (``core.random.normal_block``), so every block agrees with a one-shot generation.
Batch-norm in training mode would normalise each block by its own statistics and break
this; generation therefore always uses eval mode.
"""

from __future__ import annotations

import threading

import dask
import dask.array as da
import numpy as np
import torch
import xarray as xr

from ..core.arrays import default_chunks
from ..core.errors import InputError
from ..core.random import normal_block
from .config import latent_size, period, trim
from .model import SliceGANModel, resolve_device

__all__ = ["generate", "latent_tile"]

_CACHE = {}
_LOCK = threading.Lock()


def latent_tile(cfg, lo, hi):
    """Latent index range ``[a, b)`` whose generation covers output voxels ``[lo, hi)``."""
    p = period(cfg)
    a = lo // p
    b = -(-(hi + trim(cfg)) // p)
    return a, b


def _net(model, token, device, dtype):
    key = (token, str(device), str(dtype))
    with _LOCK:
        net = _CACHE.get(key)
        if net is None:
            if len(_CACHE) >= 4:
                _CACHE.clear()
            net = _CACHE[key] = model.generator(device, dtype)
    return net


def _block(model, token, lo, hi, latent_shape, seed, device, dtype, codes):
    cfg = model.config
    tiles = [latent_tile(cfg, l, h) for l, h in zip(lo, hi)]
    shape = (cfg["latent_channels"], *[b - a for a, b in tiles])
    z = normal_block(shape, (0, *[a for a, _ in tiles]),
                     (cfg["latent_channels"], *latent_shape), seed)
    dev = resolve_device(device)
    tdtype = getattr(torch, dtype)
    net = _net(model, token, dev, tdtype)
    with torch.inference_mode():
        out = net.logits(torch.as_tensor(z[None], dtype=tdtype, device=dev))[0]
        p = period(cfg)
        crop = tuple(slice(l - a * p, h - a * p) for (a, _), l, h in zip(tiles, lo, hi))
        out = out[(slice(None), *crop)]
        if codes is None:
            return (0.5 * (torch.tanh(out[0]) + 1)).float().cpu().numpy()
        idx = out.argmax(0).cpu().numpy()
    return codes[idx]


def generate(model, shape, chunks="auto", seed=0, device="auto", dtype="float32"):
    """Generate a 3D volume lazily, block by block, from one global latent field.

    Parameters
    ----------
    model : SliceGANModel
        A trained model (:func:`~electromicro_dask.slicegan.train`).
    shape : tuple of 3 int
        Output voxels ``(nz, ny, nx)``; any size (blocks are generated independently).
    chunks : "auto" or tuple
        Output chunks; each block needs its latent tile plus a halo of ``C / P`` latent
        voxels (2 for v1.1), so memory per task is set by the chunk, not the volume.
    seed : int
        Seed of the latent field; the same seed gives the same volume on any chunking.
    device : str
        ``"auto"`` (CUDA when the worker has it), ``"cpu"`` or ``"cuda"``. With a
        distributed client whose workers advertise a ``GPU`` resource, blocks are
        annotated ``resources={"GPU": 1}``.
    dtype : {"float32", "float64"}
        Precision of the network evaluation.

    Returns
    -------
    xarray.DataArray
        Lazy ``("z", "y", "x")`` labels (phase of the largest softmax output) with
        ``attrs["phases"]``, or a float32 grey volume in [0, 1] for a grey model; voxel
        size from the training image (1 um when it was unknown).

    Examples
    --------
    >>> vol = generate(model, (256, 256, 256), chunks=(96, 128, 128), seed=1)  # doctest: +SKIP
    >>> save(vol, "sample.zarr", "generated")                                   # doctest: +SKIP
    """
    if not isinstance(model, SliceGANModel):
        raise InputError("model", f"a SliceGANModel (from train or load_model), got "
                         f"{type(model).__name__}")
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise InputError("shape", f"three positive integers, got {shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise InputError("shape", f"three positive integers, got {shape!r}")
    if dtype not in ("float32", "float64"):
        raise InputError("dtype", f"'float32' or 'float64', got {dtype!r}")
    if device not in (None, "auto"):
        resolve_device(device)
    codes = None if model.grey else np.array(sorted(model.phases))
    out_dtype = np.float32 if codes is None else (np.uint8 if codes.max() < 256 else np.uint16)
    if isinstance(chunks, str) and chunks == "auto":
        chunks = default_chunks(shape, out_dtype)
    try:
        chunks = da.core.normalize_chunks(chunks, shape)
    except (ValueError, TypeError) as exc:
        raise InputError("chunks", f"'auto' or chunks for shape {shape} ({exc})") from None
    cfg = model.config
    latent_shape = tuple(latent_size(cfg, s) for s in shape)
    token = model.token
    if codes is not None:
        codes = codes.astype(out_dtype)

    resources = None
    try:
        from distributed import get_client

        client = get_client()
        if any(w.get("resources", {}).get("GPU", 0) >= 1
               for w in client.scheduler_info().get("workers", {}).values()):
            resources = {"GPU": 1}
    except (ImportError, ValueError):
        pass

    m = dask.delayed(model, pure=True, name=f"slicegan-model-{token}")
    starts = [np.cumsum((0,) + c[:-1]) for c in chunks]
    blocks = np.empty(tuple(len(c) for c in chunks), dtype=object)
    ctx = dask.annotate(resources=resources) if resources else dask.config.set({})
    with ctx:
        for idx in np.ndindex(blocks.shape):
            lo = tuple(int(starts[d][i]) for d, i in enumerate(idx))
            bshape = tuple(chunks[d][i] for d, i in enumerate(idx))
            hi = tuple(l + b for l, b in zip(lo, bshape))
            task = dask.delayed(_block, pure=True)(m, token, lo, hi, latent_shape, seed,
                                                   device, dtype, codes)
            blocks[idx] = da.from_delayed(task, bshape, dtype=out_dtype)
    data = da.block(blocks.tolist())
    vs = model.spacing_um or 1.0
    coords = {d: np.arange(n) * vs for d, n in zip(("z", "y", "x"), shape)}
    arr = xr.DataArray(data, dims=("z", "y", "x"), coords=coords,
                       attrs={"slicegan_seed": int(seed), "slicegan_model": token})
    for d in arr.dims:
        arr[d].attrs["units"] = "um"
    if codes is not None:
        arr.attrs["phases"] = dict(model.phases)
    return arr
