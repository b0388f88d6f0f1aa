"""The echem pipeline (issue 11) end to end through the runner, on tiny synthetic electrodes.

The recipes in workflows/ are only validated here (a full-size run is minutes of CPU per
discharge); the runs override them to 8 x 4 x 4 voxels, the Chen2020 set (the slower
seed-001 solid diffusion does not converge on so few voxels) and a 3.8 V cutoff.
"""

from pathlib import Path

import numpy as np
import pytest
import yaml

from electromicro_dask import runner
from electromicro_dask.core.store import open_store, open_table
from electromicro_dask.errors import InputError

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(voxel_size_um=2.0, size_um=[16.0, 8.0, 8.0], cutoff_V=3.8, device="cpu")


def _recipe(name, **over):
    rec = yaml.safe_load((ROOT / "workflows" / name).read_text())
    rec["parameters"].update(over)
    return rec


def test_seed001_recipe_runs_stores_reports_and_resumes(tmp_path):
    store = tmp_path / "s001.zarr"
    kw = dict(TINY, parameter_set="chen2020", calibration_max_evaluations=1)
    rec = _recipe("echem_seed001.yaml", scenarios=["pristine", "cei"], **kw)
    res = runner.run(rec, store=store, out=tmp_path / "rep", quiet=True)
    ds = open_store(store)
    seg = ds["synthetic_phases"]
    assert seg.dims == ("z", "y", "x") and seg.shape == (8, 4, 4)
    assert set(seg.attrs["phases"].values()) == {"pore", "cbd", "am", "crack"}
    for s in ("pristine", "cei"):
        prof, ce, sl = ds[f"sod_profile_{s}"], ds[f"c_e_profile_{s}"], ds[f"sod_slice_{s}"]
        assert prof.dims == ce.dims == ("z",) and sl.dims == ("z", "y")
        assert prof.attrs["units"] == "1" and ce.attrs["units"] == "mol/m^3"
        assert ds.z.attrs["units"] == "um" and np.allclose(prof.z, seg.z)
        p = prof.values
        assert np.all((p[np.isfinite(p)] > 0.2) & (p[np.isfinite(p)] < 1.0))
        assert np.all(ce.values[np.isfinite(ce.values)] > 0)
    cal = open_table(store, "film_calibration")
    assert cal["calibrated"] and cal["resistivity_ohm_m"] == 3.0e6   # one trial, as asked
    disc = open_table(store, "discharges")
    assert disc["reused_from_calibration"] == ["pristine", "cei"]   # no run twice
    table = open_table(store, "scenario_table")
    assert list(table.index) == ["pristine", "cei"]
    assert table.loc["pristine", "seed001_capacity_mAh_g"] == 120.0
    assert table.loc["cei", "seed001_penalty_mV"] == 43.8
    assert table.loc["pristine", "penalty_mV"] == 0.0 and table.loc["cei", "penalty_mV"] > 0
    assert table.loc["cei", "capacity_mAh_g"] < table.loc["pristine", "capacity_mAh_g"]
    assert (table["status"] == "cutoff").all() and (table["steps"] > 10).all()
    assert (table["lithium_error"] < 1e-6).all()
    curves = open_table(store, "discharge_curves")
    assert {"scenario", "time_s", "voltage_V", "capacity_mAh_g"} <= set(curves.columns)
    assert curves.groupby("scenario")["voltage_V"].last().max() == pytest.approx(3.8, abs=1e-3)
    html = (tmp_path / "rep" / "report.html").read_text()
    for fig in ("discharge_curves", "lithiation_profile", "electrolyte_profile", "sod_slices"):
        assert (tmp_path / "rep" / f"{fig}.png").is_file() and fig in html
    assert "seed001_capacity_mAh_g" in html and "Absolute capacities" in html
    assert "pristine highest capacity" in res.summary["checks"]

    # A longer scenario list recomputes the scenario stage and what follows it only.
    more = _recipe("echem_seed001.yaml", scenarios=["pristine", "cei", "thick_cei"], **kw)
    again = runner.run(more, store=store, out=tmp_path / "rep", quiet=True)
    assert {"synthetic_phases", "film_calibration"} <= set(again.skipped)
    assert "discharges" in again.computed
    table = open_table(store, "scenario_table")
    assert table.loc["thick_cei", "seed001_capacity_mAh_g"] == 92.7
    assert table.loc["thick_cei", "seed001_penalty_mV"] == 79.4
    # Twice the film at the same resistivity: more penalty, less capacity (seed 001 Fig. 4B).
    assert table.loc["thick_cei", "penalty_mV"] > 1.5 * table.loc["cei", "penalty_mV"]
    assert table.loc["thick_cei", "capacity_mAh_g"] < table.loc["cei", "capacity_mAh_g"]
    assert "sod_slice_thick_cei" in open_store(store)


