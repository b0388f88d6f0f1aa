"""Workflows composing the method layers; each is a sequence of stages run by the runner.

``PIPELINES`` maps the names recipes use to the modules that define them (imported on
demand, so a pipeline's optional dependencies are needed only when it runs).
"""

import importlib

from .stage import Stage

PIPELINES = {
    "demo": "electromicro_dask.pipelines.demo",
    "tofsims": "electromicro_dask.pipelines.tofsims",
    "cbd_trinarization": "electromicro_dask.pipelines.cbd_trinarization",
    "cbd_correlative": "electromicro_dask.pipelines.cbd_correlative",
    "pfib": "electromicro_dask.pipelines.pfib",
    "slicegan": "electromicro_dask.pipelines.slicegan",
    "swaxs_ct": "electromicro_dask.pipelines.swaxs_ct",
    "echem": "electromicro_dask.pipelines.echem",
}


def get(name):
    """The module of pipeline ``name`` (InputError listing the known ones otherwise)."""
    from ..core.errors import InputError

    if name not in PIPELINES:
        raise InputError("pipeline", f"one of {sorted(PIPELINES)}, got {name!r}")
    return importlib.import_module(PIPELINES[name])


__all__ = ["PIPELINES", "Stage", "get"]
