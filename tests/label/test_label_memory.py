"""Bounded memory: labeling a volume whose labels are larger than the workers' memory
limits together completes on a real LocalCluster, workers staying under their limits.

The default size: labels 4x one worker's limit (2x both workers together), the issue's case;
EMD_LABEL_MEMORY_FACTOR changes the factor."""

import os


import dask.array as da
import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask.label import connected_components


def _field(block_info=None):
    # A pointwise function of the global index: chunk-invariant, cheap, and with
    # components (blobs ~36 voxels apart) crossing chunk borders.
    info = block_info[None]
    (z0, z1), (y0, y1), (x0, x1) = info["array-location"]
    z, y, x = (np.arange(a, b, dtype=np.float32) for a, b in ((z0, z1), (y0, y1), (x0, x1)))
    f = (np.sin(z / 5.0)[:, None, None] + np.sin(y / 7.0)[None, :, None]
         + np.sin(x / 6.0 + 0.3)[None, None, :])
    return f > 2.2  # isolated blobs around the maxima of the sum, ~36 voxels apart


@pytest.mark.slow
def test_labels_larger_than_worker_memory():
    from distributed import Client, LocalCluster
    from distributed.diagnostics import MemorySampler

    limit = 250 * 2**20
    factor = int(os.environ.get("EMD_LABEL_MEMORY_FACTOR", 4))
    shape = (256 * factor, 512, 512)  # labels as uint32: factor x 250 MiB
    chunks = emd.core.default_chunks(shape, np.uint8)
    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=limit,
                      dashboard_address=":0") as cluster, Client(cluster):
        mask = emd.as_volume(da.map_blocks(_field, chunks=chunks, dtype=bool), voxel_size=1.0)
        ms = MemorySampler()
        with ms.sample("label", measure="process", interval=0.1):
            labels = connected_components(mask, connectivity=1)
            assert labels.nbytes >= factor * limit
            top, n_fg, expected_fg = da.compute(labels.data.max(), (labels.data > 0).sum(),
                                                mask.data.sum())
        peak = ms.to_pandas()["label"].max()
    n = labels.attrs["n_labels"]
    assert n > 100 and top == n
    assert n_fg == expected_fg
    assert peak < 2 * limit, f"peak {peak / 2**20:.0f} MiB"
