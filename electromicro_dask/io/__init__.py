"""Lazy readers of microscopy data into DataArrays, and ingestion into the store.

Every reader returns a dask-backed :class:`xarray.DataArray` in the data model
(coordinates in micrometres); pixel data are read only when computed, one task per
chunk, on any scheduler (the file is opened once per worker process).
"""

from .hdf5 import read_hdf5
from .ingest import ingest, read
from .raw import from_numpy, read_npy, read_raw
from .tiff import read_tiff, read_tiff_folder

__all__ = ["read_tiff", "read_tiff_folder", "read_hdf5", "read_raw", "read_npy",
           "from_numpy", "read", "ingest"]
from .spectral import read_imzml, read_si_ascii, read_tiff_stack  # noqa: E402
from .frames import read_frames  # noqa: E402
from .curves import read_curve  # noqa: E402

__all__ += ["read_imzml", "read_si_ascii", "read_tiff_stack", "read_frames", "read_curve"]
