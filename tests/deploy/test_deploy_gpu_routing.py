"""GPU-annotated tasks land only on GPU workers; with none they complete on CPU workers.

No GPU is needed: a worker is a "GPU worker" to the scheduler because it advertises
``resources={"GPU": 1}`` (as dask-cuda's workers do when started by ``connect()``).
"""

import numpy as np
import pytest

from electromicro_dask import filters
from electromicro_dask.core.arrays import as_volume
from electromicro_dask.core.cluster import add_gpu_pool, connect
from electromicro_dask.core.resources import compute_on_gpu, gpu_resources, gpu_workers
from electromicro_dask.errors import InputError


def _where(block):
    from distributed import get_worker

    w = get_worker()
    return np.full((1,) * block.ndim, w.state.total_resources.get("GPU", 0), dtype="f8")


def _image():
    rng = np.random.default_rng(3)
    return as_volume(rng.random((24, 22, 20)).astype("f4"), voxel_size=0.5, chunks=(7, 9, 11))


def _run(client):
    img = _image()
    med = filters.median(img, size_voxels=3)
    marks = med.data.map_blocks(_where, chunks=(1, 1, 1), dtype="f8")
    ann = gpu_resources(client)
    values, where = compute_on_gpu(med.data, marks, client=client)
    ref = filters.median(img, size_voxels=3).compute(scheduler="threads")
    np.testing.assert_array_equal(values, ref.values)
    return ann, where


def test_gpu_tasks_run_only_on_the_gpu_worker(wait_running):
    client = connect("local", n_workers=1, gpu_workers=1, memory_limit="1GiB",
                     dashboard_address=":0", quiet=True)
    try:
        wait_running(client, 2, timeout=120)
        assert len(gpu_workers(client)) == 1
        ann, where = _run(client)
        assert ann == {"GPU": 1}
        assert where.size == 4 * 3 * 2 and (where == 1).all()     # every block on the GPU worker
        # Scaling the CPU pool leaves the GPU pool alone.
        client.cluster.scale(0)
        client.cluster.scale(1)
        wait_running(client, 2, timeout=120)
        assert len(gpu_workers(client)) == 1
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def test_without_gpu_worker_the_same_work_runs_on_cpu():
    client = connect("local", n_workers=2, memory_limit="1GiB", dashboard_address=":0", quiet=True)
    try:
        assert gpu_workers(client) == [] and gpu_resources(client) is None
        ann, where = _run(client)        # completes (would hang if annotated)
        assert ann is None and (where == 0).all()
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def test_add_gpu_pool_rejects_non_spec_cluster():
    with pytest.raises(InputError, match="cluster"):
        add_gpu_pool(object(), 1)
