"""Scattering tomography of whole cells (seed 004): SAXS/WAXS maps from SWAXS-CT."""

from .dstar import d_star, d_star_profile

__all__ = ["d_star", "d_star_profile"]
