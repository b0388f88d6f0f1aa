"""Labels that are correct across chunk borders: connected components, watershed, particle
properties and their distributions (issue 3; seed 000 Fig. 2/3B, seed 001 Fig. 6E/F)."""

from .components import connected_components

__all__ = ["connected_components"]
