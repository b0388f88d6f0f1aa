"""Lowest layer: data model validation, chunk policy, store, cluster, phases, errors."""

from .arrays import (DIMS, as_segmentation, as_volume, check_same_grid, default_chunks,
                     spatial_dims, voxel_size)
from .cluster import connect
from .errors import ConvergenceError, InputError, StoreError
from .phases import DEFAULT_PHASES, phase_code, phase_codes, phase_table
from .store import open_store, save

__all__ = ["DIMS", "as_volume", "as_segmentation", "check_same_grid", "default_chunks",
           "spatial_dims", "voxel_size", "connect", "InputError", "StoreError",
           "ConvergenceError", "DEFAULT_PHASES", "phase_code", "phase_codes", "phase_table",
           "open_store", "save"]
