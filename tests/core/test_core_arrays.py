import dask.array as da
import numpy as np
import pytest
import xarray as xr

import electromicro_dask as emd
from electromicro_dask.core.arrays import as_segmentation, default_chunks, voxel_size
from electromicro_dask.errors import InputError


def test_as_volume_numpy_dask_xarray_agree():
    a = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)
    v1 = emd.as_volume(a, voxel_size=(0.1, 0.2, 0.3))
    v2 = emd.as_volume(da.from_array(a, chunks=2), voxel_size=(0.1, 0.2, 0.3))
    v3 = emd.as_volume(xr.DataArray(a, dims=("z", "y", "x"),
                                    coords={d: np.arange(n) * s for d, n, s in
                                            zip("zyx", a.shape, (0.1, 0.2, 0.3))}))
    for v in (v1, v2, v3):
        assert v.dims == ("z", "y", "x")
        assert isinstance(v.data, da.Array)
        assert v.attrs["units"] == "um"
        np.testing.assert_array_equal(v.values, a)
        assert voxel_size(v) == pytest.approx((0.1, 0.2, 0.3))
    assert float(v1.x[-1]) == pytest.approx(5 * 0.3)


def test_as_volume_2d_default_dims():
    v = emd.as_volume(np.zeros((3, 7)), voxel_size=2.0)
    assert v.dims == ("y", "x") and voxel_size(v) == (2.0, 2.0)


@pytest.mark.parametrize("kwargs, arg", [
    ({"voxel_size": None}, "voxel_size"),
    ({"voxel_size": 0.0}, "voxel_size"),
    ({"voxel_size": -1}, "voxel_size"),
    ({"voxel_size": (1, 2)}, "voxel_size"),
    ({"voxel_size": 1.0, "dims": ("z", "y", "w")}, "dims"),
    ({"voxel_size": 1.0, "dims": ("z", "y")}, "dims"),
])
def test_as_volume_bad_input_names_argument(kwargs, arg):
    with pytest.raises(InputError) as e:
        emd.as_volume(np.zeros((2, 3, 4)), **kwargs)
    assert e.value.argument == arg
    assert str(e.value).startswith(arg)


def test_wrong_dims_count_without_names():
    with pytest.raises(InputError, match="dims"):
        emd.as_volume(np.zeros((2, 2, 2, 2)), voxel_size=1.0)


def test_uneven_coordinates_rejected():
    arr = xr.DataArray(np.zeros((3, 3)), dims=("y", "x"), coords={"y": [0, 1, 3], "x": [0, 1, 2]})
    with pytest.raises(InputError, match="evenly spaced"):
        emd.as_volume(arr)


def test_contradicting_voxel_size_rejected():
    v = emd.as_volume(np.zeros((3, 3)), voxel_size=1.0)
    with pytest.raises(InputError, match="voxel_size"):
        emd.as_volume(v, voxel_size=2.0)


def test_chunk_policy_scales_with_itemsize():
    c8 = default_chunks((1024,) * 3, "uint8")
    c32 = default_chunks((1024,) * 3, "float32")
    assert c8[0][0] == 128
    vox8 = np.prod([c[0] for c in c8])
    vox32 = np.prod([c[0] for c in c32])
    # Same bytes per chunk within dask's rounding.
    assert 0.5 < (vox32 * 4) / (vox8 * 1) < 2.0


def test_segmentation_nan_and_negative_rejected():
    bad = np.zeros((4, 4), dtype=float)
    bad[1, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        as_segmentation(emd.as_volume(bad, voxel_size=1.0), phases={0: "pore", 1: "am"})
    with pytest.raises(InputError, match="phases"):
        as_segmentation(emd.as_volume(np.zeros((4, 4), "uint8"), voxel_size=1.0))


def test_phase_table_and_unknown_phase():
    from electromicro_dask.core.phases import phase_code

    seg = as_segmentation(emd.as_volume(np.zeros((4, 4), "uint8"), voxel_size=1.0),
                          phases={"0": "pore", "2": "am"})
    assert seg.attrs["phases"] == {0: "pore", 2: "am"}
    assert phase_code(seg, "am") == 2
    with pytest.raises(InputError) as e:
        phase_code(seg, "graphite")
    assert "pore" in str(e.value) and "graphite" in str(e.value)
