"""The nine probability-to-phase conversions of seed 002 section 3.3."""

import numpy as np
import pytest
import xarray as xr

from electromicro_dask import as_volume, segment
from electromicro_dask.core.errors import InputError
from electromicro_dask.core.random import uniform_block
from electromicro_dask.segment.conversions import _JITTER

F = {"pore": 0.3, "cbd": 0.2, "am": 0.5}
NAMES = ["pore", "cbd", "am"]


@pytest.fixture(scope="module")
def prob():
    rng = np.random.default_rng(1)
    p = rng.dirichlet([0.6, 0.6, 0.6], size=(14, 15, 16)).transpose(3, 0, 1, 2)
    p = p.astype(np.float32)
    p[2, :3] = 1.0  # saturated probabilities: ties the ranking must break
    p[:2, :3] = 0.0
    v = as_volume(np.zeros((14, 15, 16)), voxel_size=0.5)
    return xr.DataArray(p, dims=("phase",) + v.dims,
                        coords=dict({d: v.coords[d] for d in v.dims}, phase=NAMES))


def _reference(p, method, seed=0):
    """Brute force: a global argsort of the same ranking keys."""
    order, cond = segment.CONVERSIONS[method]
    shape = p.shape[1:]
    n = p[0].size
    j1 = uniform_block(shape, (0, 0, 0), shape, seed, stream=11).ravel()
    j2 = uniform_block(shape, (0, 0, 0), shape, seed, stream=12).ravel()
    q = {name: p[i].astype(np.float64).ravel() for i, name in enumerate(NAMES)}
    lab = np.full(n, order[2], dtype=object)
    k1 = q[order[0]] + _JITTER * j1
    n1 = int(round(F[order[0]] * n))
    first = np.argsort(-k1, kind="stable")[:n1]
    taken = np.zeros(n, bool)
    taken[first] = True
    k2 = q[order[1]]
    if cond:
        s = q[order[1]] + q[order[2]]
        k2 = np.where(s > 0, k2 / np.where(s > 0, s, 1), 0.5)
    k2 = np.where(taken, -1.0, k2 + _JITTER * j2)
    n2 = int(round(F[order[1]] * n))
    second = np.argsort(-k2, kind="stable")[:n2]
    lab[second] = order[1]
    lab[first] = order[0]
    codes = {"pore": 0, "cbd": 1, "am": 2}
    return np.array([codes[x] for x in lab], dtype=np.uint8).reshape(shape)


@pytest.mark.parametrize("method", list(segment.CONVERSIONS))
def test_global_ranking_matches_bruteforce(prob, method):
    seg = segment.convert(prob.chunk({"z": 5, "y": 6, "x": 16}), F, method=method)
    got = seg.values
    ref = _reference(prob.values, method)
    assert np.array_equal(got, ref)
    n = got.size
    for code, name in enumerate(NAMES):
        assert abs((got == code).sum() / n - F[name]) <= 1.0 / n
    one = segment.convert(prob.chunk({"z": -1, "y": -1, "x": -1}), F, method=method)
    assert np.array_equal(one.values, got)


def test_nine_methods_named_as_in_paper():
    assert sorted(segment.CONVERSIONS) == sorted(
        ["NN-AM-CBD-P", "NN-AM-P-CBD", "NN-CBD-AM-P", "NN-CBD-P-AM", "NN-P-AM-CBD",
         "NN-P-CBD-AM", "NN-AM-Cond", "NN-CBD-Cond", "NN-P-Cond"])


def test_bad_input(prob):
    with pytest.raises(InputError, match="fractions"):
        segment.convert(prob, {"pore": 0.5, "cbd": 0.2, "am": 0.5})
    with pytest.raises(InputError, match="method"):
        segment.convert(prob, F, method="NN-X")
