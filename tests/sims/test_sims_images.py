"""SI images, synthetic cubes and segmentation: window sums against numpy, chunk
invariance (odd chunks, features crossing chunk borders), interface lengths against a
hand count, and input validation."""

import numpy as np
import pytest
import xarray as xr

from electromicro_dask import as_segmentation, as_volume
from electromicro_dask.errors import InputError
from electromicro_dask.sims import (ANODE, interface_lengths, relative_intensity,
                                    rgb_overlay, segment_sims, si_images, species_image,
                                    species_windows)
from electromicro_dask.synth.sims import sims_cube, sims_section

NAMES = ["C2-", "C3-", "Si-", "SiO2-", "LiO-", "LiCO2-"]


@pytest.fixture(scope="module")
def small():
    ds = sims_section((96, 88), 0.25, agglomerate_radius_um=(1.5, 0.4),
                      interphase_thickness_um=0.5, seed=7)
    return ds


def test_cube_is_chunk_invariant_and_poisson(small):
    a = sims_cube(small, n_channels=48, seed=3, chunks=(37, 41, 13))
    b = sims_cube(small, n_channels=48, seed=3, chunks=(96, 88, 48))
    assert a.dims == ("y", "x", "mz") and a.dtype == np.uint16
    va = a.values
    np.testing.assert_array_equal(va, b.values)
    # Poisson counts: mean ~ variance over the pore background channels.
    pore = small.phases.values == 0
    bg = va[pore][:, :5].astype(float)
    assert abs(bg.mean() - bg.var()) < 0.25 * bg.mean() + 0.01
    # A different seed gives different counts.
    assert not np.array_equal(va, sims_cube(small, n_channels=48, seed=4).values)


def test_section_is_chunk_invariant(small):
    other = sims_section((96, 88), 0.25, agglomerate_radius_um=(1.5, 0.4),
                         interphase_thickness_um=0.5, seed=7, chunks=(29, 31))
    np.testing.assert_array_equal(other.phases.values, small.phases.values)
    np.testing.assert_array_equal(other.agglomerates.values, small.agglomerates.values)
    ids = np.unique(small.agglomerates.values)
    np.testing.assert_array_equal(ids, np.arange(len(ids)))  # consecutive from 0


def test_si_images_equal_numpy_window_sums(small):
    cube = sims_cube(small, n_channels=64, seed=1, chunks=(40, 40, 16))
    wins = species_windows(NAMES, 0.2)
    si = si_images(cube, wins)
    c = cube.values.astype(np.float64)
    edges = np.asarray(cube.attrs["mz_edges"])
    for name, (mz, hw) in wins.items():
        sel = (edges[1:] > mz - hw) & (edges[:-1] < mz + hw)
        expect = c[..., sel].sum(-1)
        np.testing.assert_array_equal(si.si.sel(mz=mz).values, expect)
    np.testing.assert_array_equal(si.total.values, c.sum(-1))
    img = species_image(si, ["LiO-", "LiCO2-"]).values
    np.testing.assert_array_equal(img, si.si.values[..., [4, 5]].sum(-1))
    # SI extraction is chunk invariant.
    si2 = si_images(cube.chunk({"y": 96, "x": 88, "mz": 64}), wins)
    np.testing.assert_array_equal(si2.si.values, si.si.values)


def test_segmentation_is_chunk_invariant(small):
    cube = sims_cube(small, n_channels=64, seed=1)
    wins = species_windows(NAMES, 0.2)
    segs = []
    for ch in ((96, 88, 64), (41, 37, 23)):
        si = si_images(cube.chunk(dict(zip(("y", "x", "mz"), ch))), wins)
        si = si.chunk({"y": ch[0], "x": ch[1]})
        segs.append(segment_sims(si, ANODE["phases"], ANODE["interphases"],
                                 dominance=1.3).values)
    np.testing.assert_array_equal(segs[0], segs[1])


def test_relative_intensity_and_overlay():
    img = as_volume(np.arange(400.0).reshape(20, 20), voxel_size=1.0)
    rel = relative_intensity({"a": img, "b": 2 * img}, percentile=100)
    assert float(rel["a"].max()) == pytest.approx(1.0)
    np.testing.assert_allclose(rel["a"].values, rel["b"].values, rtol=1e-6)
    rgb = rgb_overlay(red=img, blue=img, percentile=100)
    assert rgb.dims == ("y", "x", "rgb")
    v = rgb.values
    assert v[..., 1].max() == 0 and v[..., 0].max() == pytest.approx(1.0)


def test_interface_lengths_hand_count():
    a = np.zeros((6, 8), np.uint8)
    a[:, 4:] = 1          # vertical boundary 6 pixels long
    a[2:4, 1:3] = 2       # a 2 x 2 square inside phase 0: perimeter 8 edges
    seg = as_segmentation(as_volume(a, voxel_size=0.5, chunks=(4, 3)),
                          {0: "pore", 1: "nmc", 2: "cei"})
    df = interface_lengths(seg).set_index(["phase_a", "phase_b"])
    assert df.loc[("pore", "nmc"), "edges"] == 6
    assert df.loc[("pore", "cei"), "edges"] == 8
    assert df.loc[("pore", "cei"), "length_um"] == pytest.approx(4.0)


def test_bad_inputs(small):
    cube = sims_cube(small, n_channels=32)
    with pytest.raises(InputError, match="species"):
        si_images(cube, {"X-": (500.0, 0.1)})
    with pytest.raises(InputError, match="cube"):
        si_images(cube.transpose("mz", "y", "x"), {"Si-": (28.0, 0.5)})
    si = si_images(cube, species_windows(["Si-", "C2-"], 0.5))
    with pytest.raises(InputError, match="species"):
        segment_sims(si, {"silicon": ["Nope-"]})
    with pytest.raises(InputError, match="phases"):
        segment_sims(si, {"pore": ["Si-"]})
    with pytest.raises(InputError, match="kind"):
        sims_section((32, 32), kind="battery")
    with pytest.raises(InputError):
        si_images(xr.DataArray(np.zeros((4, 4))), {"Si-": (28.0, 0.5)})
