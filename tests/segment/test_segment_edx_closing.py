"""EDX-Closing of seed 002 section 3.4."""

import numpy as np
import pytest
from scipy import ndimage

from electromicro_dask import as_volume, measure, segment
from electromicro_dask.core.errors import InputError
from electromicro_dask.segment.edx_closing import _levels_block


@pytest.fixture(scope="module")
def am_seg():
    # Spheres crossing chunk borders; AM = 0.35 of the volume roughly.
    rng = np.random.default_rng(4)
    z, y, x = np.mgrid[:30, :26, :22]
    am = np.zeros(z.shape, bool)
    for c in rng.uniform([0, 0, 0], [30, 26, 22], size=(25, 3)):
        am |= (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= rng.uniform(2, 5) ** 2
    seg = as_volume(np.where(am, 2, 0).astype(np.uint8), voxel_size=0.5)
    seg.attrs["phases"] = {0: "pore", 1: "cbd", 2: "am"}
    return seg, am


@pytest.mark.parametrize("r", [1.0, 2.0, 3.5])
def test_closing_equals_scipy(am_seg, r):
    _, am = am_seg
    n = int(np.ceil(r))
    g = np.mgrid[-n:n + 1, -n:n + 1, -n:n + 1]
    ball = (g ** 2).sum(0) <= r * r
    # outside the volume: "not AM" for the dilation, "dilated" for the erosion
    ref = ndimage.binary_erosion(ndimage.binary_dilation(am, ball), ball, border_value=1)
    lev = _levels_block(am, np.array([r]))
    assert np.array_equal(lev <= 1, ref)


def test_fraction_gradient_chunk_invariance(am_seg):
    seg, am = am_seg
    fam = float(am.mean())
    f = {"am": fam, "cbd": 0.15, "pore": 0.85 - fam}
    profile = np.linspace(1.0, 3.0, 30)  # more CBD towards the separator
    a = segment.edx_closing(seg.chunk({"z": 11, "y": 13, "x": 22}), f, profile,
                            max_radius_voxels=5)
    b = segment.edx_closing(seg.chunk({"z": 30, "y": 26, "x": 22}), f, profile,
                            max_radius_voxels=5)
    assert np.array_equal(a.values, b.values)
    vf = measure.volume_fractions(a)
    for p in f:
        assert abs(vf[p] - f[p]) < 0.005
    assert np.array_equal(a.values == 2, am)
    prof = measure.profile(a, axis="z")["cbd"].values
    assert np.polyfit(np.arange(30), prof, 1)[0] > 0
    assert a.attrs["radius_voxels"][-1] >= a.attrs["radius_voxels"][0]


def test_bad_profile(am_seg):
    seg, am = am_seg
    f = {"am": float(am.mean()), "cbd": 0.1, "pore": 0.9 - float(am.mean())}
    with pytest.raises(InputError, match="cbd_profile"):
        segment.edx_closing(seg, f, np.ones(29))
    with pytest.raises(InputError, match="fractions"):
        segment.edx_closing(seg, {"am": 0.5, "cbd": 0.1, "pore": 0.1}, np.ones(30))
