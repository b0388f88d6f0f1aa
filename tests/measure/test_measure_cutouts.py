"""Cut-outs: non-overlapping, full thickness, and descriptors as mean and spread."""

import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask import measure
from electromicro_dask.errors import InputError


def _seg():
    # fraction of phase 1 set per lateral third: 0.1, 0.2, 0.3 along x
    rng = np.random.default_rng(0)
    u = rng.random((12, 30, 90))
    share = np.repeat([0.1, 0.2, 0.3], 30)[None, None, :]
    seg = emd.as_volume((u < share).astype("uint8"), voxel_size=(1.0, 0.5, 0.5),
                        chunks=(12, 15, 45))
    seg.attrs["phases"] = {0: "pore", 1: "am"}
    return seg


def test_cutouts_are_disjoint_full_thickness_squares():
    seg = _seg()
    parts = measure.cutouts(seg, n=3, width_um=12.0)
    assert [p.shape for p in parts] == [(12, 24, 24)] * 3
    xs = [set(p.x.values) for p in parts]
    assert not (xs[0] & xs[1]) and not (xs[1] & xs[2])
    assert all(p.sizes["z"] == seg.sizes["z"] for p in parts)
    # default width: the largest that fits three times (45 um / 3 = 15 um, 30 voxels)
    assert measure.cutouts(seg)[0].shape == (12, 30, 30)


def test_over_cutouts_mean_and_spread():
    seg = _seg()
    parts = measure.cutouts(seg, n=3)  # one per lateral third: 0.1, 0.2, 0.3 of am
    table = measure.over_cutouts(measure.volume_fractions, parts)
    got = table.loc["am", ["cutout_0", "cutout_1", "cutout_2"]].to_numpy()
    want = [float((p.values == 1).mean()) for p in parts]
    np.testing.assert_allclose(got, want)
    assert table.loc["am", "mean"] == pytest.approx(np.mean(want))
    assert table.loc["am", "std"] == pytest.approx(np.std(want, ddof=1))
    assert 0.05 < table.loc["am", "std"] < 0.15  # the thirds differ by 0.1


def test_bad_input():
    seg = _seg()
    with pytest.raises(InputError, match="width_um"):
        measure.cutouts(seg, n=3, width_um=16.0)  # 3 x 16 um > 45 um
    with pytest.raises(InputError, match="through"):
        measure.cutouts(seg, through="t")
    with pytest.raises(InputError, match="n"):
        measure.cutouts(seg, n=0)
