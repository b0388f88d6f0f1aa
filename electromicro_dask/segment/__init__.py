"""Segmentation of grey-value images into phases."""

from .threshold import threshold

__all__ = ["threshold"]
