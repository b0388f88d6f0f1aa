import pickle

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile

from electromicro_dask.errors import InputError
from electromicro_dask.io import read_tiff, read_tiff_folder


@pytest.fixture
def stack(rng):
    return rng.integers(0, 60000, size=(6, 30, 40), dtype=np.uint16)


def test_multipage_round_trip(tmp_path, stack):
    f = tmp_path / "stack.tif"
    tifffile.imwrite(f, stack)
    v = read_tiff(f, voxel_size=(0.5, 0.1, 0.2))
    assert isinstance(v.data, da.Array)
    assert v.dims == ("z", "y", "x") and v.dtype == stack.dtype
    np.testing.assert_allclose(v.z.values, 0.5 * np.arange(6))
    np.testing.assert_allclose(v.y.values, 0.1 * np.arange(30))
    np.testing.assert_allclose(v.x.values, 0.2 * np.arange(40))
    assert v.attrs["units"] == "um"
    np.testing.assert_array_equal(v.values, stack)


def test_region_reads_through_strips_match(tmp_path, stack):
    f = tmp_path / "strips.tif"
    tifffile.imwrite(f, stack, rowsperstrip=8)
    v = read_tiff(f, voxel_size=1.0, chunks=(4, 7, 13))
    assert v.data.chunks[1][0] == 7
    np.testing.assert_array_equal(v.values, stack)
    np.testing.assert_array_equal(v.isel(z=slice(1, 3), y=slice(5, 20)).values, stack[1:3, 5:20])


def test_imagej_calibration_is_read(tmp_path, stack):
    f = tmp_path / "ij.tif"
    tifffile.imwrite(f, stack, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"spacing": 0.5, "unit": "um", "axes": "ZYX"})
    v = read_tiff(f)
    np.testing.assert_allclose(v.z.values, 0.5 * np.arange(6))
    np.testing.assert_allclose(v.x.values, 0.25 * np.arange(40))
    # A given voxel size wins over the file's.
    w = read_tiff(f, voxel_size=2.0)
    np.testing.assert_allclose(w.y.values, 2.0 * np.arange(30))


def test_imagej_nanometres_are_converted(tmp_path, stack):
    f = tmp_path / "nm.tif"
    tifffile.imwrite(f, stack, imagej=True, resolution=(1 / 20.0, 1 / 20.0),
                     metadata={"spacing": 30.0, "unit": "nm", "axes": "ZYX"})
    v = read_tiff(f)
    np.testing.assert_allclose(v.z.values[1], 0.03)
    np.testing.assert_allclose(v.x.values[1], 0.02)


def test_ome_physical_sizes_are_read(tmp_path, stack):
    f = tmp_path / "v.ome.tif"
    tifffile.imwrite(f, stack, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1, "PhysicalSizeZ": 300.0,
        "PhysicalSizeZUnit": "nm"})
    v = read_tiff(f)
    np.testing.assert_allclose([v.z.values[1], v.y.values[1], v.x.values[1]], [0.3, 0.1, 0.1])
    np.testing.assert_array_equal(v.values, stack)


