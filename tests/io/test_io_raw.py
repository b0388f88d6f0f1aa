import dask.array as da
import numpy as np
import pytest

from electromicro_dask.errors import InputError
from electromicro_dask.io import from_numpy, read_npy, read_raw


@pytest.fixture
def vol(rng):
    return rng.integers(0, 60000, size=(7, 9, 11), dtype=np.uint16)


def test_big_endian_with_header(tmp_path, vol):
    f = tmp_path / "vol.raw"
    f.write_bytes(b"H" * 64 + vol.astype(">u2").tobytes())
    v = read_raw(f, vol.shape, "uint16", byte_order=">", offset=64,
                 voxel_size=(0.3, 0.1, 0.1), chunks=(3, 4, 11))
    assert isinstance(v.data, da.Array) and v.data.numblocks == (3, 3, 1)
    assert v.dtype == np.dtype("uint16") and v.dtype.isnative
    np.testing.assert_array_equal(v.values, vol)
    np.testing.assert_allclose(v.z.values, 0.3 * np.arange(7))


def test_little_endian_float_tofile(tmp_path, rng):
    a = rng.random((5, 6), dtype=np.float32)
    f = tmp_path / "img.bin"
    a.tofile(f)
    v = read_raw(f, (5, 6), np.float32, voxel_size=0.5)
    assert v.dims == ("y", "x")
    np.testing.assert_array_equal(v.values, a)


def test_bad_input(tmp_path, vol):
    f = tmp_path / "vol.raw"
    vol.tofile(f)
    with pytest.raises(InputError, match="^path:.*bytes"):
        read_raw(f, (7, 9, 12), "uint16", voxel_size=1)
    with pytest.raises(InputError, match="^path:.*bytes"):
        read_raw(f, vol.shape, "uint16", offset=8, voxel_size=1)
    cut = tmp_path / "cut.raw"
    cut.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(InputError, match="^path:"):
        read_raw(cut, vol.shape, "uint16", voxel_size=1)
    with pytest.raises(InputError, match="^voxel_size:"):
        read_raw(f, vol.shape, "uint16")
    with pytest.raises(InputError, match="^dtype:"):
        read_raw(f, vol.shape, "not-a-dtype", voxel_size=1)
    with pytest.raises(InputError, match="^byte_order:"):
        read_raw(f, vol.shape, "uint16", byte_order="middle", voxel_size=1)
    with pytest.raises(InputError, match="^shape:"):
        read_raw(f, (7, -9, 11), "uint16", voxel_size=1)
    with pytest.raises(InputError, match="^path:"):
        read_raw(tmp_path / "missing.raw", vol.shape, "uint16", voxel_size=1)


def test_npy_c_and_fortran(tmp_path, vol):
    for order in "CF":
        f = tmp_path / f"v{order}.npy"
        np.save(f, np.asarray(vol, order=order))
        v = read_npy(f, voxel_size=1.0, chunks=(2, 5, 11))
        np.testing.assert_array_equal(v.values, vol)
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"nope" * 20)
    with pytest.raises(InputError, match="^path:"):
        read_npy(junk, voxel_size=1)


def test_from_numpy(vol):
    v = from_numpy(vol, voxel_size=0.5)
    assert v.dims == ("z", "y", "x") and isinstance(v.data, da.Array)
    np.testing.assert_array_equal(v.values, vol)
    with pytest.raises(InputError, match="^voxel_size:"):
        from_numpy(vol, voxel_size=None)
