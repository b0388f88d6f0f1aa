"""Scattering tomography of whole cells (seed 004): SAXS/WAXS maps from SWAXS-CT."""

from .agglomerates import agglomerates, size_distribution
from .dstar import d_star, d_star_profile
from .integrate import integrate, load_geometry
from .maps import (SAXS_WINDOW, TABLE1_WINDOWS, composite, dominant_window, saxs_intensity,
                   window_sums)
from .reconstruct import reconstruct
from .unroll import find_casing, polar_unroll, unwind_spiral, winding_pitch
from .sinogram import (assemble, find_center, merge_subsets, normalize_i0, shift_center,
                       to_sinogram)

__all__ = ["d_star", "d_star_profile", "integrate", "load_geometry", "reconstruct",
           "assemble", "find_center", "merge_subsets", "normalize_i0", "shift_center", "to_sinogram",
           "window_sums", "dominant_window", "saxs_intensity", "composite", "TABLE1_WINDOWS",
           "SAXS_WINDOW", "find_casing", "polar_unroll", "unwind_spiral", "winding_pitch", "agglomerates",
           "size_distribution"]
