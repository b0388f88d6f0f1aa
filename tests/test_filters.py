import numpy as np
import pytest
import scipy.ndimage as ndi
from skimage.restoration import denoise_nl_means

import electromicro_dask as emd
from electromicro_dask import filters
from electromicro_dask.errors import InputError

CHUNKINGS_3D = [(40, 37, 33), (7, 11, 13), (16, 5, 37), (3, 40, 9)]
CHUNKINGS_2D = [(60, 50), (7, 13), (31, 4), (11, 50)]


@pytest.fixture(scope="module")
def vol():
    # Blobs bigger than the chunks, so features cross chunk borders, plus noise.
    rng = np.random.default_rng(5)
    base = ndi.gaussian_filter(rng.random((40, 37, 33)), 3)
    return (base > base.mean()).astype(np.float32) + 0.2 * rng.standard_normal(base.shape).astype(np.float32)


@pytest.fixture(scope="module")
def img():
    rng = np.random.default_rng(6)
    base = ndi.gaussian_filter(rng.random((60, 50)), 4)
    return (base > base.mean()).astype(np.float32) + 0.3 * rng.standard_normal(base.shape).astype(np.float32)


@pytest.mark.parametrize("chunks", CHUNKINGS_3D)
def test_median_3d_equals_scipy_any_chunking(vol, chunks):
    v = emd.as_volume(vol, voxel_size=0.5, chunks=chunks)
    out = filters.median(v, size_voxels=3)
    assert out.chunks == v.chunks
    np.testing.assert_array_equal(out.values, ndi.median_filter(vol, size=3, mode="reflect"))


@pytest.mark.parametrize("chunks", CHUNKINGS_2D)
def test_median_2d_equals_scipy_any_chunking(img, chunks):
    v = emd.as_volume(img, voxel_size=1.0, chunks=chunks)
    np.testing.assert_array_equal(filters.median(v, size_voxels=5).values,
                                  ndi.median_filter(img, size=5, mode="reflect"))


@pytest.mark.parametrize("chunks", CHUNKINGS_3D)
def test_gaussian_3d_um_anisotropic(vol, chunks):
    v = emd.as_volume(vol, voxel_size=(1.0, 0.5, 0.5), chunks=chunks)
    out = filters.gaussian(v, sigma_um=1.0)
    ref = ndi.gaussian_filter(vol, sigma=(1.0, 2.0, 2.0), mode="reflect", truncate=4.0)
    np.testing.assert_allclose(out.values, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunks", CHUNKINGS_2D)
def test_gaussian_2d_voxels(img, chunks):
    v = emd.as_volume(img, voxel_size=1.0, chunks=chunks)
    ref = ndi.gaussian_filter(img, sigma=1.5, mode="reflect")
    np.testing.assert_allclose(filters.gaussian(v, sigma_voxels=1.5).values, ref, atol=1e-5)


@pytest.mark.parametrize("chunks", CHUNKINGS_2D)
def test_nl_means_2d_equals_skimage(img, chunks):
    v = emd.as_volume(img, voxel_size=1.0, chunks=chunks)
    out = filters.nl_means(v, patch_size_voxels=5, patch_distance_voxels=4, h=0.25, sigma=0.3)
    ref = denoise_nl_means(img, patch_size=5, patch_distance=4, h=0.25, sigma=0.3, fast_mode=True)
    np.testing.assert_allclose(out.values, ref, atol=1e-4)


@pytest.mark.parametrize("chunks", [(40, 37, 33), (11, 13, 9)])
def test_nl_means_3d_chunk_invariant(vol, chunks):
    small = vol[:24, :22, :20]
    v = emd.as_volume(small, voxel_size=1.0, chunks=chunks)
    out = filters.nl_means(v, patch_size_voxels=3, patch_distance_voxels=2, h=0.2, sigma=0.2)
    ref = denoise_nl_means(small, patch_size=3, patch_distance=2, h=0.2, sigma=0.2, fast_mode=True)
    np.testing.assert_allclose(out.values, ref, atol=1e-4)


def test_nl_means_default_sigma_reduces_noise(img):
    v = emd.as_volume(img, voxel_size=1.0, chunks=(20, 20))
    out = filters.nl_means(v)
    assert float(out.std()) < float(v.std())
    assert out.attrs["filter"]["sigma"] == pytest.approx(0.3, rel=0.25)


def test_filters_bad_input(vol):
    v = emd.as_volume(vol, voxel_size=1.0)
    with pytest.raises(InputError, match="size_voxels"):
        filters.median(v, size_voxels=4)
    with pytest.raises(InputError, match="sigma"):
        filters.gaussian(v)
    with pytest.raises(InputError, match="sigma_um"):
        filters.gaussian(v, sigma_um=(1, 2))


def test_filters_refuse_non_spatial_dims():
    import xarray as xr

    cube = xr.DataArray(np.zeros((8, 8, 5)), dims=("y", "x", "mz"),
                        coords={"y": np.arange(8.0), "x": np.arange(8.0), "mz": np.arange(5.0)})
    with pytest.raises(InputError, match="spatial"):
        filters.gaussian(cube, sigma_um=1.0)
    with pytest.raises(InputError, match="spatial"):
        filters.median(cube)


@pytest.mark.parametrize("chunks", [(40, 37, 33), (7, 11, 13), (16, 5, 37)])
def test_store_backed_filters_read_halos_from_zarr(vol, chunks, tmp_path):
    # Read unchanged from the store, median and gaussian read each block's halo from zarr
    # (core.halo: independent tasks, bounded memory); results equal scipy's.
    from electromicro_dask.core.halo import store_source

    store = tmp_path / "s.zarr"
    emd.save(emd.as_volume(vol, voxel_size=(1.0, 0.5, 0.5), chunks=chunks), store, "raw")
    raw = emd.open_store(store)["raw"]
    assert store_source(raw.data) is not None
    assert store_source((raw.data * 1)) is None  # any change drops the registration
    med = filters.median(raw, size_voxels=(3, 5, 1))
    assert med.data.name.startswith("halo-") and med.chunks == raw.chunks
    np.testing.assert_array_equal(med.values, ndi.median_filter(vol, size=(3, 5, 1), mode="reflect"))
    gau = filters.gaussian(raw, sigma_um=1.0)
    assert gau.data.name.startswith("halo-") and gau.dtype == np.float32
    ref = ndi.gaussian_filter(vol, sigma=(1.0, 2.0, 2.0), mode="reflect", truncate=4.0)
    np.testing.assert_array_equal(gau.values, filters.gaussian(raw.copy(data=raw.data * 1),
                                                               sigma_um=1.0).values)
    np.testing.assert_allclose(gau.values, ref, rtol=1e-5, atol=1e-5)


def test_store_backed_tomogram_equals_in_memory(tmp_path):
    from electromicro_dask import synth

    ds = synth.electrode((30, 26, 22), voxel_size=0.5, seed=3, chunks=(11, 9, 22))
    emd.save(ds["phases"], tmp_path / "s.zarr", "truth")
    truth = emd.open_store(tmp_path / "s.zarr")["truth"]
    halo = synth.tomogram(truth, seed=4)
    assert "halo-" in str(halo.data.dask.layers.keys())
    mem = synth.tomogram(truth.copy(data=truth.data + np.uint8(0)), seed=4)
    np.testing.assert_array_equal(halo.values, mem.values)
    np.testing.assert_array_equal(halo.values, synth.tomogram(ds["phases"], seed=4).values)
