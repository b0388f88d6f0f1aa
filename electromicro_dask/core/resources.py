"""Route GPU work to GPU workers, and to CPU workers when there are none.

DESIGN.md ("GPU"): GPU work is restricted to workers started with ``resources={"GPU": 1}``.
A task asking for a resource no worker has waits forever in the scheduler, so the
restriction is given only when the cluster has at least one GPU worker; otherwise the
same tasks run on the CPU workers.

The restriction is passed to ``Client.compute(..., resources=...)``, which the scheduler
applies to every task of the computation. ``dask.annotate(resources=...)`` is not used:
with dask 2026.8 the annotation is lost for part of the tasks of a ``map_overlap``
graph (measured: 11 of 24 blocks ran on the CPU worker, with or without graph
optimisation), so it does not keep GPU work off CPU workers.
"""

from __future__ import annotations

from .progress import current_client

__all__ = ["gpu_workers", "gpu_resources", "compute_on_gpu"]

GPU = {"GPU": 1}


def _active_client(client):
    return client if client is not None else current_client()


def gpu_workers(client=None):
    """Addresses of the workers that advertise a ``GPU`` resource (empty without a client)."""
    client = _active_client(client)
    if client is None:
        return []
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return sorted(a for a, w in workers.items() if (w.get("resources") or {}).get("GPU", 0) >= 1)


def gpu_resources(client=None):
    """``{"GPU": 1}`` when a GPU worker exists, else ``None`` (no restriction).

    Examples
    --------
    >>> gpu_resources() is None          # no distributed client: nothing to route
    True
    """
    return dict(GPU) if gpu_workers(client) else None


def compute_on_gpu(*collections, client=None, **kwargs):
    """Compute ``collections`` on the GPU workers if there are any, else anywhere.

    Returns the computed values (like :func:`dask.compute`). Without a distributed
    client the collections are computed with the current local scheduler.

    Examples
    --------
    >>> import dask.array as da
    >>> compute_on_gpu(da.ones(4, chunks=2) + 1)[0].tolist()
    [2.0, 2.0, 2.0, 2.0]
    """
    import dask

    client = _active_client(client)
    if client is None:
        return dask.compute(*collections, **kwargs)
    futures = client.compute(list(collections), resources=gpu_resources(client), **kwargs)
    return tuple(client.gather(futures))
