"""Two-point correlation against PoreSpy, brute force, and across chunkings."""
import numpy as np
import pytest
from scipy import ndimage as ndi

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.measure.correlation import two_point_correlation


def _seg(im, phases, voxel=1.0, chunks="auto"):
    seg = emd.as_volume(np.asarray(im, "uint8"), voxel_size=voxel, chunks=chunks)
    seg.attrs["phases"] = phases
    return seg


def _structure(shape=(40, 44, 36), seed=0):
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.random(shape), 2.0)
    return np.digitize(f, np.quantile(f, [0.4, 0.65])).astype("uint8")


def test_matches_porespy_two_point_correlation():
    # PoreSpy 0.26 uses the same non-periodic, pair-normalised estimator and averages the
    # per-lag values over bins [b_i, b_i+1); with the same bins the numbers agree to
    # floating point.
    ps = pytest.importorskip("porespy")
    im = _structure() == 0
    seg = _seg(im, {0: "am", 1: "pore"}, chunks=(13, 17, 11))
    ours = two_point_correlation(seg, "pore", r_max_um=10)
    theirs = ps.metrics.two_point_correlation(im, bins=np.arange(0, 11, 1))
    np.testing.assert_allclose(ours.radial.s2.to_numpy(), theirs.probability_scaled,
                               rtol=1e-10)
    assert ours.eps_a == pytest.approx(im.mean())


def test_cross_correlation_brute_force_and_anisotropic():
    im = _structure((20, 18, 16), seed=1)
    spacing = (0.5, 0.25, 0.25)
    seg = _seg(im, {0: "pore", 1: "cbd", 2: "am"}, voxel=spacing, chunks=(7, 5, 9))
    res = two_point_correlation(seg, "am", "pore", r_max_um=1.0)
    a, b = im == 2, im == 0
    eps = a.mean() * b.mean()
    for (dz, dy, dx) in [(0, 0, 0), (2, 0, 0), (-1, 3, -4), (0, -4, 2), (1, 1, 1)]:
        sa = a[max(0, -dz):a.shape[0] - max(0, dz), max(0, -dy):a.shape[1] - max(0, dy),
               max(0, -dx):a.shape[2] - max(0, dx)]
        sb = b[max(0, dz):b.shape[0] - max(0, -dz), max(0, dy):b.shape[1] - max(0, -dy),
               max(0, dx):b.shape[2] - max(0, -dx)]
        want = (sa & sb).mean()
        got = res.lags.sel(dz=dz * 0.5, dy=dy * 0.25, dx=dx * 0.25).item()
        assert got == pytest.approx(want, rel=1e-12)
    c0 = res.axes[(res.axes.axis == "z") & (res.axes.r_um == 0)].c.item()
    assert c0 == pytest.approx(-eps)  # A and B are disjoint: S2(0) = 0


def test_sub_blocks_of_a_large_chunk_brute_force(monkeypatch):
    # A budget of a few kB forces every chunk through many FFT sub-blocks (the memory
    # bound of one task); the counts must still be the exact pair counts.
    from electromicro_dask.measure import correlation
    monkeypatch.setattr(correlation, "_FFT_BLOCK_BYTES", 40 * 12 ** 3)
    im = _structure((26, 23, 21), seed=3)
    seg = _seg(im, {0: "pore", 1: "cbd", 2: "am"}, chunks=(26, 12, 21))
    res = two_point_correlation(seg, "pore", "am", r_max_um=2.0)
    a, b = im == 0, im == 2
    for (dz, dy, dx) in [(0, 0, 0), (2, -1, 0), (-2, 2, -2), (1, 0, 2)]:
        sa = a[max(0, -dz):a.shape[0] - max(0, dz), max(0, -dy):a.shape[1] - max(0, dy),
               max(0, -dx):a.shape[2] - max(0, dx)]
        sb = b[max(0, dz):b.shape[0] - max(0, -dz), max(0, dy):b.shape[1] - max(0, -dy),
               max(0, dx):b.shape[2] - max(0, -dx)]
        assert res.lags.sel(dz=dz, dy=dy, dx=dx).item() == pytest.approx((sa & sb).mean(),
                                                                        rel=1e-12)


def test_chunk_invariance_odd_chunks():
    im = _structure((33, 27, 25), seed=2)
    phases = {0: "pore", 1: "cbd", 2: "am"}
    whole = two_point_correlation(_seg(im, phases, chunks=im.shape), "cbd", "am",
                                  r_max_um=7)
    for chunks in [(7, 11, 13), (33, 4, 25), (5, 27, 6)]:
        part = two_point_correlation(_seg(im, phases, chunks=chunks), "cbd", "am",
                                     r_max_um=7)
        np.testing.assert_array_equal(part.lags.values, whole.lags.values)
        np.testing.assert_array_equal(part.radial.to_numpy(), whole.radial.to_numpy())


def test_2d_and_centered_limit():
    rng = np.random.default_rng(5)
    im = rng.random((200, 200)) < 0.3     # white noise: C(r) = 0 for r >= 1
    seg = _seg(im, {0: "pore", 1: "am"})
    res = two_point_correlation(seg, "am", r_max_um=5)
    assert res.radial.c.iloc[0] == pytest.approx(0.3 * 0.7, abs=0.01)
    assert np.all(np.abs(res.radial.c.iloc[1:]) < 0.005)


def test_errors():
    seg = _seg(np.zeros((6, 6, 6)), {0: "pore", 1: "am"})
    with pytest.raises(InputError, match="phase_a"):
        two_point_correlation(seg, "cbd")
    with pytest.raises(InputError, match="r_max_um"):
        two_point_correlation(seg, "pore", r_max_um=-1)
    with pytest.raises(InputError, match="bin_width_um"):
        two_point_correlation(seg, "pore", bin_width_um="a")
