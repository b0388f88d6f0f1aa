"""``connect()``: one call that returns a :class:`distributed.Client` wherever the user is.

- nothing: a :class:`~distributed.LocalCluster` sized to this machine;
- ``"tcp://host:port"`` or a path to a scheduler file: an existing scheduler;
- ``"slurm"``, ``"pbs"``, ``"sge"``: a dask-jobqueue cluster configured from the dask
  config (``jobqueue.<name>`` section, see ``deploy/``);
- ``"k8s"``: a dask-kubernetes operator ``KubeCluster`` (``kubernetes`` config section).

The dashboard link is printed.
"""

from __future__ import annotations

import os
import sys

import dask

from .errors import InputError

__all__ = ["connect", "local_cluster_size"]

_JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
             "lsf": "LSFCluster", "htcondor": "HTCondorCluster"}


def local_cluster_size(memory_fraction=0.9):
    """(n_workers, threads_per_worker, memory_limit bytes) for a LocalCluster on this machine.

    One single-threaded worker per core: scipy/skimage kernels hold the GIL for part of
    their work, so processes scale better than threads. Workers share ``memory_fraction``
    of the machine's memory (the dask config ``electromicro.local`` may override each).
    """
    import psutil

    cfg = dask.config.get("electromicro.local", {}) or {}
    n = int(cfg.get("n-workers") or len(os.sched_getaffinity(0)))
    threads = int(cfg.get("threads-per-worker") or 1)
    mem = cfg.get("memory-limit")
    if mem is None:
        mem = int(psutil.virtual_memory().total * memory_fraction / n)
    return n, threads, mem


def connect(cluster=None, n_workers=None, memory_limit=None, threads_per_worker=None,
            resources=None, quiet=False, **kwargs):
    """Return a :class:`distributed.Client` for ``cluster``.

    Parameters
    ----------
    cluster : None, str or distributed cluster object
        ``None`` or ``"local"``: LocalCluster sized to the machine;
        ``"tcp://..."``: an existing scheduler; a path ending in ``.json``: a
        scheduler file; ``"slurm"``, ``"pbs"``, ``"sge"``: dask-jobqueue from the dask
        config; ``"k8s"``: dask-kubernetes; a cluster object: wrapped in a Client.
    n_workers, memory_limit, threads_per_worker : optional
        LocalCluster sizing (default :func:`local_cluster_size`); for job-queue clusters
        ``n_workers`` is the number of workers to scale to.
    resources : dict, optional
        Worker resources for a LocalCluster, e.g. ``{"GPU": 1}``.
    quiet : bool
        Do not print the dashboard link.
    **kwargs
        Passed to the cluster class.

    Examples
    --------
    >>> client = connect()                      # doctest: +SKIP
    Dashboard: http://127.0.0.1:8787/status
    """
    from distributed import Client, LocalCluster

    if cluster is None or cluster == "local":
        n, threads, mem = local_cluster_size()
        lc = LocalCluster(n_workers=n_workers or n, threads_per_worker=threads_per_worker or threads,
                          memory_limit=memory_limit if memory_limit is not None else mem,
                          resources=resources, **kwargs)
        client = Client(lc)
    elif isinstance(cluster, str) and cluster.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        client = Client(cluster)
    elif isinstance(cluster, str) and cluster.endswith(".json"):
        if not os.path.isfile(cluster):
            raise InputError("cluster", f"an existing scheduler file, {cluster!r} not found")
        client = Client(scheduler_file=cluster)
    elif isinstance(cluster, str) and cluster in _JOBQUEUE:
        try:
            import dask_jobqueue
        except ImportError:
            raise InputError("cluster", f"{cluster!r} needs dask-jobqueue: "
                             "pip install 'electromicro-dask[cluster]'") from None
        jq = getattr(dask_jobqueue, _JOBQUEUE[cluster])(**kwargs)
        if n_workers:
            jq.scale(n=n_workers)
        client = Client(jq)
    elif cluster in ("k8s", "kubernetes"):
        try:
            from dask_kubernetes.operator import KubeCluster
        except ImportError:
            raise InputError("cluster", "'k8s' needs dask-kubernetes: "
                             "pip install 'electromicro-dask[kubernetes]'") from None
        kc = KubeCluster(**kwargs)
        if n_workers:
            kc.scale(n_workers)
        client = Client(kc)
    elif hasattr(cluster, "scheduler_address"):
        client = Client(cluster)
    else:
        raise InputError("cluster", "None, 'local', 'tcp://host:port', a scheduler file "
                         f"(*.json), one of {sorted(_JOBQUEUE)} or 'k8s'; got {cluster!r}")
    if not quiet:
        print(f"Dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
    return client
