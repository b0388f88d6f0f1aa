"""Chunk-invariant random numbers: a pure function of (seed, global voxel index).

Rule 5 of DESIGN.md asks that the same seed gives the same result on any chunking and
any number of workers. A per-block ``np.random.default_rng`` cannot give that, so block
noise is drawn from a counter-based generator: the SplitMix64 finaliser (Steele, Lea and
Flood, OOPSLA 2014) applied to ``seed`` mixed with the global linear index of each voxel.
"""

from __future__ import annotations

import numpy as np

__all__ = ["uniform_block", "normal_block", "block_offsets"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x):
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _linear_index(shape, offset, global_shape):
    idx = np.zeros(shape, dtype=np.uint64)
    stride = np.uint64(1)
    for ax in range(len(shape) - 1, -1, -1):
        r = np.arange(offset[ax], offset[ax] + shape[ax], dtype=np.uint64)
        sl = [None] * len(shape)
        sl[ax] = slice(None)
        with np.errstate(over="ignore"):
            idx += r[tuple(sl)] * stride
            stride *= np.uint64(global_shape[ax])
    return idx


def uniform_block(shape, offset, global_shape, seed, stream=0):
    """Uniform numbers in [0, 1) for the block at ``offset`` of a ``global_shape`` array."""
    # Any Python int is a valid seed: reduced modulo 2**64 (negative seeds included).
    seed = np.uint64(int(seed) % 2**64)
    with np.errstate(over="ignore"):
        key = _splitmix64(seed * np.uint64(1000003) + np.uint64(int(stream) % 2**64))
    with np.errstate(over="ignore"):
        bits = _splitmix64(_linear_index(shape, offset, global_shape) ^ key)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def normal_block(shape, offset, global_shape, seed, stream=0):
    """Standard normal numbers (Box-Muller on two independent uniform streams)."""
    u1 = uniform_block(shape, offset, global_shape, seed, 2 * stream + 1)
    u2 = uniform_block(shape, offset, global_shape, seed, 2 * stream + 2)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def block_offsets(chunks, block_info=None, block_id=None):
    """Global offset of a block, from dask's ``block_info`` or its chunks and ``block_id``."""
    if block_info is not None:
        return tuple(lo for lo, _ in block_info[None]["array-location"])
    return tuple(int(sum(c[:i])) for c, i in zip(chunks, block_id))
