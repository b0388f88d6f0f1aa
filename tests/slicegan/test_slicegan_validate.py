"""validate: statistics against analytical values, and its table and figures on disk."""

import numpy as np
import xarray as xr

from electromicro_dask.core.arrays import as_volume
from electromicro_dask.slicegan import two_point, validate


def _labels(a, vs=0.5):
    v = as_volume(a, voxel_size=vs)
    v.attrs["phases"] = {0: "pore", 1: "am"}
    return v


def test_s2_and_interface_area_of_lamellae(tmp_path):
    # Lamellae of period 8 (4 + 4) along x: fraction 0.5, S2 along x is a triangle wave
    # with S2(0) = 0.5, S2(4) = 0, S2(8) = 0.5; along y and z S2 = 0.5 everywhere.
    # Crossings per unit length along x: 2 per 8 voxels of 0.5 um -> P_L = 0.5 /um; along
    # the other axes 0. S_V = 2 * mean(P_L) over the axes.
    x = np.arange(40)
    vol = np.broadcast_to(((x // 4) % 2).astype(np.uint8), (24, 32, 40)).copy()
    img = vol[0]
    s2x = two_point(vol == 1, 2, 8)
    np.testing.assert_allclose(s2x[[0, 4, 8]], [0.5, 0.0, 0.5], atol=0.02)
    np.testing.assert_allclose(two_point(vol == 1, 0, 8), 0.5)
    res = validate(_labels(vol), _labels(img), out=tmp_path, max_distance_voxels=8)
    t = res.table
    assert abs(t.loc[("am", "volume fraction"), "generated"] - 0.5) < 1e-12
    assert abs(t.loc[("am", "volume fraction"), "training"] - 0.5) < 1e-12
    crossings = np.count_nonzero(np.diff(img[0].astype(int)))
    pl_x = crossings / (39 * 0.5)
    assert abs(t.loc[("am", "interface area per volume (1/um)"), "generated"] - 2 * pl_x / 3) < 1e-9
    assert abs(t.loc[("am", "interface area per volume (1/um)"), "training"] - 2 * pl_x / 2) < 1e-9
    for f in ["validation.csv", "s2.csv", "slices.png", "s2.png", "fractions.png"]:
        assert (tmp_path / f).stat().st_size > 0
    assert set(res.s2.source) == {"generated", "training"}
    assert set(res.s2.axis) == {"z", "y", "x"}


def test_validate_matches_phases_by_name():
    rng = np.random.default_rng(0)
    vol = _labels((rng.random((20, 20, 20)) < 0.3).astype(np.uint8))
    img = xr.DataArray(np.where(rng.random((40, 40)) < 0.3, 7, 3).astype(np.uint8),
                       dims=("y", "x"), attrs={"phases": {3: "pore", 7: "am"}})
    t = validate(vol, img).table
    assert abs(t.loc[("am", "volume fraction"), "training"] - 0.3) < 0.05
    assert abs(t.loc[("am", "volume fraction"), "difference"]) < 0.05


def test_tortuosity_side_by_side_for_straight_lamellae():
    import math

    import pytest

    pytest.importorskip("electromicro_dask.transport")
    x = np.arange(16)
    vol = np.broadcast_to(((x // 4) % 2).astype(np.uint8), (12, 12, 16)).copy()
    t = validate(_labels(vol), _labels(vol[0]), max_distance_voxels=4, tortuosity=True).table
    # Straight channels along z and y: tau = 1; no path along x (tau inf or NaN).
    assert abs(t.loc[("am", "tortuosity factor along z (2D input vs 3D)"), "generated"] - 1) < 1e-3
    row = t.loc[("am", "tortuosity factor along y (2D input vs 3D)")]
    assert abs(row["generated"] - 1) < 1e-3 and abs(row["training"] - 1) < 1e-3
    tx = t.loc[("am", "tortuosity factor along x (2D input vs 3D)"), "generated"]
    assert math.isinf(tx) or math.isnan(tx)
