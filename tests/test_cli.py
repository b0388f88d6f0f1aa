import json
import subprocess
import sys

EXE = [sys.executable, "-m", "electromicro_dask.cli"]


def test_demo_command_writes_report(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(EXE + ["demo", "--size", "40", "--out", str(out), "--workers", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Dashboard: http" in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["voxel_agreement_with_truth"] > 0.8
    assert summary["max_fraction_error_vs_target"] < 0.005
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2
    assert (out / "dask-performance.html").exists()
    # status lists variables and tables with their provenance.
    st = subprocess.run(EXE + ["status", str(out / "sample.zarr")], capture_output=True,
                        text=True, timeout=120)
    assert st.returncode == 0
    for name in ("truth_phases", "raw", "filtered", "phases", "agreement"):
        assert name in st.stdout


def test_run_command_bad_recipe_exit_code(tmp_path):
    y = tmp_path / "r.yaml"
    y.write_text("pipeline: demo\nparameters:\n  noise_level: 3\n")
    proc = subprocess.run(EXE + ["run", str(y), "--store", str(tmp_path / "s.zarr")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "parameters.noise_level" in proc.stderr
    assert not (tmp_path / "s.zarr").exists()


def test_ingest_command_bad_file(tmp_path):
    bad = tmp_path / "x.tif"
    bad.write_bytes(b"not a tiff")
    proc = subprocess.run(EXE + ["ingest", str(bad), str(tmp_path / "s.zarr"), "--voxel-size", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "error:" in proc.stderr


def test_run_command_until(tmp_path):
    y = tmp_path / "r.yaml"
    y.write_text("pipeline: demo\nparameters:\n  size: 24\n  voxel_size_um: 0.5\n")
    proc = subprocess.run(EXE + ["run", str(y), "--store", str(tmp_path / "s.zarr"),
                                 "--until", "raw", "--workers", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "stages computed: ['truth', 'raw']" in proc.stdout
    assert "report:" not in proc.stdout
