"""Bounded memory of the PFIB chain (issue 13): pore-back correction, four-phase segmentation,
cracks, contact area, CBD network and profile through the runner on a real LocalCluster
whose workers have a memory limit below the size of the stack.

    python benchmarks/bench_pfib_memory.py [--shape 128 896 896] [--workers 2]
                                           [--memory-limit 300MiB]

The synthetic input (stages ``truth`` and ``stack`` of ``workflows/pfib_seed001.yaml`` with
one sample) is made first on a cluster of its own; rendering a synthetic stack is not part of
the method. The measured run then computes every later stage on the small workers, with the
per-worker process memory sampled from the scheduler; a worker that dies for memory shows as
a changed worker set. Writes benchmarks/results/pfib_memory.md.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from _memory import measured_run, stage_rows, tune_malloc  # noqa: E402

HERE = Path(__file__).resolve().parent
RECIPE = HERE.parent / "workflows" / "pfib_seed001.yaml"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[128, 896, 896])
    ap.add_argument("--chunk", type=int, nargs=3, default=[128, 128, 128])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="300MiB")
    ap.add_argument("--prepare-memory-limit", default="4GiB")
    ap.add_argument("--out", default=str(HERE / "results" / "pfib_memory.md"))
    args = ap.parse_args()

    from dask.utils import parse_bytes
    from distributed import Client, LocalCluster

    import electromicro_dask as emd
    from electromicro_dask.runner import validate_recipe

    recipe = yaml.safe_load(RECIPE.read_text())
    recipe["parameters"].update(samples={"pristine": {"cycling": 0.0, "contact_loss": 0.0}},
                                shape=list(args.shape), chunk=list(args.chunk),
                                wetting_samples=[], flow_samples=[])
    limit = parse_bytes(args.memory_limit)
    n = int(np.prod(args.shape))
    tmp = tempfile.TemporaryDirectory(prefix="pfibmem-")
    store = Path(tmp.name) / "sample.zarr"
    t = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1,
                      memory_limit=args.prepare_memory_limit, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        emd.run(recipe, store=store, client=client, until="pristine_stack", quiet=False)
    prep = time.perf_counter() - t
    stack_bytes = emd.open_store(store)["pristine_stack"].nbytes
    module, params = validate_recipe(recipe)
    done = {"pristine_truth", "pristine_stack"}
    force = [st.name for st in module.stages(params) if st.name not in done]
    tune_malloc()
    res, wp, wall, same = measured_run(recipe, store, args.workers, limit, force, report=False)
    from electromicro_dask.core.store import open_table

    study = open_table(store, "study").set_index("source")
    cmd = "python benchmarks/bench_pfib_memory.py " + " ".join(sys.argv[1:])
    lines = [
        "# PFIB chain on a stack larger than a worker's memory", "",
        f"Command: `{cmd}`", "",
        f"Stack {tuple(args.shape)} voxels of 0.1 x 0.05 x 0.05 um ({n / 1e6:.0f} Mvoxel, "
        f"{stack_bytes / 2**20:.0f} MiB, chunks {tuple(args.chunk)}), `workflows/pfib_seed001.yaml`"
        f" with one sample through the runner. LocalCluster of {args.workers} worker(s) x 1 "
        f"thread, memory limit {args.memory_limit} each (the stack is "
        f"{stack_bytes / limit:.1f}x one worker's limit). Input generated beforehand "
        f"({prep:.0f} s). Machine: {os.cpu_count()} CPUs.", "",
        f"- wall time {wall:.0f} s ({n / wall:.3g} voxels/s for the whole chain after the "
        "stack)",
        f"- peak worker memory {wp.max_peak / 2**20:.0f} MiB of {limit / 2**20:.0f} MiB; "
        f"workers unchanged: {'yes' if same else 'NO'}",
        f"- crack volume per particle volume: segmented "
        f"{study.loc['segmented', 'crack_per_particle']:.4f}, truth "
        f"{study.loc['truth', 'crack_per_particle']:.4f}", "",
        "| stage | status | s | worker memory at end (MiB) |", "|---|---|---|---|"]
    lines += stage_rows(res.stages, wp)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    tmp.cleanup()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
