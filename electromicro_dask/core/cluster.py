"""``connect()``: one call that returns a :class:`distributed.Client` wherever the user is.

- nothing / ``"local"``: a :class:`~distributed.LocalCluster` sized to this machine, or a
  ``LocalCUDACluster`` (dask-cuda) with one worker per GPU, each started with
  ``resources={"GPU": 1}``, when GPUs and dask-cuda are present;
- ``"tcp://host:port"`` or a path to a scheduler file: an existing scheduler;
- ``"slurm"``, ``"pbs"``, ``"sge"`` (also ``"lsf"``, ``"htcondor"``): a dask-jobqueue
  cluster configured from the dask config (``jobqueue.<name>`` section, see
  ``deploy/slurm/jobqueue.yaml``);
- ``"k8s"``: a dask-kubernetes operator ``KubeCluster`` built from
  ``make_cluster_spec`` and the dask config's ``electromicro.kubernetes`` section.

A GPU pool can join the same scheduler (:func:`add_gpu_pool`): extra workers started with
``resources={"GPU": 1}`` (job-queue: jobs from the ``jobqueue.<name>-gpu`` section;
Kubernetes: a ``DaskWorkerGroup`` with ``nvidia.com/gpu`` limits). Tasks annotated with
:func:`electromicro_dask.core.resources.compute_on_gpu` land only there.

Every size, memory limit and adaptive bound comes from the arguments or the dask config
(``electromicro.*``, ``jobqueue.*``; defaults in ``deploy/dask.yaml``), never from
constants in this module. The dashboard link is printed.
"""

from __future__ import annotations

import copy
import os
import sys

import dask

from .errors import InputError

__all__ = ["connect", "local_cluster_size", "gpu_count", "add_gpu_pool",
           "kubernetes_cluster_spec", "kubernetes_gpu_worker_group_spec"]

_JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
             "lsf": "LSFCluster", "htcondor": "HTCondorCluster"}
_GPU_RESOURCES = {"GPU": 1}


def _cfg(key, default=None):
    return dask.config.get(f"electromicro.{key}", default)


def local_cluster_size(memory_fraction=0.9):
    """(n_workers, threads_per_worker, memory_limit bytes) for a LocalCluster on this machine.

    One single-threaded worker per core: scipy/skimage kernels hold the GIL for part of
    their work, so processes scale better than threads. Workers share ``memory_fraction``
    of the machine's memory (the dask config ``electromicro.local`` may override each).
    """
    import psutil

    cfg = _cfg("local", {}) or {}
    n = int(cfg.get("n-workers") or len(os.sched_getaffinity(0)))
    threads = int(cfg.get("threads-per-worker") or 1)
    mem = cfg.get("memory-limit")
    if mem is None:
        mem = int(psutil.virtual_memory().total * memory_fraction / n)
    return n, threads, mem


def gpu_count():
    """Number of CUDA GPUs this process can use (0 without dask-cuda / NVML)."""
    try:
        from dask_cuda.utils import get_n_gpus
    except ImportError:
        return 0
    try:
        return int(get_n_gpus())
    except Exception:  # no driver, NVML missing: no usable GPU
        return 0


def _adapt(cluster, adapt):
    """Adaptive scaling from ``adapt`` = (minimum, maximum) or the config."""
    if adapt is None:
        cfg = _cfg("adapt", {}) or {}
        if cfg.get("minimum") is None and cfg.get("maximum") is None:
            return
        adapt = (cfg.get("minimum") or 0, cfg.get("maximum"))
    if adapt is False:
        return
    lo, hi = adapt
    kw = {"minimum": lo} if hi is None else {"minimum": lo, "maximum": hi}
    if hasattr(cluster, "_job_kwargs"):           # job-queue: count in jobs
        kw = {f"{k}_jobs": v for k, v in kw.items()}
    cluster.adapt(**kw)


