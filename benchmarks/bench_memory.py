"""Bounded memory: generate -> filter -> threshold -> fractions on a volume at least 4x the
total worker memory limit (issue 2), with the peak memory of every worker.

    python benchmarks/bench_memory.py [--size 820] [--workers 2] [--memory-limit 256MiB]

The grey-value volume (float32) is size^3 * 4 bytes; with the defaults 2.2 GB against
2 x 256 MiB of workers. Every stage goes through the store (as the runner does), so no
stage is recomputed. Filters read their halos straight from the store (core.halo), so
every task needs one padded block whatever the volume. Writes (or updates) one section
per command in benchmarks/results/memory.md, so the 4x and 8x runs sit side by side:

    python benchmarks/bench_memory.py --size 820 --workers 1 --memory-limit 512MiB   # 4x
    python benchmarks/bench_memory.py --size 1024 --workers 1 --memory-limit 512MiB  # 8x
"""

import argparse
import re
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _memory import WorkerPeak  # noqa: E402


HEADER = """# Bounded memory: a volume larger than the workers' memory

generate phases -> tomogram -> median -> threshold -> fractions on a real distributed
LocalCluster, every stage through the zarr store; one section per command.
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=820)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="256MiB")
    ap.add_argument("--store", default=None)
    a = ap.parse_args()

    import dask
    from dask.utils import parse_bytes
    from distributed import Client, LocalCluster

    import electromicro_dask as emd
    from electromicro_dask import filters, measure, segment, synth

    limit = parse_bytes(a.memory_limit)
    tmp = Path(a.store or tempfile.mkdtemp(prefix="emd-bench-")) / "big.zarr"
    fr = {"pore": 0.30, "cbd": 0.15, "am": 0.55}
    times = {}
    with dask.config.set({"distributed.worker.memory.spill": 0.6}), \
            LocalCluster(n_workers=a.workers, threads_per_worker=1, memory_limit=limit,
                         dashboard_address=":0") as lc, Client(lc) as client, \
            WorkerPeak(client) as peak:
        workers0 = set(client.scheduler_info()["workers"])
        mem_limits = [w["memory_limit"] for w in client.scheduler_info()["workers"].values()]
        t0 = time.perf_counter()
        ds = synth.electrode((a.size,) * 3, voxel_size=0.5, fractions={"am": 0.55, "cbd": 0.15,
                                                                       "pore": 0.30}, seed=1)
        times["particle list"] = time.perf_counter() - t0
        t = time.perf_counter()
        emd.save(ds["phases"], tmp, "truth")
        times["generate phases -> store"] = time.perf_counter() - t
        t = time.perf_counter()
        raw = synth.tomogram(emd.open_store(tmp)["truth"], seed=2)
        grey_bytes = raw.nbytes
        emd.save(raw, tmp, "raw")
        times["tomogram -> store"] = time.perf_counter() - t
        t = time.perf_counter()
        emd.save(filters.median(emd.open_store(tmp)["raw"]), tmp, "filtered")
        times["median -> store"] = time.perf_counter() - t
        t = time.perf_counter()
        emd.save(segment.threshold(emd.open_store(tmp)["filtered"], fractions=fr), tmp, "phases")
        times["threshold -> store"] = time.perf_counter() - t
        t = time.perf_counter()
        f = measure.volume_fractions(emd.open_store(tmp)["phases"])
        agree = measure.compare(emd.open_store(tmp)["phases"], emd.open_store(tmp)["truth"])
        times["fractions + agreement"] = time.perf_counter() - t
        total = time.perf_counter() - t0
        restarted = len(set(peak.peak) - workers0)
    peaks = sorted(peak.peak.values())
    rows = "\n".join(f"| {k} | {v:.1f} |" for k, v in times.items())
    command = (f"python benchmarks/bench_memory.py --size {a.size} --workers {a.workers} "
               f"--memory-limit {a.memory_limit}")
    section = f"""## {grey_bytes / (a.workers * limit):.1f}x: `{command}`

- volume: {a.size}^3 voxels; grey values (float32) {grey_bytes / 2**30:.2f} GiB;
  {grey_bytes / (a.workers * limit):.1f} x the total worker memory limit ({a.workers} x {limit / 2**20:.0f} MiB,
  enforced by distributed: the scheduler reports {', '.join(f'{m / 2**20:.0f}' for m in mem_limits)} MiB)
- finished: yes, in {total:.0f} s; workers restarted: {restarted}
- peak process memory per worker (MiB): {', '.join(f'{p / 2**20:.0f}' for p in peaks)}
  (limit {limit / 2**20:.0f} MiB; sampled every 0.25 s from the scheduler)
- fractions: {', '.join(f'{k} {v:.4f}' for k, v in f.items())} (targets {fr})
- voxel agreement with truth: {agree['fraction_equal']:.4f}
- run on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores

| stage | seconds |
|---|---|
{rows}
"""
    out = Path(__file__).parent / "results" / "memory.md"
    old = out.read_text() if out.exists() else ""
    # Keep the other commands' sections (one per command), replace this command's.
    sections = {}
    for m in re.finditer(r"^## [^`\n]*`([^`]*)`[^\n]*\n(?:(?!^## ).*\n?)*", old, re.M):
        sections[m.group(1)] = m.group(0).rstrip() + "\n"
    sections[command] = section
    order = sorted(sections, key=lambda c: (int(re.search(r"--size (\d+)", c).group(1))
                                            if re.search(r"--size (\d+)", c) else 0))
    text = HEADER + "\n" + "\n".join(sections[c] for c in order)
    out.write_text(text)
    print(section)
    if a.store is None:
        shutil.rmtree(tmp.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
