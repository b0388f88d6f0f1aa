"""Correlative synthetic data (synth.correlative): composition against the fine truth."""

import numpy as np
import pytest

from electromicro_dask import synth
from electromicro_dask.core.errors import InputError
from electromicro_dask.synth.correlative import correlative


@pytest.fixture(scope="module")
def pair():
    a = correlative((12, 10, 14), factor=3, seed=3, chunks=(5, 7, 14)).compute()
    b = correlative((12, 10, 14), factor=3, seed=3, chunks=(12, 10, 14)).compute()
    return a, b


def test_composition_is_block_mean_of_fine_truth(pair):
    a, _ = pair
    fine = synth.electrode((36, 30, 42), 0.5 / 3, seed=3,
                           particle_radius_um=(2.0, 0.5))["phases"].values
    for code, name in {0: "pore", 1: "cbd", 2: "am"}.items():
        expect = (fine == code).reshape(12, 3, 10, 3, 14, 3).mean(axis=(1, 3, 5))
        np.testing.assert_allclose(a["composition"].sel(phase=name).values, expect, atol=1e-6)
    np.testing.assert_allclose(a["composition"].sum("phase").values, 1.0, atol=1e-6)
    assert np.array_equal(a["truth"].values, a["composition"].values.argmax(0))


def test_chunk_invariant(pair):
    a, b = pair
    assert np.array_equal(a["grey"].values, b["grey"].values)
    assert np.array_equal(a["composition"].values, b["composition"].values)


def test_grey_orders_phases(pair):
    a, _ = pair
    g, t = a["grey"].values, a["truth"].values
    assert np.median(g[t == 0]) < np.median(g[t == 1]) < np.median(g[t == 2])


def test_bad_factor():
    with pytest.raises(InputError, match="factor"):
        correlative((8, 8, 8), factor=0)
