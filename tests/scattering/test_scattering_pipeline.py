"""The swaxs_ct pipeline end to end through the runner, on a small synthetic cell."""

import json

import numpy as np
import pytest

pytest.importorskip("skimage")

from electromicro_dask import pipelines, runner  # noqa: E402
from electromicro_dask.core.store import open_store, open_table  # noqa: E402


def test_swaxs_ct_pipeline(tmp_path, monkeypatch):
    monkeypatch.setitem(pipelines.PIPELINES, "swaxs_ct", "electromicro_dask.pipelines.swaxs_ct")
    recipe = tmp_path / "swaxs.yaml"
    recipe.write_text(
        "pipeline: swaxs_ct\nparameters:\n  size: 64\n  pixel_um: 36.0\n  n_angles: 60\n"
        "  n_saxs: 200\n  n_waxs: 300\n  sart_iterations: 3\n")
    runner.run(str(recipe), store=str(tmp_path / "s.zarr"), out=str(tmp_path / "rep"),
               quiet=True)
    ds = open_store(tmp_path / "s.zarr")
    for v in ("map_lic6", "saxs_intensity", "d_star_nm", "anode_labels", "truth_labels"):
        assert v in ds and ds[v].dims == ("y", "x")
    un = open_table(tmp_path / "s.zarr", "unrolling")
    assert abs(un["pitch_um"] - 255.0) <= 10.0
    ag = open_table(tmp_path / "s.zarr", "agglomerates")
    assert "d_eq_um" in ag and len(ag) >= 3
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert np.isfinite(summary["d_star_median_nm"])
