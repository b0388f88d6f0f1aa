"""Segmentation of grey-value images into phases."""

from .conversions import CONVERSIONS, convert
from .edx_closing import EDXProfile, edx_closing, edx_profile
from .fibsem import (UNetModel, fill_inclusions, load_unet, otsu_am, train_unet,
                     trinarize_fibsem, unet_segment)
from .kmeans import kmeans, kmeans_features
from .mlp import MLPModel, load_mlp, mlp, train_mlp
from .pfib import correct_pore_back, pfib_phases, powder_phases
from .recipe import DENSITIES_G_CM3, fractions_from_recipe
from .threshold import threshold

__all__ = ["threshold", "kmeans", "kmeans_features", "MLPModel", "train_mlp", "load_mlp",
           "mlp", "convert", "CONVERSIONS", "edx_closing", "correct_pore_back", "pfib_phases", "powder_phases",
           "fractions_from_recipe", "DENSITIES_G_CM3", "edx_profile", "EDXProfile",
           "otsu_am", "fill_inclusions", "UNetModel", "train_unet", "load_unet", "unet_segment",
           "trinarize_fibsem"]
