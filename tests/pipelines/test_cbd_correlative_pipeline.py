"""The cbd_correlative pipeline (issue 14) end to end through the runner: two synthetic
electrodes made to their recipes, a FIB-SEM volume per electrode in its own frame (known
rotation, offset and 2 % scale error) registered into the tomogram, compositions, the
network, twelve trinarizations, Table 2 over three cut-outs and the two-electrode report."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from electromicro_dask import measure, segment
from electromicro_dask.core.store import open_store, open_table
from electromicro_dask.errors import InputError
from electromicro_dask.runner import run

pytest.importorskip("torch")
pytest.importorskip("SimpleITK")

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(shape=[20, 24, 60], surface_scan_um=[9.0, 26.0], fib_edge_voxels=64, unet_steps=40, unet_batch_size=4,
             mlp_max_epochs=20, mlp_max_samples=4000, kmeans_sample_voxels=5000)


def _recipe(**over):
    rec = yaml.safe_load((ROOT / "workflows" / "cbd_correlative.yaml").read_text())
    rec["parameters"].update(over)
    return rec


def test_two_electrodes_from_recipe_to_report(tmp_path):
    rec = _recipe(**SMALL)
    store = tmp_path / "c.zarr"
    res = run(rec, store=store, out=tmp_path / "rep", quiet=True)
    ds = open_store(store)
    summ = res.summary["electrodes"]
    for e, cfg in rec["parameters"]["electrodes"].items():
        # the recipe's fractions (seed 002 section 2.1) are every method's target
        want = segment.fractions_from_recipe(cfg["solid_wt"], electrode_density_g_cm3=3.1,
                                             cbd_inner_porosity=0.5)
        got = open_table(store, f"{e}_recipe")
        assert got == pytest.approx(want) and sum(got.values()) == pytest.approx(1.0)
        assert summ[e]["thickness_um_from_loading"] == pytest.approx(10 * cfg["loading_mg_cm2"] / 3.1)
        # every trinarization realises them over the whole sample
        for var in ("thresholding", "kmeans", "nn_am_cond", "nn_p_cbd_am", "edx_closing"):
            f = measure.volume_fractions(ds[f"{e}_{var}"])
            assert max(abs(f[p] - want[p]) for p in want) < 0.005, (e, var, f)
        # registration against the known transform: within one coarse voxel, scale 2 %
        reg = summ[e]["registration"]
        # the SEM surface scan, located by SIFT in a tomogram slice, finds the FIB-SEM site
        # within two coarse voxels, and the registration starts there
        assert reg["surface_scan_site_error_coarse_voxels"] < 2.0, reg
        assert reg["surface_scan_inliers"] >= 8
        assert reg["max_position_error_coarse_voxels"] < 1.0, reg
        assert reg["scale_found"] == pytest.approx(1.02, rel=0.02)
        assert reg["rotation_error_deg"] < 1.0, reg
        info = ds[f"{e}_reg_am"].attrs["correlative"]
        assert min(info["fib_jaccard"].values()) > 0.9   # the FIB-SEM U-Net trinarization
        # compositions from the registered pair against the truth where fully covered
        assert summ[e]["registration"]["composition_mae"] <= 0.02, reg
        cov = ds[f"{e}_coverage"].values
        assert (cov == 1).sum() > 500 and (cov == 0).sum() > 0   # the FIB-SEM sees a part
        np.testing.assert_allclose(sum(ds[f"{e}_reg_{p}"].values for p in ("pore", "cbd", "am"))
                                   [cov == 1], 1.0, atol=1e-5)
        # the EDX line recovers the true CBD profile's gradient
        edx = summ[e]["edx"]
        assert edx["relative_gradient_per_um"] == pytest.approx(
            edx["true_relative_gradient_per_um"], abs=0.02)
        # Table 2: mean and spread over three cut-outs, per method
        t2 = open_table(store, f"{e}_descriptors")
        assert set(t2["method"]) == set(res.summary and summ[e]["accuracy_ranking"])
        assert (t2["std"] >= 0).all() and t2["std"].notna().all()
        assert len(summ[e]["accuracy_ranking"]) == 12
    # the two-layer electrode's CBD gradient is larger than the single layer's
    assert (summ["two_layer"]["edx"]["true_relative_gradient_per_um"]
            > summ["single_layer"]["edx"]["true_relative_gradient_per_um"])
    # Fig. 4: the single-layer electrode below the diagonal, the two-layer one above
    from electromicro_dask.pipelines.cbd_correlative import _two_electrode_matrix

    lo, up = (open_table(store, f"{e}_agreement") for e in ("single_layer", "two_layer"))
    m = _two_electrode_matrix(lo, up, "jaccard_cbd")
    for table, (i, j) in ((lo, (5, 2)), (up, (2, 5))):
        a, b = m.index[max(i, j)], m.columns[min(i, j)]
        row = table[((table["a"] == a) & (table["b"] == b)) | ((table["a"] == b) & (table["b"] == a))]
        assert m.iloc[i, j] == pytest.approx(float(row["jaccard_cbd"].iloc[0]))
    assert np.isnan(np.diag(m.values.astype(float))).all()
    rep = (tmp_path / "rep" / "report.html").read_text()
    for key in ("Table 2", "recipe vs realised", "lower: single_layer", "upper: two_layer"):
        assert key in rep, key
    for fig in ("agreement_matrices", "slices", "edx_profiles"):
        assert (tmp_path / "rep" / f"{fig}.png").stat().st_size > 10_000


def test_bad_recipes_are_rejected_before_anything_runs(tmp_path):
    bad_wt = {"nmc622": 93.5, "pvdf": 3.5}
    rec = _recipe(**SMALL)
    rec["parameters"]["electrodes"]["single_layer"]["solid_wt"] = bad_wt
    with pytest.raises(InputError, match="solid_wt"):
        run(rec, store=tmp_path / "a.zarr", quiet=True)
    rec = _recipe(electrodes={"a-b": {"solid_wt": bad_wt, "loading_mg_cm2": 50.0}})
    with pytest.raises(InputError, match="electrodes"):
        run(rec, store=tmp_path / "b.zarr", quiet=True)
    rec = _recipe(**SMALL)                # a surface scan whose plane and site are not given
    rec["parameters"]["electrodes"]["single_layer"]["surface_scan"] = "scan.tif"
    with pytest.raises(InputError, match="surface_scan_z_um.*fibsem_site_um"):
        run(rec, store=tmp_path / "d.zarr", quiet=True)
    assert not (tmp_path / "d.zarr").exists()
    # Table 3: a measured curve that is not there, a gamma that is not positive, a method
    # that does not exist
    rec = _recipe(**SMALL, table3=True)
    rec["parameters"]["electrodes"]["two_layer"]["discharge_curve"] = str(tmp_path / "no.csv")
    with pytest.raises(InputError, match="two_layer.discharge_curve"):
        run(rec, store=tmp_path / "e.zarr", quiet=True)
    assert not (tmp_path / "e.zarr").exists()
    with pytest.raises(InputError, match="table3_gammas"):
        run(_recipe(**SMALL, table3=True, table3_gammas=[0.1, -0.2]),
            store=tmp_path / "e.zarr", quiet=True)
    with pytest.raises(InputError, match="table3_methods"):
        run(_recipe(**SMALL, table3=True, table3_methods=["Otsu"]),
            store=tmp_path / "e.zarr", quiet=True)
    # columns wider than fit (SMALL: 30 um long side, so 2 x 2 places of at most 7.5 um)
    with pytest.raises(InputError, match="table3_width_um.*at most 7.5 um"):
        run(_recipe(**SMALL, table3=True, table3_columns=2, table3_width_um=8.0),
            store=tmp_path / "e.zarr", quiet=True)
    with pytest.raises(InputError, match="table3_columns"):
        run(_recipe(**SMALL, table3=True, table3_columns=40),
            store=tmp_path / "e.zarr", quiet=True)
    assert not (tmp_path / "e.zarr").exists()
    rec = _recipe(fib_edge_voxels=200)   # a FIB-SEM cube larger than the tomogram
    with pytest.raises(InputError, match="edge_voxels"):
        run(rec, store=tmp_path / "c.zarr", quiet=True)


def test_measured_electrode_from_files(tmp_path):
    """The measured-data path: tomogram, FIB-SEM volume, annotated slices and EDX map read
    from TIFF files (written here from a synthetic electrode whose truth the test keeps);
    the FIB-SEM file is a plain TIFF (coordinates from 0, voxel size given), its position
    in the tomogram given roughly (the tomogram's centre, 0.5 um from the truth)."""
    import tifffile

    from electromicro_dask import synth
    from electromicro_dask.io.export import to_tiff

    shape, kw = (16, 16, 48), dict(factor=4, voxel_size=0.5, particle_radius_um=(2.0, 0.5))
    want = segment.fractions_from_recipe(
        {"nmc622": 93.5, "carbon_black": 2.0, "graphite": 1.0, "pvdf": 3.5},
        electrode_density_g_cm3=3.1, cbd_inner_porosity=0.5)
    co = synth.correlative(shape, seed=5, fractions=want, blur_um=0.4, noise=0.03,
                           cbd_gradient=0.5, **kw).compute()
    fib = synth.correlative_fibsem(shape, seed=5, fractions=want, cbd_gradient=0.5,
                                   edge_voxels=48, **kw).compute()
    to_tiff(co["grey"], tmp_path / "tomo.tif")
    tifffile.imwrite(tmp_path / "fib.tif", fib["grey"].values)
    ann = {}
    for z in (12, 24, 36):
        # a person's labels: 1 pore, 2 CBD, 3 AM, 0 not labelled (a strip left out)
        lab = fib["truth"].isel(z=z).values.astype(np.uint8) + 1
        lab[:, :5] = 0
        tifffile.imwrite(tmp_path / f"ann{z}.tif", lab)
        ann[z] = str(tmp_path / f"ann{z}.tif")
    cbd = co["composition"].sel(phase="cbd")
    edx = cbd.mean("y") + np.random.default_rng(0).normal(0, 0.05, (16, 48)).astype("float32")
    to_tiff(edx, tmp_path / "edx.tif")
    electrode = {"solid_wt": {"nmc622": 93.5, "carbon_black": 2.0, "graphite": 1.0,
                              "pvdf": 3.5},
                 "loading_mg_cm2": 51.0, "tomogram": str(tmp_path / "tomo.tif"),
                 "fibsem": str(tmp_path / "fib.tif"), "fibsem_voxel_um": 1.02 * 0.125,
                 "fibsem_center_um": fib.attrs["center_um"],   # the tomogram's centre
                 "annotations": ann,
                 "label_names": {0: "unlabelled", 1: "pore", 2: "cbd", 3: "am"},
                 "edx_map": str(tmp_path / "edx.tif")}
    rec = _recipe(**dict(SMALL, shape=list(shape), fib_edge_voxels=48),
                  electrodes={"measured": electrode})
    store = tmp_path / "m.zarr"
    res = run(rec, store=store, out=tmp_path / "rep", quiet=True)
    ds = open_store(store)
    assert "measured_truth" not in ds and "measured_accuracy" not in res.summary
    assert ds["measured_grey"].shape == shape
    # the registration against the truth (the FIB-SEM file's coordinates start at 0)
    info = ds["measured_reg_am"].attrs["correlative"]
    assert info["true_transform"] is None and "fib_jaccard" not in info
    M, T = np.array(info["matrix"]), np.array(fib.attrs["fixed_to_moving"])
    o_f = np.array([float(fib[d][0]) for d in "zyx"])   # the FIB-SEM's origin, not in its file
    p = np.array(fib.attrs["center_um"]) + 2.0 * np.array(
        [[a, b, g] for a in (-1, 1) for b in (-1, 1) for g in (-1, 1)])
    true_q = p @ T[:3, :3].T + T[:3, 3] - o_f
    found_q = p @ M[:3, :3].T + M[:3, 3]
    assert np.abs(found_q - true_q).max() / 1.02 < 0.5   # um: within one coarse voxel
    # compositions against the truth where the FIB-SEM volume covers the tomogram
    cov = ds["measured_coverage"].values == 1
    err = np.mean([np.abs(ds[f"measured_reg_{q}"].values
                          - co["composition"].sel(phase=q).values)[cov].mean()
                   for q in ("pore", "cbd", "am")])
    assert err <= 0.03
    # every trinarization of the measured tomogram realises the recipe's fractions
    for var in ("thresholding", "kmeans", "nn_am_cond", "edx_closing"):
        f = measure.volume_fractions(ds[f"measured_{var}"])
        assert max(abs(f[q] - want[q]) for q in want) < 0.005, (var, f)
    # the EDX line from the file against the true CBD profile's line
    true = cbd.mean(("y", "x")).values
    slope = np.polyfit(cbd["z"].values, true, 1)[0] / true.mean()
    got = res.summary["electrodes"]["measured"]["edx"]["relative_gradient_per_um"]
    assert got == pytest.approx(slope, abs=0.02)
    assert (tmp_path / "rep" / "slices.png").exists()
    # a position 8 um off (the FIB-SEM cube is 6 um): the fit lands elsewhere and shares
    # too little information with the tomogram; the stage stops and says why, and what
    # the store holds stays as it was
    from electromicro_dask.core.errors import ConvergenceError

    before = ds["measured_reg_am"].values.copy()
    electrode["fibsem_center_um"] = [c + d for c, d in zip(fib.attrs["center_um"], (0, 0, 8))]
    with pytest.raises(ConvergenceError, match="measured's FIB-SEM volume.*did not converge"):
        run(rec, store=store, quiet=True)
    np.testing.assert_array_equal(open_store(store)["measured_reg_am"].values, before)
    electrode["fibsem_center_um"] = fib.attrs["center_um"]
    # a measured electrode needs all of its files
    del electrode["edx_map"]
    with pytest.raises(InputError, match="edx_map"):
        run(_recipe(electrodes={"measured": electrode}), store=tmp_path / "n.zarr", quiet=True)


def test_surface_scan_from_a_file_places_the_fibsem_site(tmp_path):
    """A measured SEM surface scan (a plain 2D TIFF: coordinates from 0, pixel size given,
    the site read off the image) is located in the tomogram slice it shows."""
    import tifffile

    from electromicro_dask import synth
    from electromicro_dask.pipelines.cbd_correlative import surface_site

    shape, kw = (16, 32, 64), dict(factor=4, voxel_size=0.5, seed=3, cbd_gradient=0.4)
    co = synth.correlative(shape, **kw)
    scan = synth.correlative_surface(shape, offset_um=(1.0, 2.0, -4.0), rotation_deg=5.0,
                                     extent_um=(13.0, 28.0), **kw)
    tifffile.imwrite(tmp_path / "scan.tif", scan.values)
    site = surface_site(co["grey"], None, None, None, min_inliers=8, seed=0,
                        surface_scan=str(tmp_path / "scan.tif"), surface_scan_pixel_um=0.125,
                        surface_scan_z_um=scan.attrs["z_um"],
                        fibsem_site_um=scan.attrs["site_in_scan_um"])
    true = np.array(scan.attrs["site_um"])
    assert site["site_um"][0] == pytest.approx(scan.attrs["z_um"]) == pytest.approx(true[0], abs=0.125)
    assert np.hypot(*(np.array(site["site_um"][1:]) - true[1:])) < 2 * 0.5, site
    assert site["angle_deg"] == pytest.approx(5.0, abs=1.5) and "true_site_um" not in site
