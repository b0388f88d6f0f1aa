"""Many independent transport solves as dask tasks, gathered into one tidy table.

Each case is one task; on a cluster with GPU workers (workers started with
``--resources GPU=1``) the tasks are annotated ``resources={"GPU": 1}`` so they land there
(DESIGN.md, compute backends); without GPU workers they are plain tasks, so they never wait
for a resource nobody offers.
"""

from __future__ import annotations

from collections.abc import Mapping

import dask
import numpy as np
import pandas as pd

from ..core.errors import InputError

__all__ = ["sweep"]


def _run_case(fn, case):
    # Nested computes (a lazy segmentation) run inline in the worker: a task that waits
    # on the cluster it runs on can deadlock a small cluster.
    with dask.config.set(scheduler="sync"):
        result = fn(**case)
    if hasattr(result, "scalars"):
        return result.scalars()
    if isinstance(result, Mapping):
        return dict(result)
    if np.ndim(result) == 0:
        return {"value": result}
    raise TypeError(f"sweep: {getattr(fn, '__name__', fn)!r} returned {type(result).__name__}; "
                    "expected a result object, a dict or a scalar")


def _describe(value):
    if isinstance(value, (bool, int, float, str, np.generic)) or value is None:
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, Mapping):
        return repr(dict(value))
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str)) for v in value):
        return repr(value)
    name = getattr(value, "name", None)
    return f"<{type(value).__name__}{' ' + str(name) if name else ''}>"


def _gpu_workers(client):
    info = client.scheduler_info(n_workers=-1) if _accepts_n_workers(client) else \
        client.scheduler_info()
    return any(w.get("resources", {}).get("GPU", 0) > 0 for w in info.get("workers", {}).values())


def _accepts_n_workers(client):
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False


def _default_client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def sweep(fn, cases, client=None, gpu=None):
    """Run ``fn(**case)`` for every case as independent dask tasks; return a tidy table.

    Parameters
    ----------
    fn : callable
        A solver such as :func:`tortuosity_factor`, :func:`effective_conductivity` or
        :func:`permeability`, or any function returning a result object with ``scalars()``,
        a dict or a scalar.
    cases : sequence of mappings
        Keyword arguments, one mapping per solve (cutouts, directions, segmentations,
        gamma values...). Arrays in a case are shipped to the worker that runs it.
    client : distributed.Client, optional
        Cluster to run on (default: the current default client; without one, the tasks
        run through ``dask.delayed`` on the local scheduler).
    gpu : bool, optional
        Annotate the tasks ``resources={"GPU": 1}``. Default: only when the cluster has
        workers offering a ``GPU`` resource.

    Returns
    -------
    pandas.DataFrame
        One row per case, in order: the case parameters (arrays described by type and name)
        followed by the result scalars (``tau``, ``eps``, ``d_eff``, ``iterations``...).

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask.core import as_segmentation
    >>> from electromicro_dask.transport import tortuosity_factor
    >>> a = np.zeros((8, 8, 8), "uint8"); a[:, 2:6, 2:6] = 1
    >>> seg = as_segmentation(a, phases={0: "pore", 1: "am"}, voxel_size=1.0)
    >>> table = sweep(tortuosity_factor, [{"phases": seg, "axis": ax, "device": "cpu"}
    ...                                   for ax in ("z", "y", "x")])
    >>> table[["axis", "tau"]].round(3).values.tolist()
    [['z', 1.0], ['y', 1.346], ['x', 1.346]]
    """
    if not callable(fn):
        raise InputError("fn", f"a callable solver, got {fn!r}")
    if isinstance(cases, Mapping) or isinstance(cases, (str, bytes)):
        raise InputError("cases", "a sequence of mappings (one per solve), got a single "
                         f"{type(cases).__name__}")
    cases = list(cases)
    if not cases:
        raise InputError("cases", "at least one case")
    for i, case in enumerate(cases):
        if not isinstance(case, Mapping):
            raise InputError("cases", f"mappings of keyword arguments, case {i} is "
                             f"{type(case).__name__}")
    client = client if client is not None else _default_client()
    if client is not None:
        use_gpu = _gpu_workers(client) if gpu is None else bool(gpu)
        kw = {"resources": {"GPU": 1}} if use_gpu else {}
        futures = [client.submit(_run_case, fn, dict(case), pure=False, **kw)
                   for case in cases]
        rows = client.gather(futures)
    else:
        tasks = [dask.delayed(_run_case, pure=False)(fn, dict(case)) for case in cases]
        rows = dask.compute(*tasks)
    table = []
    for case, row in zip(cases, rows):
        entry = {k: _describe(v) for k, v in case.items()}
        for k, v in row.items():
            entry[k if k not in entry else f"result_{k}"] = v
        table.append(entry)
    return pd.DataFrame(table)
