import pickle

import dask.array as da
import h5py
import numpy as np
import pytest

from electromicro_dask.errors import InputError
from electromicro_dask.io import read_hdf5


@pytest.fixture
def vol(rng):
    return rng.random((10, 12, 14), dtype=np.float32)


def test_round_trip_aligned_to_hdf5_chunks(tmp_path, vol):
    f = tmp_path / "scan.h5"
    with h5py.File(f, "w") as h:
        h.create_dataset("exchange/data", data=vol, chunks=(5, 6, 14))
    v = read_hdf5(f, "exchange/data", voxel_size=(0.2, 0.1, 0.1))
    assert isinstance(v.data, da.Array) and v.dims == ("z", "y", "x")
    assert all(c % 5 == 0 for c in v.data.chunks[0][:-1])
    np.testing.assert_allclose(v.z.values, 0.2 * np.arange(10))
    np.testing.assert_array_equal(v.values, vol)
    w = read_hdf5(f, "/exchange/data", voxel_size=1.0, chunks={"z": 3})
    assert w.data.chunks[0] == (3, 3, 3, 1)
    np.testing.assert_array_equal(w.values, vol)


def test_calibration_attributes(tmp_path, vol):
    f = tmp_path / "cal.h5"
    with h5py.File(f, "w") as h:
        h.create_dataset("a", data=vol).attrs["element_size_um"] = [0.5, 0.25, 0.25]
        d = h.create_dataset("b", data=vol)
        d.attrs["voxel_size"] = 40.0
        d.attrs["voxel_size_unit"] = "nm"
        h.create_dataset("c", data=vol).attrs["voxel_size"] = 40.0  # no unit: not trusted
    a = read_hdf5(f, "a")
    np.testing.assert_allclose([a.z.values[1], a.x.values[1]], [0.5, 0.25])
    b = read_hdf5(f, "b")
    np.testing.assert_allclose(b.y.values[1], 0.04)
    with pytest.raises(InputError, match="^voxel_size:"):
        read_hdf5(f, "c")


def test_single_dataset_may_be_implicit(tmp_path, vol):
    f = tmp_path / "one.h5"
    with h5py.File(f, "w") as h:
        h["only"] = vol
    np.testing.assert_array_equal(read_hdf5(f, voxel_size=1).values, vol)


def test_bad_input(tmp_path, vol):
    f = tmp_path / "x.h5"
    with h5py.File(f, "w") as h:
        h["g/a"] = vol
        h["g/b"] = vol
    with pytest.raises(InputError, match="^dataset:.*'g/a'"):
        read_hdf5(f, voxel_size=1)
    with pytest.raises(InputError, match="^dataset:.*missing"):
        read_hdf5(f, "missing", voxel_size=1)
    with pytest.raises(InputError, match="^dataset:.*group"):
        read_hdf5(f, "g", voxel_size=1)
    with pytest.raises(InputError, match="^path:"):
        read_hdf5(tmp_path / "none.h5", "g/a", voxel_size=1)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x00not hdf5" * 100)
    with pytest.raises(InputError, match="^path:.*HDF5"):
        read_hdf5(junk, "g/a", voxel_size=1)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(f.read_bytes()[: f.stat().st_size - 1000])
    with pytest.raises(InputError, match="^path:"):
        read_hdf5(cut, "g/b", voxel_size=1)


def test_pickles_with_open_handle(tmp_path, vol):
    f = tmp_path / "p.h5"
    with h5py.File(f, "w") as h:
        h["a"] = vol
    v = read_hdf5(f, "a", voxel_size=1.0, chunks=(4, 12, 14))
    v.values
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(v)).values, vol)
