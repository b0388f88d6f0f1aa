"""SliceGAN: 3D microstructures from 2D images (Kench and Cooper, Nat. Mach. Intell. 2021).

Seed 000 section 2.3 trains it on segmented ToF-SIMS sections. This package trains the
model of the reference code (``v.1.1``) on one (isotropic) or three (anisotropic) 2D
images with checkpoint/resume, generates volumes of any size lazily and chunk-invariantly
into the store, and compares their statistics with the training image.

- :func:`train`, :func:`submit_train` (a cluster task, GPU worker when there is one)
- :func:`generate` -> lazy labels DataArray
- :func:`validate` -> table, S2 curves, figures
- :func:`labels_from_rgb`, :func:`load_model`, :class:`SliceGANModel`, :data:`CONFIGS`
"""

from .config import CONFIGS, make_config
from .data import labels_from_rgb
from .generate import generate
from .model import SliceGANModel, load_model
from .train import submit_train, train
from .validate import Validation, two_point, validate

__all__ = ["CONFIGS", "make_config", "labels_from_rgb", "generate", "SliceGANModel",
           "load_model", "submit_train", "train", "Validation", "two_point", "validate"]
