"""The ``electromicro`` command line: demo, run, status, ingest."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .core.errors import InputError


def _fail(exc):
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


@click.group()
@click.version_option(package_name="electromicro-dask")
def main():
    """Battery-electrode microscopy at any data size (dask, xarray, zarr)."""


def _client(cluster, n_workers):
    from .core.cluster import connect

    return connect(cluster, n_workers=n_workers)


@main.command()
@click.option("--size", default=128, show_default=True, help="Voxels per edge of the sample.")
@click.option("--out", default="demo-out", show_default=True, type=click.Path(),
              help="Output directory (store, report.html, summary.json).")
@click.option("--cluster", default=None, help="None (local), tcp://..., slurm, pbs, sge, k8s.")
@click.option("--workers", default=None, type=int, help="Number of workers.")
def demo(size, out, cluster, workers):
    """Run the main job on the built-in synthetic sample and write a report."""
    from .core.progress import show_progress
    from .runner import run

    show_progress(True)
    from .pipelines import demo as demo_pipeline

    params = dict(demo_pipeline.PARAMETERS, size=size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with _client(cluster, workers):
            res = run({"pipeline": "demo", "name": "electromicro_dask demo", "parameters": params},
                      store=out / "sample.zarr", out=out)
    except InputError as exc:
        _fail(exc)
    s = res.summary
    click.echo(f"report:  {res.report}")
    click.echo(f"summary: {out / 'summary.json'}")
    click.echo(f"voxel agreement with truth: {s['voxel_agreement_with_truth']:.4f}; "
               f"max fraction error vs target: {s['max_fraction_error_vs_target']:.4f}")


@main.command("run")
@click.argument("recipe", type=click.Path())
@click.option("--store", required=False, type=click.Path(), help="Sample store (*.zarr).")
@click.option("--out", default=None, type=click.Path(), help="Report directory.")
@click.option("--cluster", default=None, help="None (local), tcp://..., a scheduler file, slurm, pbs, sge, k8s.")
@click.option("--workers", default=None, type=int, help="Number of workers.")
@click.option("--force", multiple=True, help="Recompute this stage and its dependants (repeatable).")
@click.option("--until", default=None, help="Stop after this stage (no report).")
def run_cmd(recipe, store, out, cluster, workers, force, until):
    """Run a workflow recipe (YAML) against a store, skipping finished stages."""
    from .core.progress import show_progress
    from .runner import run, validate_recipe

    show_progress(True)
    try:
        validate_recipe(recipe)  # before a cluster is started
        with _client(cluster, workers):
            res = run(recipe, store=store, force=force, out=out, until=until)
    except InputError as exc:
        _fail(exc)
    click.echo(f"stages computed: {res.computed or 'none'}; skipped: {res.skipped or 'none'}")
    if res.report:
        click.echo(f"report: {res.report}")


@main.command()
@click.argument("store", type=click.Path())
def status(store):
    """List the variables and tables of a store with stage, parameters, hash and time."""
    import pandas as pd

    from .core.store import open_table, tables, variables

    try:
        df = variables(store)
    except InputError as exc:
        _fail(exc)
    rows = []
    for name in tables(store):
        _t, prov = open_table(store, name, with_provenance=True)
        rows.append({"name": name, "dims": "(table)", "shape": "", "dtype": "",
                     "function": prov.get("function", ""), "hash": prov.get("hash", ""),
                     "created": prov.get("created", ""), "parameters": str(prov.get("parameters", {}))})
    df = pd.concat([df, pd.DataFrame(rows)], ignore_index=True)
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        click.echo(df.drop(columns=["parameters"]).to_string(index=False))


@main.command()
@click.argument("src", type=click.Path())
@click.argument("store", type=click.Path())
@click.option("--name", default="raw", show_default=True, help="Variable name in the store.")
@click.option("--voxel-size", "voxel_size", default=None, help="um; one value or z,y,x.")
@click.option("--dataset", default=None, help="HDF5 dataset path.")
@click.option("--shape", default=None, help="Raw files: z,y,x.")
@click.option("--dtype", default=None, help="Raw files: numpy dtype, e.g. uint16.")
def ingest(src, store, name, voxel_size, dataset, shape, dtype):
    """Read SRC (TIFF, TIFF folder, HDF5, raw) lazily, rechunk and write it to STORE."""
    from .core.progress import show_progress
    from .io import ingest as _ingest

    show_progress(True)
    try:
        vs = None
        if voxel_size is not None:
            vals = [float(v) for v in voxel_size.split(",")]
            vs = vals[0] if len(vals) == 1 else tuple(vals)
    except ValueError:
        _fail(InputError("--voxel-size", f"one number or z,y,x in um, got {voxel_size!r}"))
    try:
        shp = tuple(int(v) for v in shape.split(",")) if shape else None
    except ValueError:
        _fail(InputError("--shape", f"z,y,x as integers, got {shape!r}"))
    try:
        _ingest(src, store, name=name, voxel_size=vs, dataset=dataset, shape=shp, dtype=dtype)
    except InputError as exc:
        _fail(exc)
    click.echo(f"wrote {name!r} to {store}")


if __name__ == "__main__":
    main()
