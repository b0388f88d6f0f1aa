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


def _edx_map(g, seed=0):
    """A fluorine map of a 1.5 mm wide cross-section: dark AM grains (a thresholded random
    field, so the AM share does not drift with depth), CBD specks whose signal grows by
    ``g`` (share per um) through the thickness, and detector noise. The map is this wide
    because the row means scatter: the fitted gradient varies by about 2 % (1 sigma)
    between random maps of this size."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    nz, nx, h = 480, 12000, 0.125
    z = np.arange(nz) * h
    am = ndimage.gaussian_filter(rng.random((nz, nx)), 1.0) > 0.5
    cbd = (~am) & (rng.random((nz, nx)) < 0.4)
    sig = cbd * (1.0 + g * z)[:, None] + rng.normal(0, 0.2, (nz, nx))
    return xr.DataArray(sig, dims=("z", "x"), coords={"z": z, "x": np.arange(nx) * h})


@pytest.mark.parametrize("g", [0.006, 0.012])
def test_edx_profile_recovers_known_gradient(g):
    prof = segment.edx_profile(_edx_map(g), axis="z")
    # the expected mean signal is c (1 + g z): slope / intercept = g
    assert prof.slope_per_um / prof.intercept == pytest.approx(g, rel=0.05)
    z = np.linspace(0, 59.75, 40)
    np.testing.assert_allclose(prof.sample(z), prof.intercept + prof.slope_per_um * z)
    assert prof.profile.index.name == "z_um" and len(prof.profile) == 480


def test_edx_profile_feeds_edx_closing():
    rng = np.random.default_rng(3)
    am = as_volume((ndimage.gaussian_filter(rng.random((24, 32, 32)), 2) > 0.52)
                   .astype("uint8") * 2, voxel_size=0.5)
    am.attrs["phases"] = {0: "pore", 1: "cbd", 2: "am"}
    f_am = float((am.values == 2).mean())
    targets = {"am": f_am, "cbd": 0.1, "pore": 0.9 - f_am}
    prof = segment.edx_profile(_edx_map(0.01), axis="z")
    seg = segment.edx_closing(am, targets, cbd_profile=prof.sample(am.z), max_radius_voxels=6)
    assert abs(float((seg.values == 1).mean()) - 0.1) < 0.005


def test_edx_profile_bad_input():
    m = _edx_map(0.01)
    with pytest.raises(InputError, match="edx_map"):
        segment.edx_profile(m.values)
    with pytest.raises(InputError, match="axis"):
        segment.edx_profile(m, axis="y")
    with pytest.raises(InputError, match="mask"):
        segment.edx_profile(m, mask=np.ones((3, 3), bool))
