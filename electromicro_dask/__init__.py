"""electromicro_dask: battery-electrode microscopy from raw data to publishable numbers, at any size.

>>> import electromicro_dask as emd
>>> ds = emd.synth.electrode((64, 64, 64), voxel_size=0.5, seed=0)   # doctest: +SKIP
"""

__version__ = "0.1.0"

from . import errors
from .core import as_segmentation, as_volume, connect, open_store, save, voxel_size

from . import filters, io, label, measure, segment, synth  # noqa: E402  (after core: layer order)
from .runner import run  # noqa: E402

__all__ = ["__version__", "as_volume", "as_segmentation", "voxel_size", "open_store", "save",
           "connect", "run", "errors", "filters", "io", "label", "measure", "segment", "synth"]
