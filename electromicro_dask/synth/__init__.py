"""Synthetic data with known ground truth (electrodes, tomograms), generated lazily."""

from .electrode import electrode
from .tomogram import DEFAULT_CONTRAST, tomogram

__all__ = ["electrode", "tomogram", "DEFAULT_CONTRAST"]
