"""Sampling windows of the calibrations (seed 002: thresholds, k-means and conversions are
fitted inside the electrode, without the void around it)."""

import numpy as np
import pytest
import xarray as xr

from electromicro_dask import segment, synth
from electromicro_dask.core.errors import InputError

TARGET = {"pore": 0.30, "cbd": 0.15, "am": 0.55}


@pytest.fixture(scope="module")
def sample():
    """An electrode (z < 32) under 16 slices of void (embedding above the coating)."""
    ds = synth.electrode((32, 40, 40), 0.5, particle_radius_um=(2.0, 0.4), seed=2)
    truth = ds["phases"].compute()
    grey = synth.tomogram(ds["phases"], noise=0.04, seed=1).compute()
    pad = 16
    vals = np.concatenate([grey.values, np.full((pad, 40, 40), float(grey.values.min()))
                           + np.random.default_rng(0).normal(0, 0.02, (pad, 40, 40))])
    lab = np.concatenate([truth.values, np.full((pad, 40, 40), 255, np.uint8)])
    z = np.arange(32 + pad) * 0.5
    coords = {"z": z, "y": grey["y"].values, "x": grey["x"].values}
    img = xr.DataArray(vals.astype(np.float32), dims=("z", "y", "x"), coords=coords)
    real = {n: float((truth.values == c).mean()) for c, n in truth.attrs["phases"].items()}
    return img.chunk(12), lab, real


def _fractions(seg, lab):
    inside = lab != 255
    return {n: float((seg[inside] == c).mean()) for c, n in segment.fibsem.PHASES3.items()}


def test_threshold_in_window_matches_targets_and_equals_cropped_run(sample):
    img, lab, real = sample
    box = {"z": (0.0, 15.5)}
    seg = segment.threshold(img, fractions=real, window=box)
    f = _fractions(seg.values, lab)
    assert all(abs(f[n] - real[n]) <= 0.005 for n in real), f
    alone = segment.threshold(img.sel(z=slice(0, 15.5)), fractions=real)
    np.testing.assert_array_equal(seg.sel(z=slice(0, 15.5)).values, alone.values)
    assert seg.attrs["window"] == {"z": [0.0, 15.5]}
    # without the window the void counts as pore and the electrode loses pore
    whole = _fractions(segment.threshold(img, fractions=real).values, lab)
    assert whole["pore"] < real["pore"] - 0.05


def test_kmeans_in_a_mask_window_matches_targets(sample):
    img, lab, real = sample
    mask = xr.DataArray(lab != 255, dims=img.dims, coords=img.coords)
    seg = segment.kmeans(img, real, sample_voxels=3000, window=mask)
    f = _fractions(seg.values, lab)
    assert all(abs(f[n] - real[n]) <= 0.005 for n in real), f
    assert seg.attrs["window"] == "mask"


def test_conversion_in_window_matches_targets(sample):
    _, lab, real = sample
    rng = np.random.default_rng(5)
    inside = lab != 255
    onehot = np.stack([(lab == c) for c in (0, 1, 2)]).astype(np.float32)
    onehot[0][~inside] = 1.0  # the void looks like pore to a network
    p = onehot + 0.4 * rng.random(onehot.shape).astype(np.float32)
    p /= p.sum(axis=0)
    prob = xr.DataArray(p, dims=("phase", "z", "y", "x"),
                        coords={"phase": ["pore", "cbd", "am"],
                                "z": np.arange(lab.shape[0]) * 0.5}).chunk({"z": 12})
    seg = segment.convert(prob, real, method="NN-P-Cond", window={"z": (0.0, 15.5)})
    f = _fractions(seg.values, lab)
    assert all(abs(f[n] - real[n]) <= 0.005 for n in real), f


def test_bad_windows(sample):
    img, lab, real = sample
    with pytest.raises(InputError, match="window"):
        segment.threshold(img, fractions=real, window={"z": (100.0, 200.0)})
    with pytest.raises(InputError, match="window"):
        segment.threshold(img, fractions=real, window={"t": (0.0, 1.0)})
    with pytest.raises(InputError, match="window"):
        segment.kmeans(img, real, window=xr.DataArray(np.ones((3, 3, 3), bool),
                                                      dims=("z", "y", "x")))
