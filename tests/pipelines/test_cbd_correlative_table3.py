"""Seed 002 Table 3 in the cbd_correlative pipeline: the CBD gamma per method from resolved
lithiations on full-thickness columns, against layered structures with known answers."""

import numpy as np
import pytest


def _layered(row):
    from electromicro_dask.core import as_segmentation

    a = np.broadcast_to(np.asarray(row, "uint8"), (8, 4, len(row))).copy()
    return as_segmentation(a, phases={0: "pore", 1: "cbd", 2: "am"}, voxel_size=2.0)


@pytest.mark.slow
def test_table3_recovers_a_known_gamma_and_follows_the_cbd(tmp_path):
    from electromicro_dask.pipelines import cbd_correlative as cc

    # All electrolyte sits in the CBD (seed 002's situation at 6 mA/cm^2, where gamma is the
    # one free parameter). A 16 um slab stands for a 64 um electrode (thickness-similar).
    # Two periods side by side: the 'measured' curve comes from the truth's second 8 um
    # column, held out from the first one, which the methods are simulated on.
    truth = _layered([2, 2, 1, 1] * 2)
    # half the electrolyte path: in 1D terms it needs twice the gamma (0.12) to carry as much
    less_cbd = _layered([2, 2, 2, 1] * 2)
    kw = dict(thickness_um=64.0, current=6.0, columns=1, width_um=8.0, cutoff=3.5,
              device="cpu")
    meas = cc.discharge_curve(truth, true_gamma=0.06, **kw)
    assert meas["thickness_ratio"] == pytest.approx(0.25)
    t3 = cc.tau_cbd(meas, truth, less_cbd, names=["truth", "less_cbd"],
                    gammas=[0.06, 0.12, 0.24], **kw)
    rows = {r["method"]: r for r in t3["rows"]}
    assert rows["truth"]["gamma"] == 0.06 and rows["truth"]["rms_mAh_g"] < 1.0
    assert rows["truth"]["electrolyte_cut_off"] == rows["less_cbd"]["electrolyte_cut_off"] == 0
    assert rows["truth"]["one_over_tau"] == pytest.approx(0.12)
    assert rows["truth"]["tau_CBD"] == pytest.approx(0.5 / 0.06)
    assert rows["less_cbd"]["gamma"] == 0.12 and not rows["less_cbd"]["at_grid_edge"]
    # the search has something to choose from: capacity rises with gamma
    caps = [r["capacity"] for r in t3["runs"] if r["method"] == "truth"]
    assert caps[0] < caps[1] < caps[2]
    # a measured curve from a CSV takes the synthetic one's place
    csv = tmp_path / "cell.csv"
    csv.write_text("Capacity/mAh/g,Ewe/V\n" + "\n".join(
        f"{q},{v}" for q, v in zip(meas["capacity"], meas["voltage"])))
    read = cc.discharge_curve(path=str(csv), **kw)
    assert read["capacity"] == pytest.approx(meas["capacity"])
    # the report's Table 3 and overlay of the measured and best-matching curves
    from electromicro_dask.core.store import save_table

    save_table(meas, tmp_path / "t.zarr", "cell_discharge_curve")
    summary, figures, tables = {"electrodes": {"cell": {}}}, {}, {}
    cc._report_table3(tmp_path / "t.zarr", {"cell": t3}, summary, figures, tables)
    (title, table), = tables.items()
    assert title.startswith("Table 3") and "0.25" in title
    assert table.loc["less_cbd", "cell 1/tau"] == pytest.approx(0.24)
    assert table.loc["truth", "cell tau"] == pytest.approx(0.5 / 0.06, rel=1e-3)
    assert summary["electrodes"]["cell"]["table3"]["truth_recovers_true_gamma"]
    lines = figures["discharge_curves"].axes[0].get_lines()
    assert len(lines) == 3   # the two best matches and the measured curve


def test_table3_measured_columns_are_held_out_from_the_methods():
    from electromicro_dask.core import as_volume
    from electromicro_dask.pipelines import cbd_correlative as cc

    v = as_volume(np.zeros((4, 8, 48), "uint8"), voxel_size=0.5)
    spans = {h: [(float(c.x[0]), float(c.x[-1])) for c in cc._columns(v, 3, 4.0, held_out=h)]
             for h in (False, True)}
    assert len(spans[False]) == len(spans[True]) == 3
    # the methods' and the measurement's columns alternate along x and never overlap
    edges = sorted(spans[False] + spans[True])
    assert all(a[1] < b[0] for a, b in zip(edges, edges[1:]))
    assert [s in spans[False] for s in edges] == [True, False] * 3


def test_table3_reports_a_column_walled_off_by_a_particle_layer(caplog):
    from electromicro_dask.pipelines import cbd_correlative as cc

    a = _layered([2, 2, 1, 1]).values.copy()
    a[4] = 2     # one solid AM layer: the CBD below it (z 0-3) has no path to the separator
    walled = _layered([2, 2, 1, 1]).copy(data=a)
    meas = {"capacity": [0.0, 10.0], "voltage": [4.0, 3.6]}
    t3 = cc.tau_cbd(meas, walled, names=["walled"], gammas=[0.06], thickness_um=64.0,
                    current=6.0, columns=1, width_um=8.0, cutoff=3.5, device="cpu")
    # 4 of the 7 CBD layers (4 x 4 x 2 voxels each) are cut off
    assert t3["rows"][0]["electrolyte_cut_off"] == pytest.approx(4 / 7)
    assert "cannot reach the separator" in caplog.text and "walled" in caplog.text