def test_seed002_recipe_runs_stores_and_reports(tmp_path):
    store = tmp_path / "s002.zarr"
    rec = _recipe("echem_seed002.yaml", gammas=[0.06, 0.25], gamma_current_mA_cm2=1.0,
                  currents_mA_cm2=[0.5], **TINY)
    res = runner.run(rec, store=store, out=tmp_path / "rep", quiet=True)
    ds = open_store(store)
    assert ds["synthetic_phases"].shape == (8, 4, 4)
    assert set(ds["synthetic_phases"].attrs["phases"].values()) == {"pore", "cbd", "am"}
    tau = open_table(store, "tau_cbd")
    assert np.allclose(tau["gamma"], [0.06, 0.25])
    assert np.allclose(tau["tau_CBD"], 0.5 / tau["gamma"])
    assert np.allclose(tau["one_over_tau_table3"], 2 * tau["gamma"])
    # gamma 0.06 is 1/tau 0.12: k-means and Thresholding on the two-layer electrode.
    assert "k-means (TL)" in tau.loc[0, "seed002_table3"] and tau.loc[1, "seed002_table3"] == ""
    assert (tau["status"] == "cutoff").all() and (tau["capacity_mAh_g"] > 0).all()
    cur = open_table(store, "current_table")
    assert cur["current_mA_cm2"].tolist() == [0.5] and cur.loc[0, "gamma"] == 0.12
    curves = open_table(store, "discharge_curves")
    assert sorted(curves["sweep"].unique()) == ["current", "gamma"]
    imp = open_table(store, "impedance")
    assert imp["gamma"] == 0.12 and imp["pore_resistance"] > 0 and imp["tortuosity"] >= 0.5
    spec = open_table(store, "impedance_spectrum")
    assert list(spec.columns) == ["frequency_Hz", "z_real_ohm_cm2", "z_imag_ohm_cm2"]
    assert (spec["frequency_Hz"] > 0).all() and (spec["z_imag_ohm_cm2"] < 0).all()
    html = (tmp_path / "rep" / "report.html").read_text()
    for fig in ("discharge_curves", "lithiation_profile", "electrolyte_profile", "nyquist"):
        assert (tmp_path / "rep" / f"{fig}.png").is_file() and fig in html
    assert "tau_CBD" in html and res.summary["impedance"]["tortuosity"] > 0

    # The same electrode named as the input variable: every stage's inputs hash alike, so
    # nothing is recomputed.
    again = runner.run(_recipe("echem_seed002.yaml", input_variable="synthetic_phases",
                               gammas=[0.06, 0.25], gamma_current_mA_cm2=1.0,
                               currents_mA_cm2=[0.5], **TINY),
                       store=store, report=False, quiet=True)
    assert again.computed == []