def test_resolution_tags_in_cm_calibrate_2d(tmp_path, rng):
    img = rng.integers(0, 255, size=(20, 30), dtype=np.uint8)
    f = tmp_path / "img.tif"
    tifffile.imwrite(f, img, resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")
    v = read_tiff(f)
    assert v.dims == ("y", "x")
    np.testing.assert_allclose(v.x.values[1], 0.5)
    np.testing.assert_array_equal(v.values, img)


def test_uncalibrated_needs_voxel_size(tmp_path, stack):
    f = tmp_path / "plain.tif"
    tifffile.imwrite(f, stack)
    with pytest.raises(InputError, match="^voxel_size:"):
        read_tiff(f)
    g = tmp_path / "cm.tif"  # x/y calibrated, but nothing says the slice spacing
    tifffile.imwrite(g, stack, resolution=(100.0, 100.0), resolutionunit="CENTIMETER")
    with pytest.raises(InputError, match="^voxel_size:.*'z'"):
        read_tiff(g)


def test_bad_files(tmp_path, stack, rng):
    with pytest.raises(InputError, match="^path:.*does not exist"):
        read_tiff(tmp_path / "nope.tif", voxel_size=1)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"this is not a tiff file at all" * 10)
    with pytest.raises(InputError, match="^path:.*TIFF"):
        read_tiff(junk, voxel_size=1)
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, stack)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match="^path:"):
        read_tiff(cut, voxel_size=1)
    for kw in ({"compression": "zlib"}, {"tile": (16, 16)}, {"imagej": True}):
        tifffile.imwrite(full, stack, **kw)
        cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        with pytest.raises(InputError, match="^path:"):
            read_tiff(cut, voxel_size=1)
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, rng.integers(0, 255, size=(10, 12, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="^path:.*single-channel"):
        read_tiff(rgb, voxel_size=1)


def test_channel_axis_read_as_z_when_dims_given(tmp_path, stack):
    f = tmp_path / "ij.tif"
    tifffile.imwrite(f, stack, imagej=True)  # tifffile stores a plain 3D stack as channels
    with pytest.raises(InputError, match="^path:.*dims"):
        read_tiff(f, voxel_size=1)
    v = read_tiff(f, voxel_size=1, dims=("z", "y", "x"))
    np.testing.assert_array_equal(v.values, stack)


def test_reader_pickles_after_use(tmp_path, stack):
    f = tmp_path / "stack.tif"
    tifffile.imwrite(f, stack)
    v = read_tiff(f, voxel_size=1.0)
    v.values  # opens the file in this process
    w = pickle.loads(pickle.dumps(v))
    np.testing.assert_array_equal(w.values, stack)


def _write_slices(folder, n, shape=(20, 24), dtype=np.uint8, name="slice_{}.tif"):
    folder.mkdir(exist_ok=True)
    for i in range(1, n + 1):
        tifffile.imwrite(folder / name.format(i), np.full(shape, i, dtype=dtype))


def test_folder_natural_sort_and_one_task_per_slice(tmp_path):
    _write_slices(tmp_path / "scan", 12)
    (tmp_path / "scan" / "notes.txt").write_text("not a slice")
    v = read_tiff_folder(tmp_path / "scan", voxel_size=(0.03, 0.01, 0.01))
    assert v.dims == ("z", "y", "x") and v.shape == (12, 20, 24)
    assert v.data.numblocks == (12, 1, 1)
    # one reading task per slice (plus the shared reader object)
    assert len(dict(v.data.__dask_graph__())) == 12 + 1
    np.testing.assert_array_equal(v.values[:, 0, 0], np.arange(1, 13))
    np.testing.assert_allclose(v.z.values, 0.03 * np.arange(12))
    np.testing.assert_allclose(v.x.values[1], 0.01)


def test_folder_bands_read_only_their_rows(tmp_path, rng):
    vol = rng.integers(0, 255, size=(5, 40, 24), dtype=np.uint8)
    (tmp_path / "scan").mkdir()
    for i, sl in enumerate(vol):
        tifffile.imwrite(tmp_path / "scan" / f"s{i}.tif", sl, rowsperstrip=4)
    with dask.config.set({"electromicro.chunk-bytes": 1000}):
        v = read_tiff_folder(tmp_path / "scan", voxel_size=1.0, chunks="bands")
    assert v.data.numblocks[0] == 5 and v.data.numblocks[1] > 1 and v.data.numblocks[2] == 1
    np.testing.assert_array_equal(v.values, vol)
    w = read_tiff_folder(tmp_path / "scan", voxel_size=1.0, chunks=(2, 7, 5))
    np.testing.assert_array_equal(w.values, vol)
    np.testing.assert_array_equal(w[3, 10:20, 1].values, vol[3, 10:20, 1])


def test_folder_glob(tmp_path):
    _write_slices(tmp_path / "scan", 10, name="img{}.tiff")
    tifffile.imwrite(tmp_path / "scan" / "other.tif", np.zeros((20, 24), np.uint8))
    v = read_tiff_folder(str(tmp_path / "scan" / "img*.tiff"), voxel_size=1.0)
    np.testing.assert_array_equal(v.values[:, 3, 3], np.arange(1, 11))


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="^folder:.*found none"):
        read_tiff_folder(tmp_path / "empty", voxel_size=1)
    with pytest.raises(InputError, match="^folder:"):
        read_tiff_folder(tmp_path / "missing", voxel_size=1)
    with pytest.raises(InputError, match="^folder:.*found none"):
        read_tiff_folder(str(tmp_path / "empty" / "*.tif"), voxel_size=1)

    _write_slices(tmp_path / "shapes", 5)
    tifffile.imwrite(tmp_path / "shapes" / "slice_10.tif", np.zeros((20, 25), np.uint8))
    with pytest.raises(InputError, match="^folder:.*slice_10.tif"):
        read_tiff_folder(tmp_path / "shapes", voxel_size=1)

    _write_slices(tmp_path / "dtypes", 5)
    tifffile.imwrite(tmp_path / "dtypes" / "slice_3.tif", np.zeros((20, 24), np.uint16))
    with pytest.raises(InputError, match="^folder:.*slice_3.tif"):
        read_tiff_folder(tmp_path / "dtypes", voxel_size=1)

    _write_slices(tmp_path / "junk", 3)
    (tmp_path / "junk" / "slice_2.tif").write_bytes(b"garbage" * 50)
    with pytest.raises(InputError, match="^folder:.*slice_2.tif"):
        read_tiff_folder(tmp_path / "junk", voxel_size=1)

    _write_slices(tmp_path / "ok", 3)
    with pytest.raises(InputError, match="^voxel_size:"):
        read_tiff_folder(tmp_path / "ok")


def test_slice_changed_after_listing_fails_cleanly(tmp_path):
    _write_slices(tmp_path / "scan", 4)
    v = read_tiff_folder(tmp_path / "scan", voxel_size=1.0)
    tifffile.imwrite(tmp_path / "scan" / "slice_3.tif", np.zeros((5, 5), np.uint8))
    with pytest.raises(InputError, match="^folder:.*slice_3.tif"):
        v.compute()
    (tmp_path / "scan" / "slice_4.tif").write_bytes(b"corrupt")
    with pytest.raises(InputError, match="^folder:.*slice_4.tif"):
        v[3].compute()
