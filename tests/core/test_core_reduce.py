"""Block-wise reductions against numpy on the same values, for odd chunkings."""

import dask.array as da
import numpy as np
import pytest

from electromicro_dask.core.reduce import blockwise_bincount, blockwise_histogram2d


@pytest.mark.parametrize("chunks", [(5, 7, 4), (17, 3, 11), (17, 13, 11)])
def test_bincount_equals_numpy_and_keeps_chunks(chunks):
    x = np.random.default_rng(0).integers(0, 9, size=(17, 13, 11))
    dx = da.from_array(x, chunks=chunks)
    counts = blockwise_bincount(dx, 12)
    np.testing.assert_array_equal(counts.compute(), np.bincount(x.ravel(), minlength=12))
    # No rechunk of the input: every task in the graph reads one original block.
    assert not any("rechunk" in str(k) for k in counts.__dask_graph__().keys())


@pytest.mark.parametrize("chunks", [(6, 5, 4), (20, 9, 3)])
def test_histogram2d_equals_numpy(chunks):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 9, 12))
    b = 0.5 * a + rng.normal(size=a.shape)
    rng2 = [[-2.0, 2.5], [-3.0, 3.0]]
    a_c, b_c = np.clip(a, *rng2[0]), np.clip(b, *rng2[1])
    ref, ea, eb = np.histogram2d(a_c.ravel(), b_c.ravel(), bins=16, range=rng2)
    h, ha, hb = blockwise_histogram2d(da.from_array(a_c, chunks=chunks),
                                      da.from_array(b_c, chunks=chunks), 16, rng2)
    np.testing.assert_array_equal(h.compute(), ref)
    np.testing.assert_allclose(ha, ea)
    np.testing.assert_allclose(hb, eb)
