"""The slicegan pipeline end to end through the runner, on small parameters."""

import json

import dask

from electromicro_dask import runner
from electromicro_dask.core.store import open_store, open_table


def test_pipeline_end_to_end_and_resume(tmp_path):
    recipe = {"pipeline": "slicegan", "parameters": {
        "section_size": 64, "voxel_size_um": 0.5, "particle_radius_um": [2.0, 0.5],
        "config": "tiny", "steps": 3, "checkpoint_dir": str(tmp_path / "ck"),
        "checkpoint_every": 2, "depth_voxels": 20, "chunk_voxels": 16}}
    store = tmp_path / "s.zarr"
    # This test runs on the threaded scheduler; if the session's LocalCluster client
    # exists (another test used it), dask would pick p2p rechunking, which needs it.
    with dask.config.set({"array.rechunk.method": "tasks"}):
        res = runner.run(recipe, store=store, out=tmp_path / "report", quiet=True)
        again = runner.run(recipe, store=store, out=tmp_path / "report", quiet=True)
    assert res.computed == ["training_image", "slicegan_model", "generated", "validation"]
    ds = open_store(store)
    assert ds["generated"].shape == (20, 64, 64)
    assert ds["generated"].attrs["phases"] == ds["training_image"].attrs["phases"]
    assert ds["generated"].data.chunksize == (16, 16, 16)
    assert open_table(store, "slicegan_model")["step"] == 3
    val = open_table(store, "validation")
    assert set(val["quantity"]) >= {"volume fraction", "interface area per volume (1/um)"}
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert "max_fraction_difference" in summary
    assert (tmp_path / "report" / "s2.png").is_file()
    assert again.computed == []


def test_recipe_file_is_valid():
    module, params = runner.validate_recipe("workflows/slicegan.yaml")
    assert params["config"] == "v1.1" and [s.name for s in module.stages(params)][-1] == "validation"
