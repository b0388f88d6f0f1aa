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
    store = tmp_path / "s.zarr"
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    # fresh and aged cells side by side, each against its own truth
    for cell, lic6, d_star in (("fresh", 0.8, 12.0), ("aged", 0.1, 14.0)):
        for v in ("map_lic6", "saxs_intensity", "d_star_nm", "anode_labels", "truth_labels",
                  "ct_xray", "ct_neutron"):
            assert ds[f"{cell}_{v}"].dims == ("y", "x")
        un = open_table(store, f"{cell}_unrolling")
        assert abs(un["pitch_um"] - 255.0) <= 10.0
        ag = open_table(store, f"{cell}_agglomerates")
        assert "d_eq_um" in ag and len(ag) >= 3
        s = summary[cell]
        assert abs(s["d_star_median_nm"] - d_star) <= 0.6
        strip = open_table(store, f"{cell}_unwound")
        assert strip["sense"] == 1 and np.asarray(strip["cu"]).shape == (
            len(strip["u_um"]), len(strip["s_um"]))
        reg = s["registration"]
        assert reg["converged"], reg["reason"]
        # the roll is nearly z-invariant (agglomerates are its only height landmarks), so z
        # is the loosest direction: within 1.5 scattering pixels at the volume corners
        assert reg["max_error_um"] <= 1.5 * 36.0
        assert abs(reg["angle_deg"] - reg["true_angle_deg"]) <= 0.3
        assert abs(reg["slice_index"] - reg["true_slice_index"]) <= 1
    # the ageing shows: LiC6 gives way to LiC12 (truth: 80 % vs 10 % of the turns)
    fresh, aged = summary["fresh"]["anode_phase_share"], summary["aged"]["anode_phase_share"]
    assert fresh["lic6"] > aged["lic6"] + 0.25 and aged["lic12"] > fresh["lic12"] + 0.25
    for cell in ("fresh", "aged"):
        measured, truth = (summary[cell][k] for k in ("anode_phase_share",
                                                       "anode_phase_share_truth"))
        assert all(abs(measured[k] - truth[k]) <= 0.15 for k in truth), (cell, measured, truth)
    assert summary["fresh"]["d_star_median_nm"] < summary["aged"]["d_star_median_nm"]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "cells" in html and "registration" in html
