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
