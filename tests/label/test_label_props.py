"""regionprops against skimage.measure.regionprops / scipy.ndimage on the whole array,
chunk invariance, and analytical surface areas and coverages."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.measure as skm

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.label import regionprops


def _labels(shape, seed):
    rng = np.random.default_rng(seed)
    ref, n = ndi.label(ndi.gaussian_filter(rng.random(shape), 1.2) > 0.52)
    return ref.astype(np.uint32), n


@pytest.mark.parametrize("shape,chunks,spacing", [
    ((26, 23, 21), (7, 10, 6), (0.5, 0.3, 0.2)),
    ((57, 49), (10, 13), (0.4, 0.25)),
])
def test_matches_skimage_on_whole_array(shape, chunks, spacing):
    ref, n = _labels(shape, seed=5)
    lab = emd.as_volume(ref, voxel_size=spacing, chunks=chunks)
    df = regionprops(lab)
    sk = skm.regionprops(ref, spacing=spacing)
    assert list(df["label"]) == [r.label for r in sk] == list(range(1, n + 1))
    size = "volume_um3" if len(shape) == 3 else "area_um2"
    np.testing.assert_allclose(df[size], [r.area for r in sk], rtol=1e-12)
    np.testing.assert_allclose(df["equivalent_diameter_um"],
                               [r.equivalent_diameter_area for r in sk], rtol=1e-12)
    dims = lab.dims
    cen = df[[f"centroid_{d}_um" for d in dims]].to_numpy()
    np.testing.assert_allclose(cen, [r.centroid for r in sk], rtol=1e-10, atol=1e-10)
    box = df[[f"bbox_min_{d}" for d in dims] + [f"bbox_max_{d}" for d in dims]].to_numpy()
    np.testing.assert_array_equal(box, [r.bbox for r in sk])
    np.testing.assert_allclose(df["major_axis_um"], [r.axis_major_length for r in sk],
                               rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(df["minor_axis_um"], [r.axis_minor_length for r in sk],
                               rtol=1e-6, atol=1e-6)
    # scipy.ndimage agrees on voxel counts and centroids (in voxel units)
    np.testing.assert_array_equal(df["n_voxels"], ndi.sum_labels(ref > 0, ref, range(1, n + 1)))
    np.testing.assert_allclose(cen / np.array(spacing),
                               ndi.center_of_mass(ref > 0, ref, range(1, n + 1)), atol=1e-9)
    slices = ndi.find_objects(ref)
    touch = [any(s.start == 0 or s.stop == m for s, m in zip(sl, shape)) for sl in slices]
    assert list(df["touches_border"]) == touch


def test_chunk_invariance_including_surface():
    ref, _ = _labels((30, 28, 26), seed=6)
    one = regionprops(emd.as_volume(ref, voxel_size=0.5, chunks=-1))
    many = regionprops(emd.as_volume(ref, voxel_size=0.5, chunks=(5, 9, 7)))
    np.testing.assert_allclose(many.select_dtypes("number").to_numpy(),
                               one.select_dtypes("number").to_numpy(), rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("spacing", [1.0, 0.5])
def test_sphere_surface_area_within_3_percent(spacing):
    r = 20
    g = np.mgrid[-24:25, -24:25, -24:25] + 0.13
    ball = ((g**2).sum(0) <= r * r).astype(np.uint8)
    df = regionprops(emd.as_volume(ball, voxel_size=spacing, chunks=(17, 20, 23)))
    exact = 4 * np.pi * (r * spacing) ** 2
    assert abs(df["surface_area_um2"].iloc[0] / exact - 1) < 0.03
    assert abs(df["major_axis_um"].iloc[0] / (2 * r * spacing) - 1) < 0.02
    assert df["aspect_ratio"].iloc[0] == pytest.approx(1.0, abs=0.01)
    assert not df["touches_border"].iloc[0]


def test_circle_perimeter_and_anisotropic_ellipsoid():
    g = np.mgrid[-30:31, -30:31] + 0.21
    disk = ((g**2).sum(0) <= 25**2).astype(np.uint8)
    df = regionprops(emd.as_volume(disk, voxel_size=1.0, chunks=(13, 17)))
    assert abs(df["perimeter_um"].iloc[0] / (2 * np.pi * 25) - 1) < 0.03
    # A sphere of radius 12 um sampled with voxels 0.5 x 1 x 1 um.
    z, y, x = np.mgrid[-30:31, -15:16, -15:16]
    ball = ((0.5 * z) ** 2 + y**2 + x**2 <= 144).astype(np.uint8)
    df = regionprops(emd.as_volume(ball, voxel_size=(0.5, 1.0, 1.0), chunks=(11, 9, 8)))
    assert abs(df["surface_area_um2"].iloc[0] / (4 * np.pi * 144) - 1) < 0.03


def test_contact_and_coverage_with_phases():
    # A sphere of AM; above its equator CBD, below it pore: half its surface each.
    g = np.mgrid[-20:21, -20:21, -20:21] + 0.1
    ball = (g**2).sum(0) <= 15**2
    seg = np.where(g[0] > 0, 1, 0).astype(np.uint8)
    seg[ball] = 2
    phases = emd.as_segmentation(emd.as_volume(seg, voxel_size=0.5, chunks=(9, 14, 12)),
                                 phases={0: "pore", 1: "cbd", 2: "am"})
    lab = emd.as_volume(ball.astype(np.uint32), voxel_size=0.5, chunks=(9, 14, 12))
    df = regionprops(lab, phases=phases)
    row = df.iloc[0]
    assert row["coverage_cbd"] == pytest.approx(0.5, abs=0.03)
    assert row["coverage_pore"] == pytest.approx(0.5, abs=0.03)
    assert row["coverage_am"] == 0.0
    assert row["contact_cbd_um2"] + row["contact_pore_um2"] == pytest.approx(
        row["surface_area_um2"])


def test_two_touching_labels_share_contact():
    lab = np.zeros((20, 20, 20), np.uint32)
    lab[5:15, 5:15, 3:10] = 1
    lab[5:15, 5:15, 10:17] = 2
    seg = np.where(lab > 0, 2, 0).astype(np.uint8)
    phases = emd.as_segmentation(emd.as_volume(seg, voxel_size=1.0, chunks=7),
                                 phases={0: "pore", 2: "am"})
    df = regionprops(emd.as_volume(lab, voxel_size=1.0, chunks=7), phases=phases)
    # The shared face is am contact for both, of equal size.
    assert df["contact_am_um2"].iloc[0] == pytest.approx(df["contact_am_um2"].iloc[1])
    assert df["contact_am_um2"].iloc[0] > 0


def test_errors_and_empty():
    with pytest.raises(InputError, match="labels"):
        regionprops(np.zeros((4, 4), np.uint32))
    with pytest.raises(InputError, match="labels"):
        regionprops(emd.as_volume(np.zeros((4, 4), np.float32), voxel_size=1.0))
    df = regionprops(emd.as_volume(np.zeros((6, 5, 4), np.uint32), voxel_size=1.0))
    assert len(df) == 0 and "volume_um3" in df.columns