@pytest.mark.parametrize("name,over,key", [
    ("echem_seed001.yaml", {"study": "seed003"}, "study"),
    ("echem_seed001.yaml", {"scenarios": ["cei", "thick_cei"]}, "scenarios"),
    ("echem_seed001.yaml", {"scenarios": ["pristine", "clogged"]}, "scenarios"),
    ("echem_seed001.yaml", {"fractions": {"am": 0.6, "cbd": 0.1, "pore": 0.2}}, "fractions"),
    ("echem_seed001.yaml", {"fractions": {"am": 0.6, "binder": 0.1, "pore": 0.3}}, "fractions"),
    ("echem_seed001.yaml", {"cutoff_V": 4.5}, "cutoff_V"),
    ("echem_seed001.yaml", {"voxel_size_um": 4.0}, "particle_radius_um"),
    ("echem_seed001.yaml", {"size_um": [60.0, 30.0]}, "size_um"),
    ("echem_seed001.yaml", {"c_rate": 0}, "c_rate"),
    ("echem_seed001.yaml", {"parameter_set": "nmc622"}, "parameter_set"),
    ("echem_seed001.yaml", {"device": "tpu"}, "device"),
    ("echem_seed001.yaml", {"calibration_max_evaluations": "8"}, "calibration_max_evaluations"),
    ("echem_seed002.yaml", {"gammas": []}, "gammas"),
    ("echem_seed002.yaml", {"currents_mA_cm2": [1.0, -3.0]}, "currents_mA_cm2"),
    ("echem_seed002.yaml", {"gamma": 0.0}, "gamma"),
    ("echem_seed002.yaml", {"separator_um": -1.0}, "separator_um"),
    ("echem_seed002.yaml", {"no_such_key": 1}, "no_such_key"),
    ("thickness_study.yaml", {"radius_factors": [0.5, 1.0]}, "radius_factors"),
    ("echem_seed002.yaml", {"measured_curves": {"cell A": "/no/such/file.csv"}},
     "measured_curves.cell A"),
])
def test_bad_parameter_fails_before_anything_is_written(tmp_path, name, over, key):
    store = tmp_path / "bad.zarr"
    with pytest.raises(InputError, match=rf"parameters\.{key}"):
        runner.run(_recipe(name, **over), store=store, out=tmp_path / "rep", quiet=True)
    assert not store.exists() and not (tmp_path / "rep").exists()


def test_missing_input_variable_fails_before_anything_is_computed(tmp_path):
    store = tmp_path / "none.zarr"
    with pytest.raises(InputError, match="inputs"):
        runner.run(_recipe("echem_seed001.yaml", input_variable="phases"), store=store,
                   quiet=True)
    assert not store.exists()


def test_workflow_files_parse_and_validate():
    module, p = runner.validate_recipe(ROOT / "workflows" / "echem_seed001.yaml")
    st = {s.name: s for s in module.stages(p)}
    assert list(st) == ["synthetic_phases", "film_calibration", "discharges", "scenario_table",
                        "discharge_curves", "profiles"]
    assert p["scenarios"] == ["pristine", "cei", "thick_cei", "cbd_clogging", "full_clogging"]
    assert p["parameter_set"] == "nmc811_seed001" and p["c_rate"] == 0.5
    assert p["cutoff_V"] == 3.5 and p["separator_um"] == 25.0 and p["target_penalty_mV"] == 43.8
    sp = st["synthetic_phases"].params
    shape = tuple(int(round(v / sp["voxel_size_um"])) for v in sp["size_um"])
    assert shape == (36, 16, 16)                    # the CPU-sized default (yaml comments)
    assert sp["fractions"] == {"am": 0.58, "cbd": 0.09, "pore": 0.29, "crack": 0.04}
    assert st["film_calibration"].params["needed"]
    assert len(st["profiles"].written) == 15

    module, p = runner.validate_recipe(ROOT / "workflows" / "echem_seed002.yaml")
    st = {s.name: s for s in module.stages(p)}
    assert {"gamma_sweep", "current_sweep", "impedance", "tau_cbd"} <= set(st)
    assert st["gamma_sweep"].params["current"] == 6.0
    assert st["current_sweep"].params["currents"] == [1.0, 3.0, 6.0, 8.0, 10.0, 12.0]
    assert {0.06, 0.12} <= set(st["gamma_sweep"].params["gammas"])
    assert st["current_sweep"].params["gamma"] == st["impedance"].params["gamma"] == 0.12
    # Defaults of the study fill what a recipe leaves out.
    module, p = runner.validate_recipe({"pipeline": "echem",
                                        "parameters": {"study": "seed002"}})
    sp = {s.name: s for s in module.stages(p)}["synthetic_phases"].params
    assert sp["size_um"] == [60.0, 20.0, 20.0] and "crack" not in sp["fractions"]

    # The thickness study's file and its defaults: every candidate electrode resolves its
    # particles (at least 1.5 voxels of mean radius).
    for recipe in (ROOT / "workflows" / "thickness_study.yaml",
                   {"pipeline": "echem", "parameters": {"study": "thickness"}}):
        module, p = runner.validate_recipe(recipe)
        st = {s.name: s for s in module.stages(p)}
        m = st["thickness_match"].params
        assert min(m["radius_factors"]) * m["radius_um"][0] >= 1.5 * m["voxel_size_um"]
        assert st["thickness_discharges"].params["thicknesses"] == [80.0, 160.0, 240.0]


