"""size_distribution, cluster statistics and the figure helper."""

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi
from matplotlib.figure import Figure

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.label import (cluster_stats, connected_components,
                                     largest_cluster_fraction, plot_size_distribution,
                                     regionprops, size_distribution)


def test_number_and_volume_weighting():
    d = np.array([1.0, 1.0, 1.0, 3.0])
    props = pd.DataFrame({"equivalent_diameter_um": d, "volume_um3": np.pi / 6 * d**3})
    num = size_distribution(props, bins=[0, 2, 4])
    vol = size_distribution(props, weight="volume", bins=[0, 2, 4])
    assert num["share"].tolist() == [0.75, 0.25]
    # three spheres of volume 1 against one of 27: 3/30 and 27/30
    np.testing.assert_allclose(vol["share"], [0.1, 0.9])
    np.testing.assert_allclose(vol["centre_um"], [1.0, 3.0])
    assert vol.attrs["d50_um"] == 3.0 and num.attrs["d50_um"] == 1.0
    assert num["cumulative"].iloc[-1] == pytest.approx(1.0)
    with pytest.raises(InputError, match="weight"):
        size_distribution(props, weight="mass")
    with pytest.raises(InputError, match="bins"):
        size_distribution(props, bins=[2, 1])


def test_cluster_stats_against_scipy():
    rng = np.random.default_rng(3)
    mask = ndi.gaussian_filter(rng.random((30, 28, 26)), 1.0) > 0.53
    ref, n = ndi.label(mask)
    sizes = np.bincount(ref.ravel())[1:]
    m = emd.as_volume(mask, voxel_size=0.5, chunks=(7, 9, 11))
    stats = cluster_stats(m)
    assert stats["n_clusters"] == n
    assert stats["largest_fraction"] == pytest.approx(sizes.max() / sizes.sum())
    assert stats["phase_volume_um3"] == pytest.approx(mask.sum() * 0.125)
    assert largest_cluster_fraction(m) == stats["largest_fraction"]


def test_cluster_stats_of_a_phase():
    ds = emd.synth.electrode((24, 24, 24), voxel_size=0.5, seed=1, chunks=(9, 10, 11))
    stats = cluster_stats(ds["phases"], phase="cbd", connectivity=3)
    cbd = ds["phases"].values == 1
    ref, n = ndi.label(cbd, np.ones((3, 3, 3)))
    assert stats["n_clusters"] == n
    assert stats["largest_fraction"] == pytest.approx(np.bincount(ref.ravel())[1:].max()
                                                      / cbd.sum())


def test_figure_with_coverage():
    g = np.mgrid[-12:13, -12:13, -12:13]
    ball = (g**2).sum(0) <= 64
    seg = np.where(g[0] > 0, 1, 0).astype(np.uint8)
    seg[ball] = 2
    phases = emd.as_segmentation(emd.as_volume(seg, voxel_size=0.5),
                                 phases={0: "pore", 1: "cbd", 2: "am"})
    props = regionprops(connected_components(phases, phase="am"), phases=phases)
    fig = plot_size_distribution(props)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert fig.axes[2].get_ylabel() == "surface coverage"
    fig2 = plot_size_distribution(props.drop(columns=[c for c in props if "coverage" in c]))
    assert len(fig2.axes) == 2
