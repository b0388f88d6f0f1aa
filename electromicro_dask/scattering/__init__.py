"""Scattering tomography of whole cells (seed 004): SAXS/WAXS maps from SWAXS-CT."""

from .dstar import d_star, d_star_profile
from .integrate import integrate, load_geometry

__all__ = ["d_star", "d_star_profile", "integrate", "load_geometry"]
