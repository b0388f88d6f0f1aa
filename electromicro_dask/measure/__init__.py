"""Measurements on segmentations: fractions, profiles, agreement, descriptors."""

from .compare import compare, compare_many, confusion
from .fractions import profile, volume_fractions

__all__ = ["volume_fractions", "profile", "compare", "compare_many", "confusion"]
