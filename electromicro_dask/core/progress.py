"""Progress display for long computations (distributed progress bar, or dask's local one)."""

from __future__ import annotations

import contextlib
import sys

import dask

__all__ = ["compute", "progress_enabled", "show_progress"]

_STATE = {"enabled": None}


def show_progress(flag=True):
    """Turn progress bars on or off for this process (the CLI turns them on)."""
    _STATE["enabled"] = bool(flag)


def progress_enabled():
    if _STATE["enabled"] is not None:
        return _STATE["enabled"]
    return bool(dask.config.get("electromicro.progress", False)) or sys.stderr.isatty()


def current_client():
    """The current distributed client, or None (no distributed, or none running)."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def compute(*collections, label=None, **kwargs):
    """``dask.compute`` with a progress bar when progress is enabled.

    On a distributed client the bar follows the futures; otherwise dask's local
    :class:`~dask.diagnostics.ProgressBar` is used.
    """
    if not progress_enabled():
        return dask.compute(*collections, **kwargs)
    client = current_client()
    if label:
        print(f"[electromicro] {label}", file=sys.stderr, flush=True)
    if client is not None:
        from distributed import progress

        futures = client.compute(list(collections), **kwargs)
        with contextlib.redirect_stdout(sys.stderr):
            progress(futures, notebook=False)
        print(file=sys.stderr)
        return tuple(client.gather(futures))
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr):
        return dask.compute(*collections, **kwargs)
