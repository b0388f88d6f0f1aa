"""Measurements on segmentations: fractions, profiles, agreement, descriptors."""

from .compare import compare, compare_many, confusion
from .fractions import profile, volume_fractions
from .connectivity import connectivity
from .correlation import two_point_correlation
from .cracks import contact_area, crack_fraction
from .cutouts import cutouts, over_cutouts
from .describe import describe
from .geodesic import geodesic_tortuosity
from .sizes import constrictivity, phase_size_distribution, porosimetry
from .surface import interface_area, specific_interface_area, surface_area

__all__ = ["volume_fractions", "profile", "compare", "compare_many", "confusion",
           "surface_area", "interface_area", "specific_interface_area",
           "two_point_correlation", "phase_size_distribution", "porosimetry",
           "constrictivity", "geodesic_tortuosity", "connectivity", "crack_fraction",
           "contact_area", "describe", "cutouts", "over_cutouts"]