def test_measured_curves_are_laid_over_the_discharges(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from electromicro_dask.pipelines import echem

    f = tmp_path / "m.csv"
    f.write_text("Capacity(mAh),Voltage(V)\n0,4.1\n1,3.8\n2,3.2\n")
    measured = echem._measured({"measured_curves": {"cell A": {"path": str(f),
                                                              "capacity_scale": 100.0}}})
    fig, ax = plt.subplots()
    echem._overlay_measured(ax, measured)
    (line,) = ax.get_lines()
    assert line.get_label() == "measured: cell A"
    np.testing.assert_allclose(line.get_xdata(), [0, 100, 200])
    plt.close(fig)


def test_thickness_study_matches_the_pore_tortuosity_and_discharges_each_thickness(tmp_path):
    from electromicro_dask.transport import tortuosity_factor

    store = tmp_path / "thick.zarr"
    rec = _recipe("thickness_study.yaml", voxel_size_um=2.0, size_um=[16.0, 8.0, 8.0],
                  fractions={"am": 0.45, "cbd": 0.15, "pore": 0.4},
                  particle_radius_um=[3.0, 0.6], parameter_set="chen2020", cutoff_V=3.8,
                  device="cpu", thicknesses_um=[12.0, 24.0], radius_factors=[1.0, 1.5])
    res = runner.run(rec, store=store, out=tmp_path / "rep", quiet=True)
    ref = open_store(store)["synthetic_phases"]
    match = open_table(store, "thickness_match")
    # the measured electrode's pore tortuosity factor and fractions
    tau = tortuosity_factor(ref, phase="pore", axis="z", device="cpu").tau
    assert match["pore_tau"] == pytest.approx(tau, rel=1e-6)
    v = ref.values
    for name, code in (("am", 2), ("cbd", 1), ("pore", 0)):
        assert ref.attrs["phases"][code] == name
        assert match["fractions"][name] == pytest.approx((v == code).mean())
    # the chosen radius is the candidate whose pore tortuosity is nearest (in log)
    err = [abs(np.log(c["pore_tau"] / tau)) for c in match["candidates"]]
    assert match["radius_um"] == match["candidates"][int(np.argmin(err))]["radius_um"]
    table = open_table(store, "thickness_table")
    assert list(table["thickness_um"]) == [12.0, 24.0]
    # electrodes with the measured fractions, discharged to the cutoff at C/3
    assert np.allclose(table["am_fraction"], match["fractions"]["am"], atol=0.05)
    assert (table["status"] == "cutoff").all() and (table["lithium_error"] < 1e-6).all()
    # twice the material at the same C-rate: more charge per area, twice the current
    a = table["areal_capacity_mAh_cm2"].to_numpy()
    assert a[1] > 1.3 * a[0]
    i = table["current_mA_cm2"].to_numpy()
    assert i[1] / i[0] == pytest.approx(2 * table["am_fraction"][1] / table["am_fraction"][0],
                                        rel=0.1)
    assert res.summary["checks"]["areal capacity rises with thickness"]
    # the percolation check against scipy's labelling of the same electrodes' pores
    from scipy import ndimage

    from electromicro_dask.pipelines.echem import make_electrode

    def spans(t):
        e = make_electrode([t, 8.0, 8.0], 2.0, match["fractions"], match["radius_um"], 1)
        lab, _ = ndimage.label(e.values == 0)
        return bool(set(np.unique(lab[0])) & set(np.unique(lab[-1])) - {0})

    spanning = [spans(t) for t in (12.0, 24.0)]
    check = "every electrode's pores percolate through the thickness"
    assert res.summary["checks"][check] == all(spanning)
    assert ("pores_not_percolating" in res.summary) == (not all(spanning))
    assert (tmp_path / "rep" / "discharge_curves.png").stat().st_size > 5000
    curves = open_table(store, "discharge_curves")
    assert set(curves["thickness_um"]) == {12.0, 24.0}
    with pytest.raises(InputError, match="thicknesses_um"):
        runner.run(_recipe("thickness_study.yaml", thicknesses_um=[80.0, 1.0]),
                   store=tmp_path / "bad.zarr", quiet=True)
