"""ToF-SIMS pipeline (seed 000): a synthetic N x N x C cube through the whole `tofsims`
pipeline (generate -> store -> SI images -> median + non-local means -> segmentation ->
watershed agglomerates -> tables) on a LocalCluster with a memory limit, against an
in-memory numpy / scipy / scikit-image run of the SI + filter + segmentation steps on the
same stored cube in one process.

    python benchmarks/bench_sims.py [--size 2048] [--channels 256] [--workers 2]
                                    [--memory-limit 1.5GiB] [--peer-max 1024]

Reports pixels per second, the per-worker peak memory (scheduler metrics, sampled) and
the cluster's MemorySampler peak, and (for sizes up to --peer-max) the peer's time and
peak RSS and the ratio. Writes benchmarks/results/sims.md.
"""

import argparse
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _memory import WorkerPeak  # noqa: E402


class _RSSPeak:
    def __init__(self, interval=0.1):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self):
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def _peer(cube_np, mz, edges, species, phases, inter):
    """The same steps in memory: numpy window sums, scipy median, skimage NL-means
    (fast mode, same sigma rule), relative intensity, argmax, Otsu pores, thresholds."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu
    from skimage.restoration import denoise_nl_means, estimate_sigma

    from electromicro_dask.sims.species import SPECIES

    lo, hi = np.asarray(edges[:-1]), np.asarray(edges[1:])
    imgs = {}
    for s in species:
        m = SPECIES[s]
        sel = (hi > m - 0.2) & (lo < m + 0.2)
        imgs[s] = cube_np[:, :, sel].sum(-1, dtype=np.float64).astype(np.float32)
    total = cube_np.sum(-1, dtype=np.float64).astype(np.float32)

    def filt(a):
        a = ndi.median_filter(a, 3, mode="reflect")
        c = tuple(slice(max(0, n // 2 - 32), n // 2 + 32) for n in a.shape)
        sig = float(estimate_sigma(a[c].astype(np.float64)))
        if not (np.isfinite(sig) and sig > 0):
            return a
        return denoise_nl_means(a, patch_size=5, patch_distance=6, h=0.8 * sig, sigma=sig,
                                fast_mode=True, channel_axis=None).astype(np.float32)

    rel = []
    for names in phases.values():
        f = filt(sum(imgs[n] for n in names))
        rel.append(f / np.percentile(f[::2, ::2], 99.5))
    seg = np.argmax(np.stack(rel, -1), -1).astype(np.uint8) + 1
    t = filt(total)
    seg[t < threshold_otsu(t)] = 0
    for j, names in enumerate(inter.values()):
        r = filt(sum(imgs[n] for n in names))
        seg[r > threshold_otsu(r)] = len(phases) + 1 + j
    return seg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="1.5GiB")
    ap.add_argument("--kind", default="anode")
    ap.add_argument("--peer-max", type=int, default=1024)
    ap.add_argument("--store", default=None)
    a = ap.parse_args()

    import dask
    from distributed import Client, LocalCluster
    from distributed.diagnostics import MemorySampler

    from electromicro_dask import runner
    from electromicro_dask.core.store import open_store, open_table
    from electromicro_dask.sims import ANODE, CATHODE

    d = ANODE if a.kind == "anode" else CATHODE
    recipe = {"pipeline": "tofsims", "parameters": {
        "kind": a.kind, "size": a.size, "voxel_size_um": 0.125, "n_channels": a.channels,
        "chunk": 256, "mz_chunk": 64, "seed": 0}}
    tmp = Path(a.store) if a.store else Path(tempfile.mkdtemp(prefix="bench_sims_"))
    store = tmp / "sims.zarr"
    shutil.rmtree(store, ignore_errors=True)
    ms = MemorySampler()
    with dask.config.set({"distributed.worker.memory.target": 0.6,
                          "distributed.worker.memory.spill": 0.7}), \
            LocalCluster(n_workers=a.workers, threads_per_worker=1, dashboard_address=":0",
                         memory_limit=a.memory_limit) as lc, Client(lc) as client:
        with WorkerPeak(client) as wp, ms.sample("pipeline"):
            t0 = time.perf_counter()
            res = runner.run(recipe, store=store, client=client, report=False, quiet=True)
            t_all = time.perf_counter() - t0
    stage_s = {s["stage"]: s["seconds"] for s in res.stages}
    agr = open_table(store, "agreement")
    ag = open_table(store, "agglomerates")
    agt = open_table(store, "agglomerates_truth")
    ms_peak = float(ms.to_pandas().max().iloc[0])
    npx = a.size * a.size
    ours_seg = stage_s["si"] + stage_s["segmentation"]

    peer = None
    if a.size <= a.peer_max:
        ds = open_store(store)
        cube_np = np.asarray(ds["cube"].values)
        species = sorted({s for v in (*d["phases"].values(), *d["interphases"].values())
                          for s in v})
        with _RSSPeak() as rp:
            t = time.perf_counter()
            seg = _peer(cube_np, ds["cube"].mz.values, ds["cube"].attrs["mz_edges"], species,
                        d["phases"], d["interphases"])
            t_peer = time.perf_counter() - t
        truth = ds["truth_phases"].values
        peer = {"s": t_peer, "rss_gib": (rp.peak - rp.base) / 2**30,
                "cube_gib": cube_np.nbytes / 2**30, "accuracy": float((seg == truth).mean())}
        del cube_np
    shutil.rmtree(tmp, ignore_errors=True) if not a.store else None

    cmd = (f"nice -n 10 python benchmarks/bench_sims.py --size {a.size} --channels {a.channels} "
           f"--workers {a.workers} --memory-limit {a.memory_limit} --kind {a.kind}")
    cube_gib = npx * a.channels * 2 / 2**30
    rows = [
        f"| cube | {a.size} x {a.size} x {a.channels} uint16 ({cube_gib:.2f} GiB), "
        f"chunks 256 x 256 x 64 |",
        f"| whole pipeline wall time | {t_all:.1f} s |",
        f"| pixels per second (whole pipeline) | {npx / t_all:,.0f} |",
        f"| SI images + segmentation stages | {ours_seg:.1f} s ({npx / ours_seg:,.0f} px/s) |",
        f"| peak memory per worker (scheduler metrics) | {wp.max_peak / 2**30:.2f} GiB "
        f"(limit {a.memory_limit}) |",
        f"| MemorySampler peak, all {a.workers} workers | {ms_peak / 2**30:.2f} GiB |",
        f"| pixel accuracy vs truth | {agr['fraction_equal']:.4f} |",
        "| Jaccard | " + ", ".join(f"{k} {v:.3f}" for k, v in agr["jaccard"].items()) + " |",
        f"| agglomerates found / true | {len(ag)} / {len(agt)} |",
        f"| median equivalent diameter found / true | "
        f"{ag.equivalent_diameter_um.median():.3f} / {agt.equivalent_diameter_um.median():.3f} um |",
    ]
    rows += [f"| stage {k} | {v:.1f} s |" for k, v in stage_s.items()]
    if peer:
        rows += [
            f"| peer (numpy/scipy/skimage in memory, 1 process): SI + filters + segmentation "
            f"| {peer['s']:.1f} s, peak RSS +{peer['rss_gib']:.2f} GiB above the loaded cube "
            f"({peer['cube_gib']:.2f} GiB), accuracy {peer['accuracy']:.4f} |",
            f"| ratio peer / ours (SI + segmentation stages) | {peer['s'] / ours_seg:.2f} |",
        ]
    text = ("# ToF-SIMS pipeline (seed 000), synthetic cube on a LocalCluster\n\n"
            f"Command: `{cmd}`  \n"
            f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python "
            f"{sys.version.split()[0]}; {a.workers} workers x 1 thread, memory limit "
            f"{a.memory_limit} each\n\n| quantity | value |\n|---|---|\n" + "\n".join(rows) + "\n")
    full = ("\nThe full size of seed 000 (2048 x 2048 x 256) runs with "
            "`nice -n 10 python benchmarks/bench_sims.py --size 2048 --channels 256 "
            "--peer-max 0`.\n") if a.size < 2048 else ""
    out = Path(__file__).parent / "results" / "sims.md"
    out.write_text(text + full)
    print(text + full)


if __name__ == "__main__":
    main()
