import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest-xdist worker per core: one OpenMP/BLAS thread each, set
    # before numpy and torch load, or the workers' thread pools oversubscribe the cores
    # (a torch-heavy test ran three times slower beside another worker).
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import dask
import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def client():
    """A real two-worker LocalCluster, as DESIGN.md asks tests to run on.

    Per test, not per session: a session-wide client would stay dask's default and change
    how every later test computes (p2p rechunking, persist targets)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="2GiB",
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture
def wait_running():
    """``wait_running(client, n, timeout)``: block until ``n`` workers are running.

    Not ``client.wait_for_workers``: with a cluster object that call overwrites
    ``cluster.scheduler_info`` with a scheduler snapshot, and a worker removal already in
    that snapshot's past then reaches the cluster's worker-status stream as a removal of an
    unknown address; the cluster's watcher dies with a ``KeyError`` that ``cluster.close()``
    re-raises (distributed 2026.8, seen after ``cluster.scale(0)`` and after a killed
    worker). Asking the scheduler through the client leaves the cluster's own view alone.
    """
    import time

    def wait(client, n, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            workers = client.scheduler_info(n_workers=-1)["workers"].values()
            if sum(w.get("status") == "running" for w in workers) >= n:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} workers not running after {timeout} s")
            time.sleep(0.1)

    return wait


@pytest.fixture(autouse=True)
def _sync_scheduler_by_default(request):
    """Tests without the ``client`` fixture use the threaded scheduler (fast, same graph).

    Once the session's LocalCluster exists dask would pick p2p rechunking and shuffles,
    which need that cluster; the threaded tests ask for task-based ones instead.
    """
    if "client" in request.fixturenames:
        yield
    else:
        with dask.config.set({"scheduler": "threads", "array.rechunk.method": "tasks",
                              "dataframe.shuffle.method": "tasks"}):
            yield


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


try:  # Property tests: reproducible in CI, no per-example deadline on a loaded 2-core box.
    from hypothesis import settings

    settings.register_profile("electromicro", derandomize=True, deadline=None,
                              print_blob=True)
    settings.load_profile("electromicro")
except ImportError:  # pragma: no cover
    pass
