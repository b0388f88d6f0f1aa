import json

import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.runner import run

SMALL = {"size": 32, "voxel_size_um": 0.5, "particle_radius_um": [2.0, 0.4]}


def _recipe(**params):
    return {"pipeline": "demo", "parameters": {**SMALL, **params}}


def test_demo_recipe_runs_resumes_and_recomputes_only_dependants(tmp_path):
    store = tmp_path / "s.zarr"
    r1 = run(_recipe(), store=store, out=tmp_path / "rep", quiet=True)
    assert r1.skipped == []
    assert set(r1.computed) == {"truth", "raw", "filtered", "phases", "fractions", "profile",
                                "profile_truth", "agreement", "particles", "particle_props",
                                "particles_of_truth_phases", "particle_props_truth_phases",
                                "particle_props_truth"}
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["max_fraction_error_vs_target"] < 0.005
    assert (tmp_path / "rep" / "report.html").stat().st_size > 10_000
    phases_before = emd.open_store(store)["phases"].attrs["provenance"]["created"]

    r2 = run(_recipe(), store=store, out=tmp_path / "rep", quiet=True)
    assert r2.computed == []
    assert emd.open_store(store)["phases"].attrs["provenance"]["created"] == phases_before

    r3 = run(_recipe(median_size_voxels=5), store=store, out=tmp_path / "rep", quiet=True)
    untouched = {"truth", "raw", "profile_truth", "particles_of_truth_phases",
                 "particle_props_truth_phases", "particle_props_truth"}
    assert set(r3.computed) == {"filtered", "phases", "fractions", "profile", "agreement",
                                "particles", "particle_props"}
    assert set(r3.skipped) == untouched
    assert emd.open_store(store)["filtered"].attrs["provenance"]["parameters"] == {"size_voxels": 5}

    r4 = run(_recipe(median_size_voxels=5), store=store, force=["raw"], quiet=True, report=False)
    assert set(r4.skipped) == untouched - {"raw"}


def test_resume_after_interruption(tmp_path):
    """A run that lost a stage's variable (as if killed before writing it) recomputes only
    that stage and ends with the same store as an uninterrupted run."""
    recipe = _recipe()
    run(recipe, store=tmp_path / "ref.zarr", quiet=True, report=False)
    store = tmp_path / "s.zarr"
    run(recipe, store=store, quiet=True, report=False)
    emd.core.store.delete(store, "phases")
    again = run(recipe, store=store, quiet=True, report=False)
    assert again.computed == ["phases"]
    ref = emd.open_store(tmp_path / "ref.zarr")
    got = emd.open_store(store)
    assert sorted(ref.data_vars) == sorted(got.data_vars)
    for name in ref.data_vars:
        np.testing.assert_array_equal(ref[name].values, got[name].values)


@pytest.mark.parametrize("recipe, arg", [
    ({"pipeline": "demo", "paramters": {}}, "recipe.paramters"),
    ({"pipeline": "nope"}, "pipeline"),
    ({"pipeline": "demo", "parameters": {"sizee": 3}}, "parameters.sizee"),
    ({"pipeline": "demo", "parameters": {"size": "big"}}, "parameters.size"),
    ({"pipeline": "demo", "parameters": {"fractions": {"pore": 0.5, "binder": 0.5}}},
     "parameters.fractions"),
])
def test_bad_recipe_fails_before_anything(tmp_path, recipe, arg):
    store = tmp_path / "s.zarr"
    with pytest.raises(InputError) as e:
        run(recipe, store=store, quiet=True)
    assert e.value.argument == arg
    assert not store.exists()


def test_recipe_from_yaml_and_unknown_force(tmp_path):
    y = tmp_path / "r.yaml"
    y.write_text("pipeline: demo\nparameters:\n  size: 24\n  particle_radius_um: [2.0, 0.3]\n")
    with pytest.raises(InputError, match="force"):
        run(y, store=tmp_path / "s.zarr", force=["nothing"], quiet=True)
    with pytest.raises(InputError, match="recipe"):
        run(tmp_path / "missing.yaml", store=tmp_path / "s.zarr")


def test_until_stops_after_a_stage_and_the_full_run_resumes(tmp_path):
    store = tmp_path / "s.zarr"
    r1 = run(_recipe(), store=store, until="raw", quiet=True)
    assert set(r1.computed) == {"truth", "raw"}
    assert set(emd.open_store(store).data_vars) == {"truth_phases", "truth_particles", "raw"}
    assert not (tmp_path / "s.zarr.report").exists()
    r2 = run(_recipe(), store=store, quiet=True, report=False)
    assert set(r2.skipped) == {"truth", "raw"} and "phases" in r2.computed
    with pytest.raises(InputError, match="until"):
        run(_recipe(), store=store, until="nope", quiet=True)
