"""Rule 3 of DESIGN.md at the block level: the per-block work of k-means, MLP inference
and the closing needs memory bounded by a small multiple of the block (numpy
allocations traced with tracemalloc; feature matrices are built per z-slab)."""

import tracemalloc

import numpy as np

from electromicro_dask.segment.edx_closing import _levels_block
from electromicro_dask.segment.kmeans import _assign_block, _logratio_block
from electromicro_dask.segment.mlp import MLPModel, _predict_block


def _peak(fn, *args, **kw):
    tracemalloc.start()
    try:
        fn(*args, **kw)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_block_memory_bounded():
    rng = np.random.default_rng(0)
    mu, w, xm = rng.random((3, 27)), np.ones(3), np.ones(27)
    peaks = []
    for n in (48, 80):
        p = rng.random((n + 2,) * 3).astype(np.float32)
        a = _peak(_assign_block, p, mu, w, xm, np.array([2, 1, 0], np.uint8))
        b = _peak(_logratio_block, p, mu, w, xm)
        peaks.append((p.nbytes, a, b))
        # 27 float64 features a voxel would be 54x the float32 block; slabs keep it
        # to the block's own outputs plus a constant.
        assert a < 2 * p.nbytes + 24 * 2**20
        assert b < 3 * p.nbytes + 24 * 2**20
        am = p > 0.7
        c = _peak(_levels_block, am, np.arange(0.5, 4.01, 0.5))
        # scipy's exact EDT holds float64 distances and int32 feature indices: about 60
        # bytes a voxel whatever the number of radii, i.e. ~15x a float32 grey block.
        assert c < 64 * am.nbytes + 2**20
    state = {}
    sizes = [(75, 125)] + [(75, 75)] * 4 + [(3, 75)]
    for i, (o, k) in enumerate(sizes):
        state[f"{2 * i}.weight"] = rng.normal(size=(o, k)).astype(np.float32) * 0.1
        state[f"{2 * i}.bias"] = np.zeros(o, np.float32)
    model = MLPModel(5, 5, 75, state, 0.0, 1.0)
    # warm up: torch's first use (imports, network construction) is not per block
    _predict_block(rng.random((6,) * 3).astype(np.float32), model, 5, "cpu", 4096)
    p = rng.random((44,) * 3).astype(np.float32)
    d = _peak(_predict_block, p, model, 5, "cpu", 4096)
    # 125 values a voxel would be 125x the block; per slab it is a constant.
    assert d < 4 * p.nbytes + 16 * 2**20