def _local(n_workers, memory_limit, threads_per_worker, resources, kwargs):
    from distributed import LocalCluster

    n, threads, mem = local_cluster_size()
    mem = memory_limit if memory_limit is not None else mem
    ngpu = gpu_count() if resources is None and _cfg("local.cuda", True) else 0
    if ngpu:
        from dask_cuda import LocalCUDACluster

        # One worker per GPU, each advertising the GPU resource (DESIGN.md, "GPU").
        return LocalCUDACluster(n_workers=n_workers or ngpu, threads_per_worker=threads_per_worker or 1,
                                memory_limit=mem, resources=dict(_GPU_RESOURCES), **kwargs)
    return LocalCluster(n_workers=n if n_workers is None else n_workers,
                        threads_per_worker=threads_per_worker or threads,
                        memory_limit=mem, resources=resources, **kwargs)


def add_gpu_pool(cluster, n, **options):
    """Add ``n`` GPU workers (``resources={"GPU": 1}``) to ``cluster``'s own scheduler.

    Works for spec-based clusters: :class:`~distributed.LocalCluster` (extra worker
    processes) and dask-jobqueue clusters (extra jobs built from the
    ``jobqueue.<name>-gpu`` config section when it exists, e.g. with a GPU partition
    and ``--gres=gpu:1``). Afterwards ``cluster.scale(k)`` and adaptive scaling act on the
    CPU pool only; the GPU pool keeps its size. For Kubernetes use
    :func:`kubernetes_gpu_worker_group_spec` (``connect("k8s", gpu_workers=n)``).

    Parameters
    ----------
    cluster : distributed.SpecCluster
    n : int
        GPU workers (job-queue: one worker per job).
    **options
        Override the GPU workers' options (``memory_limit``, job-queue ``cores`` ...).
    """
    import asyncio

    if not hasattr(cluster, "worker_spec") or not hasattr(cluster, "new_spec"):
        raise InputError("cluster", f"a LocalCluster or dask-jobqueue cluster, got {type(cluster).__name__}")
    if not isinstance(n, int) or n < 0:
        raise InputError("n", f"a number of GPU workers >= 0, got {n!r}")
    base = copy.deepcopy(cluster.new_spec)
    opts = dict(base["options"])
    if hasattr(cluster, "_job_kwargs"):           # a job-queue cluster: GPU jobs
        section = f"{cluster.job_cls.config_name}-gpu"
        if dask.config.get(f"jobqueue.{section}", None) is not None:
            _complete_jobqueue_section(section, cluster.job_cls.config_name)
            # The GPU section is the job template; only connection settings carry over.
            opts = {k: v for k, v in opts.items()
                    if k in ("scheduler", "name", "interface", "protocol", "security")}
            opts["config_name"] = section
        extra = list(opts.get("worker_extra_args")
                     or dask.config.get(f"jobqueue.{opts.get('config_name', cluster.job_cls.config_name)}"
                                        ".worker-extra-args", None) or [])
        opts["worker_extra_args"] = extra if "--resources" in extra else extra + ["--resources", "GPU=1"]
        opts["processes"] = 1
    else:
        opts["resources"] = dict(_GPU_RESOURCES)
    opts.update(options)
    pool = getattr(cluster, "_emd_gpu_pool", set())
    for i in range(n):
        name = f"gpu-{len(pool)}"
        spec = {"cls": base["cls"], "options": dict(opts)}
        if hasattr(cluster, "_job_kwargs"):
            spec["options"]["name"] = name
        cluster.worker_spec[name] = spec
        pool.add(name)
    if not hasattr(cluster, "_emd_gpu_pool"):
        _keep_pool_out_of_scaling(cluster, pool)
    if cluster.asynchronous:
        return asyncio.ensure_future(cluster._correct_state())
    cluster.sync(cluster._correct_state)
    return cluster


def _complete_jobqueue_section(section, base):
    """Fill keys missing from ``jobqueue.<section>`` (a site file may give only what
    differs, e.g. ``slurm-gpu``) from ``jobqueue.<base>``: dask-jobqueue reads every key."""
    full = dask.config.merge(dask.config.get(f"jobqueue.{base}", {}) or {},
                             dask.config.get(f"jobqueue.{section}") or {})
    dask.config.update(dask.config.config, {"jobqueue": {section: full}}, priority="new")


