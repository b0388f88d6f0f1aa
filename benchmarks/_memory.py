"""Per-worker peak memory of a distributed cluster, sampled from the scheduler."""

import threading
import time


class WorkerPeak:
    """Context manager polling every worker's process memory; ``.peak`` in bytes per worker."""

    def __init__(self, client, interval=0.25):
        self.client = client
        self.interval = interval
        self.peak = {}
        self.trace = []            # (seconds since start, largest worker memory), per poll
        self._stop = threading.Event()

    def _poll(self):
        t0 = time.perf_counter()
        while not self._stop.is_set():
            try:
                info = self.client.scheduler_info(n_workers=-1)["workers"]
            except TypeError:
                info = self.client.scheduler_info()["workers"]
            for addr, w in info.items():
                mem = w.get("metrics", {}).get("memory", 0)
                self.peak[addr] = max(self.peak.get(addr, 0), mem)
            if info:
                self.trace.append((time.perf_counter() - t0,
                                   max(w.get("metrics", {}).get("memory", 0) for w in info.values())))
            time.sleep(self.interval)

    def __enter__(self):
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    @property
    def max_peak(self):
        return max(self.peak.values()) if self.peak else 0

    def at(self, seconds, window=5.0):
        """Largest worker memory sampled within ``window`` s before ``seconds`` (bytes)."""
        vals = [m for t, m in self.trace if seconds - window <= t <= seconds]
        return max(vals) if vals else 0


def stage_rows(stages, peak):
    """Markdown rows ``| stage | status | s | worker memory at end (MiB) |`` of a run's
    stages, the memory being ``peak.at`` the stage's end (stage end = sum of stage times)."""
    rows, end = [], 0.0
    for s in stages:
        end += s["seconds"]
        rows.append(f"| {s['stage']} | {s['status']} | {s['seconds']:.1f} | "
                    f"{peak.at(end) / 2**20:.0f} |")
    return rows


def tune_malloc():
    """Start workers with MALLOC_ARENA_MAX=2 and MALLOC_MMAP_THRESHOLD_=262144 (glibc returns
    freed block-sized temporaries to the OS instead of keeping them in its heaps)."""
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ.update(MALLOC_ARENA_MAX=2, MALLOC_MMAP_THRESHOLD_=262144)
    dask.config.set({"distributed.nanny.pre-spawn-environ": environ})


def measured_run(recipe, store, workers, memory_limit, force, report):
    """Run a recipe through the runner on a LocalCluster of ``workers`` one-thread workers
    with ``memory_limit`` bytes each, sampling their memory. Returns
    ``(result, peak, wall seconds, whether the worker set stayed the same)``."""
    from distributed import Client, LocalCluster

    import electromicro_dask as emd

    with LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=memory_limit,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        before = set(client.scheduler_info()["workers"])
        t = time.perf_counter()
        with WorkerPeak(client) as wp:
            res = emd.run(recipe, store=store, client=client, report=report, quiet=False,
                          force=force)
        wall = time.perf_counter() - t
        same = set(client.scheduler_info()["workers"]) == before
    return res, wp, wall, same
