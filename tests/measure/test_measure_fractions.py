import numpy as np
import pandas as pd
import pytest

import electromicro_dask as emd
from electromicro_dask import measure
from electromicro_dask.errors import InputError


def _seg(arr, vs=1.0, chunks="auto", phases=None):
    v = emd.as_volume(arr, voxel_size=vs, chunks=chunks)
    v.attrs["phases"] = phases or {0: "pore", 1: "cbd", 2: "am"}
    return v


@pytest.mark.parametrize("chunks", ["auto", (5, 7, 3), (1, 30, 30)])
def test_fractions_and_profile_against_numpy(chunks):
    rng = np.random.default_rng(2)
    z = np.arange(20)[:, None, None]
    arr = (rng.random((20, 30, 25)) < z / 20).astype(np.uint8) * 2  # am grows with z
    arr[rng.random(arr.shape) < 0.1] = 1
    seg = _seg(arr, vs=(2.0, 1.0, 1.0), chunks=chunks)
    f = measure.volume_fractions(seg)
    for code, name in seg.attrs["phases"].items():
        assert f[name] == pytest.approx((arr == code).mean())
    prof = measure.profile(seg, axis="z")
    assert list(prof.columns) == ["pore", "cbd", "am"]
    assert prof.index.name == "z_um"
    np.testing.assert_allclose(prof.index, np.arange(20) * 2.0)
    for code, name in seg.attrs["phases"].items():
        np.testing.assert_allclose(prof[name], (arr == code).mean(axis=(1, 2)))
    py = measure.profile(seg, axis="x")
    np.testing.assert_allclose(py["am"], (arr == 2).mean(axis=(0, 1)))


def test_profile_bad_axis_and_unlabelled():
    seg = _seg(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(InputError, match="axis"):
        measure.profile(seg, axis="q")
    bare = emd.as_volume(np.zeros((4, 4), np.uint8), voxel_size=1.0)
    with pytest.raises(InputError, match="phases"):
        measure.volume_fractions(bare)


def test_compare_against_manual_counts():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, (12, 13, 14)).astype(np.uint8)
    b = a.copy()
    flip = rng.random(a.shape) < 0.2
    b[flip] = rng.integers(0, 3, flip.sum())
    sa, sb = _seg(a, chunks=(5, 6, 7)), _seg(b, chunks=(12, 13, 14))
    r = measure.compare(sa, sb)
    assert r["fraction_equal"] == pytest.approx((a == b).mean())
    for code, name in sa.attrs["phases"].items():
        inter = ((a == code) & (b == code)).sum()
        union = ((a == code) | (b == code)).sum()
        assert r["jaccard"][name] == pytest.approx(inter / union)
    # Phases are matched by name, not by code.
    b_swapped = np.choose(b, [2, 1, 0]).astype(np.uint8)
    sb2 = _seg(b_swapped, phases={0: "am", 1: "cbd", 2: "pore"})
    assert measure.compare(sa, sb2)["fraction_equal"] == pytest.approx((a == b).mean())
    many = measure.compare_many({"a": sa, "b": sb, "b2": sb2})
    assert isinstance(many, pd.DataFrame) and len(many) == 6


def test_compare_mismatched_grid():
    a = _seg(np.zeros((4, 4, 4), np.uint8))
    b = _seg(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(InputError, match="seg_b"):
        measure.compare(a, b)


def test_codes_outside_table_never_count_as_a_phase():
    a = _seg(np.array([[0, 1], [1, 1]], np.uint8), phases={0: "pore", 1: "am"})
    b = _seg(np.array([[0, 1], [2, 1]], np.uint8), phases={0: "pore", 1: "am"})  # 2: unknown
    cm = measure.confusion(a, b)
    assert cm.loc["am", "am"] == 2 and cm.loc["am", "pore"] == 0 and cm.values.sum() == 3
    wide = _seg(np.array([[0, 300]], np.uint16), phases={0: "pore", 44: "cbd"})
    assert measure.volume_fractions(wide)["cbd"] == 0.0


def test_compare_many_one_pass_equals_numpy_pairwise():
    # the joint-key pass against plain numpy, with differently chunked inputs
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, (20, 18, 16)).astype(np.uint8)
    arrays = {f"m{k}": np.where(rng.random(truth.shape) < 0.1 * k,
                                rng.integers(0, 3, truth.shape), truth).astype(np.uint8)
              for k in range(5)}
    segs = {k: _seg(v).chunk({"z": 7 + i, "y": 5, "x": 16}) for i, (k, v) in
            enumerate(arrays.items())}
    many = measure.compare_many(segs).set_index(["a", "b"])
    assert len(many) == 15
    for ka, a in arrays.items():
        for kb, b in arrays.items():
            if (ka, kb) not in many.index:
                continue
            row = many.loc[(ka, kb)]
            assert row["fraction_equal"] == pytest.approx((a == b).mean())
            for code, name in {0: "pore", 1: "cbd", 2: "am"}.items():
                inter = ((a == code) & (b == code)).sum()
                union = ((a == code) | (b == code)).sum()
                assert row[f"jaccard_{name}"] == pytest.approx(inter / union)
