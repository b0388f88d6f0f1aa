"""ToF-SIMS spectral cubes to phases, interphases and agglomerate statistics (seed 000;
issue 7): SI images from m/z windows, filtered and segmented by relative intensity,
interphases from reference ions, agglomerates by watershed."""

from .agglomerates import agglomerate_properties, interface_lengths, label_agglomerates
from .images import relative_intensity, rgb_overlay, si_images, species_image
from .species import ANODE, CATHODE, SPECIES, species_windows
from .segment import otsu_threshold, reference_threshold, segment_sims

__all__ = ["si_images", "species_image", "relative_intensity", "rgb_overlay",
           "segment_sims", "otsu_threshold", "reference_threshold",
           "label_agglomerates", "agglomerate_properties", "interface_lengths",
           "SPECIES", "ANODE", "CATHODE", "species_windows"]
