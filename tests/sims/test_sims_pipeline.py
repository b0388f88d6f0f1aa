"""The tofsims pipeline end to end through the runner, on a small synthetic cathode
section (the anode recipe is validated; it runs in benchmarks/bench_sims.py)."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from electromicro_dask import runner
from electromicro_dask.core.store import open_store, open_table
from electromicro_dask.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def _recipe(name, **over):
    rec = yaml.safe_load((ROOT / "workflows" / name).read_text())
    rec["parameters"].update(over)
    return rec


def test_cathode_workflow_runs_reports_and_resumes(tmp_path):
    rec = _recipe("tofsims_cathode.yaml", size=112, voxel_size_um=0.25, n_channels=128,
                  interphase_thickness_um=0.5, chunk=112)
    store = tmp_path / "c.zarr"
    res = runner.run(rec, store=store, out=tmp_path / "rep", quiet=True)
    ds = open_store(store)
    seg = ds["phases"]
    assert seg.attrs["phases"] == {0: "pore", 1: "cbd", 2: "nmc", 3: "cei"}
    assert seg.dims == ("y", "x") and seg.shape == (112, 112)
    assert {"cube", "si_PO3-", "total", "rel_cei", "phases_alt", "agglomerate_labels",
            "truth_phases", "truth_agglomerates"} <= set(ds.data_vars)
    s = res.summary
    assert s["truth"]["pixel_accuracy"] >= 0.93
    # PO3- as the CEI reference (the alternative) inflates the CEI against the
    # recommended P18OO2- + carbonates.
    assert s["alternative_fractions"]["cei"] > 1.3 * s["fractions"]["cei"]
    html = (tmp_path / "rep" / "report.html").read_text()
    for fig in ("overlay", "segmentation", "histograms", "agglomerates",
                "interphase_references"):
        assert fig in html
    ag = open_table(store, "agglomerates")
    lab = ds["agglomerate_labels"].values
    assert lab.max() == len(ag) > 5 and "coverage_cei_pct" in ag
    assert np.all((lab > 0) == (seg.values == 2))
    # Re-running skips every stage.
    again = runner.run(rec, store=store, report=False, quiet=True)
    assert again.computed == []


def test_recipes_validate():
    for name in ("tofsims_anode.yaml", "tofsims_cathode.yaml"):
        module, params = runner.validate_recipe(_recipe(name))
        names = [st.name for st in module.stages(params)]
        assert names[:4] == ["truth", "cube", "si", "segmentation"]
    with pytest.raises(InputError, match="agglomerate_phase"):
        runner.validate_recipe(_recipe("tofsims_anode.yaml", agglomerate_phase="nmc"))
    with pytest.raises(InputError, match="kind"):
        runner.validate_recipe(_recipe("tofsims_anode.yaml", kind="separator"))
