"""Geodesic tortuosity against straight channels and skimage.graph.MCP_Geometric."""
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.graph import MCP_Geometric

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.measure.geodesic import geodesic_tortuosity


def _seg(im, phases, voxel=1.0, chunks="auto"):
    seg = emd.as_volume(np.asarray(im, "uint8"), voxel_size=voxel, chunks=chunks)
    seg.attrs["phases"] = phases
    return seg


def _maze(shape=(36, 30, 28), seed=4):
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.random(shape), 1.6)
    return f > np.quantile(f, 0.5)


def _mcp_reference(im, spacing, axis=0):
    costs = np.where(im, 1.0, -1.0)
    m = MCP_Geometric(costs, sampling=spacing)
    starts = [tuple(np.insert(p, axis, 0)) for p in np.argwhere(np.take(im, 0, axis=axis))]
    cum, _ = m.find_costs(starts)
    return np.take(cum, -1, axis=axis)


def test_straight_channels_are_one():
    im = np.zeros((30, 20, 20), "uint8")
    im[:, 2:5, 2:5] = 1
    im[:, 10:12, 14:19] = 1
    for chunks in [(30, 20, 20), (7, 9, 11)]:
        g = geodesic_tortuosity(_seg(im, {0: "am", 1: "pore"}, voxel=(0.5, 0.2, 0.2),
                                     chunks=chunks), "pore", axis="z")
        assert g.mean == pytest.approx(1.0, abs=1e-12)
        assert g.reached_fraction == 1.0
        assert len(g.distribution) == 9 + 10
    # along x the same channels do not reach the far face except where they run along x
    im2 = np.zeros((10, 10, 25), "uint8")
    im2[4, 4, :] = 1
    g = geodesic_tortuosity(_seg(im2, {0: "am", 1: "pore"}, chunks=(5, 5, 7)), "pore", "x")
    assert g.mean == pytest.approx(1.0)


def test_matches_mcp_geometric_on_maze():
    im = _maze()
    spacing = (1.0, 0.5, 0.5)
    ref = _mcp_reference(im, spacing)
    ref_ok = np.isfinite(ref) & im[-1]
    for chunks in [im.shape, (7, 11, 9)]:
        g = geodesic_tortuosity(_seg(im, {0: "am", 1: "pore"}, voxel=spacing, chunks=chunks),
                                "pore", axis="z")
        d = g.distribution
        iy = np.rint(d.y_um / 0.5).astype(int)
        ix = np.rint(d.x_um / 0.5).astype(int)
        assert len(d) == ref_ok.sum()
        np.testing.assert_allclose(d.length_um, ref[iy, ix], rtol=1e-12)
        assert g.mean == pytest.approx((ref[ref_ok] / ((im.shape[0] - 1) * 1.0)).mean())
        assert g.reached_fraction == pytest.approx(ref_ok.sum() / im[-1].sum())
        assert g.mean > 1.0


def test_2d_and_errors():
    im = _maze((40, 30), seed=1)
    ref = _mcp_reference(im, (1.0, 1.0))
    g = geodesic_tortuosity(_seg(im, {0: "am", 1: "pore"}, chunks=(9, 7)), "pore", axis="y")
    ok = np.isfinite(ref) & im[-1]
    np.testing.assert_allclose(np.sort(g.distribution.length_um), np.sort(ref[ok]))
    seg = _seg(im, {0: "am", 1: "pore"})
    with pytest.raises(InputError, match="axis"):
        geodesic_tortuosity(seg, "pore", axis="z")
    with pytest.raises(InputError, match="phase"):
        geodesic_tortuosity(seg, "cbd", axis="y")


def test_block_edge_follows_worker_memory_and_result_does_not():
    """On small workers the block solves use smaller blocks; the distances stay those of
    MCP_Geometric."""
    import dask
    from distributed import Client, LocalCluster

    from electromicro_dask.measure import geodesic

    im = _maze((80, 40, 40), seed=9)
    seg = _seg(im, {0: "am", 1: "pore"}, chunks=(80, 40, 40))
    ref = _mcp_reference(im, (1.0, 1.0, 1.0))
    off = {"distributed.worker.memory." + k: False
           for k in ("target", "spill", "pause", "terminate")}
    with dask.config.set(off), LocalCluster(n_workers=1, processes=False,
                                            memory_limit="100MiB",
                                            dashboard_address=":0") as cluster, \
            Client(cluster):
        edge = geodesic._block_edge()
        g = geodesic_tortuosity(seg, "pore", axis="z")
    assert edge == 27  # (100 MiB / 8 / 600 B) ** (1/3)
    assert geodesic._block_edge() == geodesic._MAX_BLOCK  # no client: the default
    reached = np.isfinite(ref) & im[-1]
    np.testing.assert_allclose(np.sort(g.distribution["length_um"].to_numpy()),
                               np.sort(ref[reached]), rtol=1e-9)
