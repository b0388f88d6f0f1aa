"""describe(): every descriptor in one call, consistent with the single functions."""
import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask.measure.connectivity import connectivity
from electromicro_dask.measure.describe import describe
from electromicro_dask.measure.surface import surface_area


def test_describe_tables():
    ds = emd.synth.electrode((24, 24, 24), voxel_size=0.5,
                             fractions={"am": 0.5, "cbd": 0.15, "pore": 0.35},
                             particle_radius_um=(2.5, 0.3), seed=1, chunks=(11, 13, 24))
    seg = ds["phases"]
    t = describe(seg, r_max_um=3.0, phase_names=["pore"])
    sc = t["scalars"]
    assert set(sc.index) == {"pore"}
    assert t["interfaces"].shape == (3, 3)
    assert t["profile"].sum(axis=1).to_numpy() == pytest.approx(1.0)
    np.testing.assert_allclose(sc["surface_area_um-1"], surface_area(seg)[sc.index])
    c = connectivity(seg, "pore", axis="z")
    assert sc.loc["pore", "n_clusters"] == c.n_clusters
    assert (sc["constrictivity"].dropna() <= 1.5).all()
    for key in ("interfaces", "profile", "size_distribution", "porosimetry",
                "correlation", "geodesic"):
        assert key in t and len(t[key]) > 0
    assert set(t["correlation"].phase_a) == {"pore"}
    small = describe(seg, include=(), phase_names=None)
    assert set(small["scalars"].index) == {"pore", "cbd", "am"}
    assert small["scalars"]["volume_fraction"].sum() == pytest.approx(1.0)