def _keep_pool_out_of_scaling(cluster, pool):
    """Make ``scale``/``scale_down`` (and so ``adapt``) act on the CPU pool only."""
    cluster._emd_gpu_pool = pool
    per_job = getattr(getattr(cluster, "_dummy_job", None), "worker_processes", 1) or 1
    original_scale = cluster.scale

    def scale(n=None, jobs=0, memory=None, cores=None):
        from distributed.core import Status

        if cluster.status in (Status.closing, Status.closed):
            return original_scale(0)              # closing: every pool goes
        if memory is not None or cores is not None:
            raise InputError("scale", "a number of CPU workers or jobs when a GPU pool is attached")
        if hasattr(cluster, "_job_kwargs"):       # job-queue specs are jobs
            n = jobs if n is None else -(-int(n) // per_job)
        n = int(n or 0)
        cpu = [k for k in cluster.worker_spec if k not in pool]
        running = {w["name"] for w in cluster.scheduler_info.get("workers", {}).values()}
        # Drop specs that have not started first, then the newest.
        for k in sorted(cpu, key=lambda k: (k in running, -cpu.index(k))):
            if len(cpu) <= n:
                break
            del cluster.worker_spec[k]
            cpu.remove(k)
        while len(cpu) < n:
            new = cluster.new_worker_spec()
            cluster.worker_spec.update(new)
            cpu.extend(new)
        cluster.loop.add_callback(cluster._correct_state)
        if cluster.asynchronous:
            from distributed.deploy.spec import NoOpAwaitable

            return NoOpAwaitable()

    original_down = cluster.scale_down

    async def scale_down(workers):
        return await original_down([w for w in workers if w not in pool])

    cluster.scale = scale
    cluster.scale_up = scale
    cluster.scale_down = scale_down


def kubernetes_cluster_spec(name=None, n_workers=None, image=None, resources=None, env=None,
                            worker_command=None):
    """The ``DaskCluster`` manifest ``connect("k8s")`` submits (dask config ``electromicro.kubernetes``).

    Pure dict; validated offline in ``tests/deploy`` against the operator's CRD schema.
    """
    from dask_kubernetes.operator import make_cluster_spec

    cfg = _cfg("kubernetes", {}) or {}
    spec = make_cluster_spec(
        name=name or cfg.get("name") or "electromicro",
        image=image or cfg.get("image") or "ghcr.io/dask/dask:latest",
        n_workers=n_workers if n_workers is not None else int(cfg.get("n-workers") or 0),
        resources=copy.deepcopy(resources if resources is not None else cfg.get("resources")),
        env=env if env is not None else cfg.get("env"),
        worker_command=worker_command or cfg.get("worker-command") or "dask-worker",
    )
    # No shared sub-dicts (no YAML anchors when dumped) and no nulls (``env: null``): the
    # API server prunes nulls of non-nullable CRD fields, strict validation rejects them.
    return _drop_nulls(copy.deepcopy(spec))


def _drop_nulls(node):
    if isinstance(node, dict):
        return {k: _drop_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_drop_nulls(v) for v in node]
    return node


def kubernetes_gpu_worker_group_spec(cluster_name, n_workers=None, image=None, resources=None,
                                     name="gpu"):
    """A ``DaskWorkerGroup`` of GPU workers (``nvidia.com/gpu`` limit, ``--resources GPU=1``)."""
    from dask_kubernetes.operator import make_worker_spec

    cfg = _cfg("kubernetes.gpu", {}) or {}
    res = copy.deepcopy(resources if resources is not None else cfg.get("resources")
                        or {"limits": {"nvidia.com/gpu": "1"}})
    # The operator's CRDs type resource quantities as strings (an integer is rejected).
    res = {k: {r: str(q) for r, q in v.items()} for k, v in res.items()}
    worker = make_worker_spec(image=image or cfg.get("image") or _cfg("kubernetes.image")
                              or "ghcr.io/dask/dask:latest",
                              n_workers=n_workers if n_workers is not None else int(cfg.get("n-workers") or 1),
                              resources=res)
    container = worker["spec"]["containers"][0]
    container["args"] = list(container.get("args", [])) + ["--resources", "GPU=1"]
    return _drop_nulls({"apiVersion": "kubernetes.dask.org/v1", "kind": "DaskWorkerGroup",
                          "metadata": {"name": f"{cluster_name}-{name}"},
                          "spec": {"cluster": cluster_name, "worker": worker}})


def connect(cluster=None, n_workers=None, memory_limit=None, threads_per_worker=None,
            resources=None, gpu_workers=None, adapt=None, quiet=False, **kwargs):
    """Return a :class:`distributed.Client` for ``cluster``.

    Parameters
    ----------
    cluster : None, str or distributed cluster object
        ``None``: the dask config's ``electromicro.cluster`` if set, else ``"local"``;
        ``"local"``: LocalCluster sized to the machine (LocalCUDACluster with
        ``resources={"GPU": 1}`` per worker when GPUs and dask-cuda are present);
        ``"tcp://..."``: an existing scheduler; a path ending in ``.json``: a
        scheduler file; ``"slurm"``, ``"pbs"``, ``"sge"``: dask-jobqueue from the dask
        config; ``"k8s"``: dask-kubernetes operator; a cluster object: wrapped in a Client.
    n_workers : int, optional
        Workers to start (local) or scale to (job-queue: workers; k8s: CPU workers);
        default the config's ``electromicro.workers`` (job-queue, k8s) or one per core.
    memory_limit, threads_per_worker : optional
        LocalCluster sizing (default :func:`local_cluster_size`). Job-queue and
        Kubernetes workers take theirs from the dask config or ``**kwargs``.
    resources : dict, optional
        Worker resources for a LocalCluster, e.g. ``{"GPU": 1}``.
    gpu_workers : int, optional
        GPU workers to add to the same scheduler (:func:`add_gpu_pool`; Kubernetes: a
        GPU worker group); default the config's ``electromicro.gpu-workers`` (0).
    adapt : (int, int or None) or False, optional
        Adaptive (minimum, maximum) workers (job-queue: jobs); default the config's
        ``electromicro.adapt``; ``False``: fixed size.
    quiet : bool
        Do not print the dashboard link.
    **kwargs
        Passed to the cluster class.

    Examples
    --------
    >>> client = connect()                      # doctest: +SKIP
    Dashboard: http://127.0.0.1:8787/status
    """
    from distributed import Client

    if cluster is None:
        # The dask config may name the site's cluster (deploy/dask.yaml): electromicro.cluster
        cluster = _cfg("cluster", None) or "local"
    if gpu_workers is None:
        gpu_workers = int(_cfg("gpu-workers", 0) or 0)
    if cluster == "local":
        lc = _local(n_workers, memory_limit, threads_per_worker, resources, kwargs)
        if gpu_workers:
            add_gpu_pool(lc, gpu_workers)
        _adapt(lc, adapt)
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
        if gpu_workers:
            add_gpu_pool(jq, gpu_workers)
        n = n_workers if n_workers is not None else _cfg("workers", None)
        if n:
            jq.scale(n=int(n))
        _adapt(jq, adapt)
        client = Client(jq)
    elif cluster in ("k8s", "kubernetes"):
        try:
            from dask_kubernetes.operator import KubeCluster
        except ImportError:
            raise InputError("cluster", "'k8s' needs dask-kubernetes: "
                             "pip install 'electromicro-dask[kubernetes]'") from None
        spec = kubernetes_cluster_spec(n_workers=n_workers if n_workers is not None
                                       else _cfg("workers", None))
        kc = KubeCluster(custom_cluster_spec=spec, **kwargs)
        if gpu_workers:
            g = kubernetes_gpu_worker_group_spec(spec["metadata"]["name"], n_workers=gpu_workers)
            kc.add_worker_group(name="gpu", custom_spec=g["spec"]["worker"])
        if adapt:
            kc.adapt(minimum=adapt[0], maximum=adapt[1])
        client = Client(kc)
    elif hasattr(cluster, "scheduler_address"):
        client = Client(cluster)
    else:
        raise InputError("cluster", "None, 'local', 'tcp://host:port', a scheduler file "
                         f"(*.json), one of {sorted(_JOBQUEUE)} or 'k8s'; got {cluster!r}")
    if not quiet:
        print(f"Dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
    return client
