import numpy as np

from electromicro_dask.core.random import normal_block, uniform_block


def test_blocks_equal_crop_of_whole():
    shape = (13, 17, 11)
    whole = uniform_block(shape, (0, 0, 0), shape, seed=3)
    part = uniform_block((5, 6, 4), (7, 2, 6), shape, seed=3)
    np.testing.assert_array_equal(whole[7:12, 2:8, 6:10], part)
    assert not np.array_equal(whole, uniform_block(shape, (0, 0, 0), shape, seed=4))


def test_distribution_moments():
    shape = (200, 500)
    u = uniform_block(shape, (0, 0), shape, seed=1)
    n = normal_block(shape, (0, 0), shape, seed=1)
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    assert abs(n.mean()) < 0.01 and abs(n.std() - 1) < 0.01
    # Neighbouring values are uncorrelated.
    assert abs(np.corrcoef(n[:, :-1].ravel(), n[:, 1:].ravel())[0, 1]) < 0.01


def test_any_int_seed():
    a = uniform_block((4, 4), (0, 0), (4, 4), seed=-1)
    b = uniform_block((4, 4), (0, 0), (4, 4), seed=2**64 - 1)
    np.testing.assert_array_equal(a, b)
