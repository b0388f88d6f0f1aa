"""Synthetic data with known ground truth (electrodes, tomograms, ToF-SIMS sections and
cubes), generated lazily."""

from .cbd import cbd_morphology
from .correlative import FIBSEM_CONTRAST, correlative, correlative_fibsem, correlative_surface
from .electrode import electrode
from .pfib import PFIB_CONTRAST, PFIB_PHASES, detach_cbd, pfib_electrode, pfib_stack
from .sims import SIMS_PHASES, SIMS_SPECTRA, sims_cube, sims_section
from .tomogram import DEFAULT_CONTRAST, tomogram
from .wound_cell import WOUND_CELL_PHASES, wound_cell
from .detector_frames import detector_frames

__all__ = ["correlative", "correlative_fibsem", "correlative_surface", "FIBSEM_CONTRAST", "electrode", "tomogram", "DEFAULT_CONTRAST", "sims_section", "sims_cube",
           "SIMS_SPECTRA", "SIMS_PHASES", "pfib_electrode", "pfib_stack", "PFIB_PHASES",
           "PFIB_CONTRAST", "detach_cbd", "wound_cell", "WOUND_CELL_PHASES", "detector_frames",
           "cbd_morphology"]
