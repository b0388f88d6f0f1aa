import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask import filters, measure, synth
from electromicro_dask.errors import InputError


@pytest.fixture(scope="module")
def seg():
    # Anisotropic voxels, 4x longer along z, as PFIB-SEM stacks (seed 001).
    return synth.electrode((48, 160, 160), voxel_size=(0.4, 0.1, 0.1), seed=21,
                           particle_radius_um=(2.0, 0.4))["phases"]


@pytest.mark.parametrize("method", ["nearest", "majority", "fractions"])
def test_label_resampling_chunk_invariant(seg, method):
    a = filters.resample(seg, 0.4, method=method)
    b = filters.resample(seg.chunk({"z": 7, "y": 37, "x": 50}), 0.4, method=method)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.sizes["z"] == 48 and a.sizes["x"] == 40
    assert emd.voxel_size(a, ("z", "y", "x")) == pytest.approx((0.4, 0.4, 0.4))


@pytest.mark.parametrize("method", ["nearest", "majority", "fractions"])
def test_label_resampling_independent_of_output_chunks(seg, method):
    import dask

    small = seg.isel(z=slice(0, 12), y=slice(0, 60), x=slice(0, 44))
    a = filters.resample(small, 0.4, method=method)
    with dask.config.set({"electromicro.chunk-bytes": 64}):  # output blocks of 1-4 voxels
        b = filters.resample(small, 0.4, method=method)
    assert b.data.npartitions > 10 * a.data.npartitions
    np.testing.assert_array_equal(a.values, b.values)


def test_majority_against_block_mode():
    # Integer factor 4 along y and x: majority equals the mode of each 4 x 4 block.
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 3, (2, 40, 40)).astype(np.uint8)
    seg = emd.as_volume(arr, voxel_size=(0.4, 0.1, 0.1), chunks=(1, 13, 17))
    seg.attrs["phases"] = {0: "pore", 1: "cbd", 2: "am"}
    out = filters.resample(seg, 0.4, method="majority").values
    blocks = arr.reshape(2, 10, 4, 10, 4)
    counts = np.stack([(blocks == c).sum(axis=(2, 4)) for c in range(3)])
    expect = np.argmax(counts, axis=0)
    np.testing.assert_array_equal(out, expect)
    frac = filters.resample(seg, 0.4, method="fractions").values
    np.testing.assert_allclose(frac, counts / 16.0)


def test_label_resampling_keeps_fractions(seg):
    ref = measure.volume_fractions(seg)
    near = measure.volume_fractions(filters.resample(seg, 0.4, method="nearest"))
    for p in ref.index:
        assert abs(near[p] - ref[p]) < 0.005
    frac = filters.resample(seg, 0.4, method="fractions")
    np.testing.assert_allclose(frac.sum("phase").values, 1.0, rtol=1e-6)
    for p in ref.index:
        assert abs(float(frac.sel(phase=p).mean()) - ref[p]) < 0.005


def test_grey_linear_is_exact_on_linear_ramp():
    z, y, x = np.meshgrid(np.arange(12), np.arange(30), np.arange(28), indexing="ij")
    vs = (0.3, 0.1, 0.1)
    ramp = (0.5 * z * vs[0] + 2.0 * y * vs[1] - 1.0 * x * vs[2]).astype(np.float64)
    img = emd.as_volume(ramp, voxel_size=vs, chunks=(5, 7, 9))
    out = filters.resample(img, (0.15, 0.05, 0.05), method="linear", antialias=False)
    Z, Y, X = np.meshgrid(out.z.values, out.y.values, out.x.values, indexing="ij")
    expect = 0.5 * Z + 2.0 * Y - 1.0 * X
    inner = (slice(2, -2),) * 3  # away from the clamped border
    np.testing.assert_allclose(out.values[inner], expect[inner], atol=1e-9)


def test_grey_downsampling_antialias_chunk_invariant():
    rng = np.random.default_rng(0)
    img = emd.as_volume(rng.random((20, 64, 64)), voxel_size=(0.4, 0.1, 0.1))
    a = filters.resample(img, 0.4)
    b = filters.resample(img.chunk({"z": 6, "y": 17, "x": 64}), 0.4)
    np.testing.assert_allclose(a.values, b.values, atol=1e-6)
    # Anti-aliasing: the noise variance drops roughly with the averaged voxel count.
    assert float(a.std()) < 0.5 * float(img.std())


def test_resample_bad_input(seg):
    with pytest.raises(InputError, match="voxel_size"):
        filters.resample(seg, 0.0)
    with pytest.raises(InputError, match="method"):
        filters.resample(seg, 0.4, method="cubic")
