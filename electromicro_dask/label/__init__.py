"""Labels that are correct across chunk borders: connected components, watershed, particle
properties and their distributions (issue 3; seed 000 Fig. 2/3B, seed 001 Fig. 6E/F)."""

from .components import connected_components
from .distribution import cluster_stats, largest_cluster_fraction, size_distribution
from .plot import plot_size_distribution
from .props import regionprops
from .watershed import distance_transform, watershed

__all__ = ["connected_components", "watershed", "distance_transform", "regionprops",
           "size_distribution", "cluster_stats", "largest_cluster_fraction",
           "plot_size_distribution"]
