"""The one recipe runner: ``electromicro run RECIPE --store PATH`` / :func:`run`.

A recipe (YAML) names a pipeline and its parameters. The runner validates it before
anything runs, then executes the pipeline's stages in order. Each stage's result is saved
with a provenance hash of (its inputs' hashes, its function, its parameters, the package
version); a stage whose hash already stands in the store is skipped, so an interrupted
run resumes where it stopped and a changed parameter recomputes only what depends on it
(DESIGN.md, "Workflows").
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import xarray as xr
import yaml

from . import pipelines
from .core import store as _store
from .core.errors import InputError

__all__ = ["run", "load_recipe", "validate_recipe", "RunResult"]

_RECIPE_KEYS = {"pipeline": "name of the pipeline", "parameters": "mapping of parameters",
                "description": "free text", "name": "run name", "store": "store path"}


@dataclass
class RunResult:
    """What a run did: per-stage status and times, the summary and where the report is."""

    store: Path
    pipeline: str
    stages: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    report: Path | None = None

    @property
    def skipped(self):
        return [s["stage"] for s in self.stages if s["status"] == "skipped"]

    @property
    def computed(self):
        return [s["stage"] for s in self.stages if s["status"] == "computed"]


def load_recipe(recipe):
    """Read a recipe from a YAML path, a YAML string or a mapping."""
    if isinstance(recipe, dict):
        return dict(recipe)
    text = None
    p = Path(str(recipe))
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise InputError("recipe", f"an existing YAML file, {str(p)!r} not found")
        text = p.read_text()
    else:
        text = str(recipe)
    try:
        out = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError("recipe", f"valid YAML ({exc})") from None
    if not isinstance(out, dict):
        raise InputError("recipe", "a YAML mapping with a 'pipeline' key")
    return out


def _type_ok(value, default):
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    if isinstance(default, dict):
        return isinstance(value, dict)
    return isinstance(value, type(default))


def validate_recipe(recipe):
    """Check a recipe and return ``(pipeline module, full parameters)``.

    Raises InputError for an unknown key, pipeline or parameter, or a value of the
    wrong type, naming it and the allowed values.
    """
    recipe = load_recipe(recipe)
    unknown = sorted(set(recipe) - set(_RECIPE_KEYS))
    if unknown:
        raise InputError(f"recipe.{unknown[0]}", f"one of the keys {sorted(_RECIPE_KEYS)}")
    if "pipeline" not in recipe:
        raise InputError("recipe.pipeline", f"a pipeline name, one of {sorted(pipelines.PIPELINES)}")
    module = pipelines.get(recipe["pipeline"])
    given = recipe.get("parameters") or {}
    if not isinstance(given, dict):
        raise InputError("recipe.parameters", "a mapping of parameter names to values")
    defaults = module.PARAMETERS
    for k, v in given.items():
        if k not in defaults:
            raise InputError(f"parameters.{k}", f"a parameter of pipeline "
                             f"{recipe['pipeline']!r}: one of {sorted(defaults)}")
        if not _type_ok(v, defaults[k]):
            raise InputError(f"parameters.{k}", f"a value of type {type(defaults[k]).__name__} "
                             f"(default {defaults[k]!r}), got {v!r}")
    params = {**defaults, **given}
    if hasattr(module, "validate"):
        module.validate(params)
    return module, params


def _qualname(func):
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}"


def _stored_hashes(path):
    """Hash of every variable and table already in the store."""
    out = {}
    if not (Path(path) / "zarr.json").is_file():
        return out
    ds = _store.open_store(path)
    for name, var in ds.data_vars.items():
        out[name] = var.attrs.get("provenance", {}).get("hash")
    for name in _store.tables(path):
        _t, prov = _store.open_table(path, name, with_provenance=True)
        out[name] = prov.get("hash")
    return out


def _load_input(path, name):
    if (Path(path) / name / "zarr.json").is_file():
        return _store.open_store(path)[name]
    return _store.open_table(path, name)


def _say(msg):
    print(f"[electromicro] {msg}", file=sys.stderr, flush=True)


def run(recipe, store=None, client=None, force=(), out=None, report=True, quiet=False,
        until=None):
    """Run a recipe against a store.

    Parameters
    ----------
    recipe : str, Path or dict
        YAML file, YAML text or mapping with ``pipeline`` and ``parameters``.
    store : str or Path, optional
        The sample store (``*.zarr``); default: the recipe's ``store`` key.
    client : distributed.Client, optional
        Cluster to run on; default: the current dask scheduler (a distributed client if
        one exists, else dask's threads).
    force : sequence of str
        Stages to recompute even if their hash is in the store; everything that depends
        on them is recomputed too.
    out : str or Path, optional
        Directory of the report (default: beside the store, ``<store>.report``).
    report : bool
        Write ``report.html``, ``summary.json`` and (on a distributed client) the dask
        performance report.
    until : str, optional
        Stop after this stage (e.g. prepare the input data on one cluster and process it
        on another; a later full run skips what is already stored). No report then.

    Returns
    -------
    RunResult

    Examples
    --------
    >>> import electromicro_dask as emd
    >>> res = emd.run("workflows/demo.yaml", store="sample.zarr")    # doctest: +SKIP
    >>> res.skipped                                                     # doctest: +SKIP
    []
    """
    recipe = load_recipe(recipe)
    module, params = validate_recipe(recipe)
    store = store or recipe.get("store")
    if not store:
        raise InputError("store", "a store path (argument or the recipe's 'store' key)")
    store = Path(store)
    stages = module.stages(params)
    if until is not None:
        at = [s.name for s in stages]
        if until not in at:
            raise InputError("until", f"a stage of this pipeline, one of {at}; got {until!r}")
        stages = stages[:at.index(until) + 1]
        report = False
    names = [n for st in stages for n in st.written]
    force = [force] if isinstance(force, str) else list(force)
    bad = [f for f in force if f not in names and f not in [s.name for s in stages]]
    if bad:
        raise InputError("force", f"stage names of this pipeline, one of {[s.name for s in stages]}; "
                         f"got {bad}")
    # A run owns its store: clear what an earlier killed write may have left.
    if _store.clear_staging(store) and not quiet:
        _say(f"removed leftovers of an interrupted write beside {store}")
    stored = _stored_hashes(store)
    made = set()
    for st in stages:
        for i in st.inputs:
            if i not in made and i not in stored:
                raise InputError("inputs", f"stage {st.name!r} reads {i!r}, which is neither in "
                                 f"the store {str(store)!r} nor made by an earlier stage")
        made.update(st.written)

    # Forced stages and everything downstream of them.
    dirty = set(force)
    for st in stages:
        if st.name in dirty or any(w in dirty for w in st.written) or any(i in dirty for i in st.inputs):
            dirty.update(st.written)
            dirty.add(st.name)

    out_dir = Path(out) if out else store.parent / f"{store.name}.report"
    result = RunResult(store=store, pipeline=recipe["pipeline"])
    ctx = contextlib.nullcontext()
    if client is not None:
        ctx = client.as_current()
    perf = contextlib.nullcontext()
    active = client
    if active is None:
        try:
            from distributed import get_client

            active = get_client()
        except (ImportError, ValueError):
            active = None
    if report and active is not None:
        from distributed import performance_report

        out_dir.mkdir(parents=True, exist_ok=True)
        perf = performance_report(filename=str(out_dir / "dask-performance.html"))
        if not quiet:
            _say(f"dashboard: {active.dashboard_link}")

    hashes = dict(stored)
    t_run = time.perf_counter()
    with ctx, perf:
        for st in stages:
            fn = _qualname(st.func)
            in_hashes = [hashes.get(i) for i in st.inputs]
            h = _store.provenance_hash(fn, st.params, in_hashes)
            have = all(stored.get(w) == h for w in st.written)
            if have and st.name not in dirty:
                result.stages.append({"stage": st.name, "status": "skipped", "hash": h, "seconds": 0.0})
                if not quiet:
                    _say(f"stage {st.name}: skipped (hash {h} already in the store)")
                for w in st.written:
                    hashes[w] = h
                continue
            if not quiet:
                _say(f"stage {st.name}: computing")
            t0 = time.perf_counter()
            inputs = [_load_input(store, i) for i in st.inputs]
            value = st.func(*inputs, **st.params)
            prov = {"function": fn, "parameters": st.params, "inputs": in_hashes, "hash": h,
                    "stage": st.name, "pipeline": recipe["pipeline"]}
            _write(value, store, st, prov)
            dt = time.perf_counter() - t0
            result.stages.append({"stage": st.name, "status": "computed", "hash": h, "seconds": dt})
            if not quiet:
                _say(f"stage {st.name}: done in {dt:.1f} s")
            for w in st.written:
                hashes[w] = h
                stored[w] = h

        if report and hasattr(module, "summarize"):
            summary, figures, tables = module.summarize(store, params)
            summary = dict(summary)
            summary["run"] = {"pipeline": recipe["pipeline"], "parameters": params,
                              "stages": result.stages,
                              "wall_seconds": round(time.perf_counter() - t_run, 2)}
            result.summary = summary
            from .report import write_report

            result.report = write_report(out_dir, title=recipe.get("name") or
                                         f"electromicro_dask: {recipe['pipeline']}",
                                         summary=summary, figures=figures, tables=tables)
            if not quiet:
                _say(f"report: {result.report}")
    return result


def _write(value, store, st, prov):
    if isinstance(value, xr.Dataset):
        missing = [w for w in st.written if w not in value]
        if missing:
            raise RuntimeError(f"stage {st.name!r} returned no variable {missing[0]!r}")
        # One computation for all outputs, so their shared upstream graph runs once.
        _store.save_many({w: value[w] for w in st.written}, store, provenance=prov)
    elif isinstance(value, xr.DataArray):
        _store.save(value, store, st.name, provenance=prov)
    elif isinstance(value, (pd.DataFrame, pd.Series, dict)):
        _store.save_table(value, store, st.name, provenance=prov)
    else:
        raise RuntimeError(f"stage {st.name!r} returned {type(value).__name__}; expected a "
                           "DataArray, Dataset, DataFrame, Series or dict")
