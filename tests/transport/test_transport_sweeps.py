"""Sweeps of transport solves through a real dask cluster."""

import numpy as np
import pytest

from electromicro_dask.core import as_segmentation
from electromicro_dask.errors import InputError
from electromicro_dask.transport import effective_conductivity, sweep, tortuosity_factor
from electromicro_dask.transport.sweeps import _gpu_workers


def _layers():
    a = np.zeros((12, 6, 6), "uint8")
    a[4:9] = 1          # a CBD layer across z, parallel to y and x
    return as_segmentation(a, phases={0: "pore", 1: "cbd"}, voxel_size=0.5)


def test_gamma_sweep_on_cluster_matches_layer_means(client):
    seg = _layers()
    gammas = [0.02, 0.05, 0.1, 0.2, 0.4, 0.8]
    cases = [{"phases": seg, "conductivities": {"pore": 1.0, "cbd": g}, "axis": ax,
              "device": "cpu", "dtype": "float64", "tol": 1e-9}
             for g in gammas for ax in ("z", "x")]
    assert not _gpu_workers(client)            # plain tasks: nothing waits for a GPU
    table = sweep(effective_conductivity, cases, client=client)
    assert len(table) == 12
    assert {"conductivities", "axis", "sigma_eff", "tau", "iterations", "converged"} <= \
        set(table.columns)
    assert table.converged.all()
    f = 5 / 12
    for (g, ax), (_, row) in zip([(g, ax) for g in gammas for ax in ("z", "x")],
                                 table.iterrows()):
        assert row.axis == ax
        expected = 1 / ((1 - f) + f / g) if ax == "z" else (1 - f) + f * g
        assert row.sigma_eff == pytest.approx(expected, rel=1e-6)


def test_sweep_without_client_uses_local_scheduler():
    seg = _layers()
    table = sweep(tortuosity_factor, [{"phases": seg, "axis": ax, "device": "cpu"}
                                      for ax in ("y", "x")])
    assert list(table.axis) == ["y", "x"]
    np.testing.assert_allclose(table.tau, 1.0, atol=1e-5)
    assert table.phases.iloc[0].startswith("<DataArray")


def test_sweep_rejects_bad_cases():
    with pytest.raises(InputError, match="cases"):
        sweep(tortuosity_factor, [])
    with pytest.raises(InputError, match="cases"):
        sweep(tortuosity_factor, {"axis": "z"})
    with pytest.raises(InputError, match="fn"):
        sweep("tortuosity_factor", [{}])
