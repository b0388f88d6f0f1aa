import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask import measure, segment, synth
from electromicro_dask.errors import InputError


@pytest.fixture(scope="module")
def sample():
    # Seed and parameters not used anywhere in tuning the defaults.
    ds = synth.electrode((56, 48, 52), voxel_size=0.4, fractions={"am": 0.47, "cbd": 0.21, "pore": 0.32},
                         particle_radius_um=(2.2, 0.5), seed=97)
    img = synth.tomogram(ds["phases"], blur_um=0.4, noise=0.07, seed=98)
    return ds, img


@pytest.mark.parametrize("target", [{"pore": 0.32, "cbd": 0.21, "am": 0.47},
                                    {"pore": 0.25, "cbd": 0.30, "am": 0.45}])
def test_matches_target_fractions(sample, target):
    _, img = sample
    seg = segment.threshold(img, fractions=target)
    f = measure.volume_fractions(seg)
    for k, v in target.items():
        assert abs(f[k] - v) < 0.005
    assert seg.attrs["phases"] == {0: "pore", 1: "cbd", 2: "am"}
    assert seg.dtype == np.uint8


def test_integer_image_with_ties_still_matches(sample):
    _, img = sample
    u8 = emd.as_volume((np.clip(img.values, 0, 1) * 40).astype(np.uint8), voxel_size=0.4,
                       chunks=(17, 48, 13))
    target = {"pore": 0.3, "cbd": 0.2, "am": 0.5}
    seg = segment.threshold(u8, fractions=target)
    f = measure.volume_fractions(seg)
    for k, v in target.items():
        assert abs(f[k] - v) < 0.005
    # The tie-breaking is a function of the voxel, not of the chunking.
    seg2 = segment.threshold(u8.chunk((56, 48, 52)), fractions=target)
    np.testing.assert_array_equal(seg.values, seg2.values)


def test_agrees_with_truth_and_chunk_invariant(sample):
    ds, img = sample
    target = {"pore": 0.32, "cbd": 0.21, "am": 0.47}
    seg = segment.threshold(emd.filters.median(img), fractions=target)
    acc = measure.compare(seg, ds["phases"])
    assert acc["fraction_equal"] > 0.85
    assert acc["jaccard"]["am"] > 0.85
    seg2 = segment.threshold(emd.filters.median(img.chunk({"z": 9, "y": 13, "x": 17})), fractions=target)
    np.testing.assert_array_equal(seg.values, seg2.values)


def test_multi_otsu_without_fractions():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, (30, 30, 30))
    img = emd.as_volume(np.array([0.1, 0.5, 0.9])[truth] + 0.05 * rng.standard_normal(truth.shape),
                        voxel_size=1.0)
    seg = segment.threshold(img)
    assert seg.attrs["method"] == "multi-otsu"
    assert (seg.values == truth).mean() > 0.99
    lo, hi = seg.attrs["thresholds"]
    assert 0.2 < lo < 0.4 and 0.6 < hi < 0.8


def test_bad_fractions(sample):
    _, img = sample
    with pytest.raises(InputError, match="fractions.*sum"):
        segment.threshold(img, fractions={"pore": 0.3, "am": 0.6})
    with pytest.raises(InputError, match="fractions"):
        segment.threshold(img, fractions={"pore": 1.0})
    nan = img.copy(data=img.data.map_blocks(lambda b: np.where(b > 0.95, np.nan, b)))
    with pytest.raises(InputError, match="NaN"):
        segment.threshold(nan, fractions={"pore": 0.5, "am": 0.5})
    inf = img.copy(data=img.data.map_blocks(lambda b: np.where(b > 0.95, np.inf, b)))
    with pytest.raises(InputError, match="inf"):
        segment.threshold(inf, fractions={"pore": 0.5, "am": 0.5})
