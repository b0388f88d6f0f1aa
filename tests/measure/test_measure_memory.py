"""Bounded memory: a descriptor on a lazily generated volume larger than the workers'
memory limit runs to the end (DESIGN.md rule 3)."""
import dask.array as da
import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask.measure.surface import surface_area


def _lattice_of_balls(block, block_info=None):
    # balls of radius 6 on a 16-voxel lattice, a function of the global voxel index
    loc = block_info[None]["array-location"]
    z, y, x = (np.arange(a, b).reshape([-1 if i == j else 1 for j in range(3)]) % 16 - 8
               for i, (a, b) in enumerate(loc))
    return ((z * z + y * y + x * x) < 36).astype(np.uint8)


@pytest.mark.slow
def test_surface_area_on_volume_larger_than_worker_memory():
    distributed = pytest.importorskip("distributed")
    from distributed.diagnostics import MemorySampler
    shape = (640, 1024, 1024)   # 640 MiB of uint8 > 2 workers x 300 MiB
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="300MiB",
                                  dashboard_address=":0", processes=True) as cluster, \
            distributed.Client(cluster):
        arr = da.zeros(shape, np.uint8, chunks=(128, 128, 128)).map_blocks(
            _lattice_of_balls, dtype=np.uint8)
        seg = emd.as_volume(arr, voxel_size=1.0)
        seg.attrs["phases"] = {0: "pore", 1: "am"}
        assert seg.nbytes > 2 * 300 * 2**20
        ms = MemorySampler()
        with ms.sample("surface", measure="process", interval=0.2):
            s = surface_area(seg)
        peak = ms.to_pandas()["surface"].max()
    # both workers together stayed below their limits (process memory, all workers)
    assert peak < 2 * 300 * 2**20
    # reference: the exact transition counts of the infinite periodic lattice (one
    # 16^3 period with wrap-around), weighted as the estimator weights its directions
    from electromicro_dask.measure.surface import _crofton_weights
    cell = _lattice_of_balls(np.zeros((16, 16, 16), np.uint8),
                             {None: {"array-location": [(0, 16)] * 3}})
    dirs, w, length = _crofton_weights((1.0, 1.0, 1.0))
    p_l = [np.count_nonzero(cell != np.roll(cell, [-c for c in d], axis=(0, 1, 2)))
           / (cell.size * li) for d, li in zip(dirs, length)]
    ref = 2 * float(np.dot(w, p_l))
    assert s["am"] == pytest.approx(ref, rel=0.01)
    assert s["pore"] == pytest.approx(ref, rel=0.01)
