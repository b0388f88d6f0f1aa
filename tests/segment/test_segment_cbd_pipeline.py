"""The cbd_trinarization pipeline end to end through the runner (seed 002 §3, §5.1)."""

import pytest

from electromicro_dask.core.store import open_store, open_table
from electromicro_dask.runner import run


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    d = tmp_path_factory.mktemp("cbd")
    params = {"size": 18, "factor": 3, "train_size": 16, "mlp_max_epochs": 25,
              "mlp_max_samples": 4000, "kmeans_sample_voxels": 4000,
              "max_radius_voxels": 4.0, "chunk": 10}
    res = run({"pipeline": "cbd_trinarization", "parameters": params}, store=d / "s.zarr",
              out=d / "report", quiet=True)
    return res, d / "s.zarr"


def test_all_twelve_match_target_fractions(result):
    res, store = result
    err = res.summary["max_fraction_error_per_method"]
    assert len(err) == 12
    assert max(err.values()) < 0.005
    ds = open_store(store)
    for v in ("thresholding", "kmeans", "nn_am_cond", "nn_p_cbd_am", "edx_closing"):
        assert ds[v].attrs["phases"] == {0: "pore", 1: "cbd", 2: "am"}


def test_report_ranks_and_mlp_beats_threshold_on_cbd(result):
    res, store = result
    acc = open_table(store, "accuracy")
    assert list(acc["rank"]) == list(range(1, 13))
    assert (acc["fraction_equal"].diff().dropna() <= 0).all()
    j = acc["jaccard_cbd"]
    assert j["NN-AM-Cond"] > j["Thresholding"]
    ag = open_table(store, "agreement")
    assert len(ag) == 12 * 13 // 2
    assert (res.report).exists()


def test_rerun_skips_everything(result):
    res, store = result
    params = {"size": 18, "factor": 3, "train_size": 16, "mlp_max_epochs": 25,
              "mlp_max_samples": 4000, "kmeans_sample_voxels": 4000,
              "max_radius_voxels": 4.0, "chunk": 10}
    again = run({"pipeline": "cbd_trinarization", "parameters": params}, store=store,
                report=False, quiet=True)
    assert again.computed == []
