"""Bounded memory: generate -> filter -> threshold -> fractions on a volume larger than
the workers' total memory limit, on a real LocalCluster with tight limits."""

import dask.array as da
import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask import filters, measure, segment
from electromicro_dask.core.random import block_offsets, uniform_block


def _field(block_info=None):
    info = block_info[None]
    return uniform_block(info["chunk-shape"], block_offsets(None, block_info), info["shape"],
                         seed=9).astype(np.float32)


@pytest.mark.slow
def test_pipeline_larger_than_worker_memory(tmp_path):
    from distributed import Client, LocalCluster
    from distributed.diagnostics import MemorySampler

    limit = 280 * 2**20
    shape = (300, 512, 512)  # float32: 300 MiB, more than the worker's 280 MiB
    chunks = emd.core.default_chunks(shape, np.float32)
    with LocalCluster(n_workers=1, threads_per_worker=1, memory_limit=limit,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        raw = emd.as_volume(da.map_blocks(_field, chunks=chunks, dtype=np.float32), voxel_size=0.5)
        assert raw.nbytes > limit
        ms = MemorySampler()
        store = tmp_path / "big.zarr"
        with ms.sample("pipeline", measure="process", interval=0.1):
            emd.save(raw, store, "raw")
            filt = filters.median(emd.open_store(store)["raw"], size_voxels=3)
            emd.save(filt, store, "filtered")
            seg = segment.threshold(emd.open_store(store)["filtered"],
                                    fractions={"pore": 0.3, "cbd": 0.2, "am": 0.5})
            emd.save(seg, store, "phases")
            f = measure.volume_fractions(emd.open_store(store)["phases"])
        peak_total = ms.to_pandas()["pipeline"].max()
        n_workers = len(client.scheduler_info()["workers"])
    for k, v in {"pore": 0.3, "cbd": 0.2, "am": 0.5}.items():
        assert abs(f[k] - v) < 0.005
    assert n_workers == 1  # never restarted for memory
    assert peak_total < limit, f"peak {peak_total / 2**20:.0f} MiB"
