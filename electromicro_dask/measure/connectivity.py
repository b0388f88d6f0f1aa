"""Connectivity of a phase: clusters, percolating, dead-end and isolated shares (seed 001
CBD connectivity; Holzer et al., J. Power Sources 236 (2013) 235, for the split of a phase
into percolating, dead-end and isolated parts along the transport direction).

Built on the chunked labeling :func:`electromicro_dask.label.connected_components`, which is
exact across chunk borders; only the per-label voxel counts and the label ids on the two
faces come back to the client.
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np
import xarray as xr

from ..core.errors import InputError
from ..core.phases import phase_code
from ..core.progress import compute
from ..core.reduce import blockwise_bincount
from .surface import _axis_index, _segmentation

__all__ = ["connectivity", "Connectivity"]


@dataclass
class Connectivity:
    """Result of :func:`connectivity`.

    Attributes
    ----------
    phase, axis : str
    n_clusters : int
        Number of connected clusters of the phase.
    largest_cluster_fraction : float
        Share of the phase volume in the largest cluster.
    percolating_fraction : float
        Share of the phase in clusters touching both faces normal to ``axis``.
    dead_end_fraction : float
        Share in clusters touching exactly one of the two faces.
    isolated_fraction : float
        Share in clusters touching neither face.
    """

    phase: str
    axis: str
    n_clusters: int
    largest_cluster_fraction: float
    percolating_fraction: float
    dead_end_fraction: float
    isolated_fraction: float

    def as_dict(self):
        """The numbers as a plain dict."""
        return {k: getattr(self, k) for k in ("n_clusters", "largest_cluster_fraction",
                                              "percolating_fraction", "dead_end_fraction",
                                              "isolated_fraction")}


def connectivity(phases, phase, axis="z", connectivity=1):
    """Cluster statistics of a phase and its connection to the faces along ``axis``.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation (2D or 3D) with ``attrs["phases"]``.
    phase : str
        The phase (e.g. ``"cbd"`` for the conductive network, ``"pore"``).
    axis : str
        Transport direction; its first and last slices are the two faces.
    connectivity : {1, 2, 3}
        Neighbourhood as ``scipy.ndimage.generate_binary_structure(ndim, connectivity)``:
        1 = faces (6 in 3D), 2 = + edges (18), 3 = + corners (26).

    Returns
    -------
    Connectivity
        ``n_clusters``, ``largest_cluster_fraction``, ``percolating_fraction``,
        ``dead_end_fraction``, ``isolated_fraction`` (the last three sum to 1).

    Notes
    -----
    One chunked labeling (a global merge step) and one reduction bringing back the
    voxel count of every cluster and the cluster ids on the two faces.

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask import measure
    >>> im = np.zeros((10, 8, 8), "uint8"); im[:, 1, 1] = 1; im[4:6, 5, 5] = 1
    >>> seg = emd.as_volume(im, voxel_size=1.0); seg.attrs["phases"] = {0: "am", 1: "cbd"}
    >>> c = measure.connectivity(seg, "cbd")
    >>> c.n_clusters, round(c.percolating_fraction, 3), round(c.isolated_fraction, 3)
    (2, 0.833, 0.167)
    """
    from ..label import connected_components

    seg = _segmentation(phases)
    code = phase_code(seg, phase, "phase")
    ax = _axis_index(seg, axis)
    if isinstance(connectivity, bool) or connectivity not in range(1, seg.ndim + 1):
        raise InputError("connectivity", f"an integer in 1..{seg.ndim}, got {connectivity!r}")
    mask = xr.DataArray(seg.data == code, dims=seg.dims, coords=seg.coords)
    labels = connected_components(mask, connectivity=int(connectivity))
    n = int(labels.attrs["n_labels"])
    lab = labels.data
    first = [slice(None)] * lab.ndim
    last = [slice(None)] * lab.ndim
    first[ax] = 0
    last[ax] = -1
    sizes, f0, f1 = compute(blockwise_bincount(lab.astype(np.int64), n + 1),
                            da.unique(lab[tuple(first)]), da.unique(lab[tuple(last)]),
                            label="connectivity")
    sizes = np.asarray(sizes)[1:].astype(float)
    total = sizes.sum()
    if n == 0 or total == 0:
        nan = float("nan")
        return Connectivity(phase, axis, 0, nan, nan, nan, nan)
    touch0 = np.zeros(n, bool)
    touch1 = np.zeros(n, bool)
    touch0[f0[f0 > 0] - 1] = True
    touch1[f1[f1 > 0] - 1] = True
    both = touch0 & touch1
    one = touch0 ^ touch1
    return Connectivity(
        phase, axis, n,
        float(sizes.max() / total),
        float(sizes[both].sum() / total),
        float(sizes[one].sum() / total),
        float(sizes[~(touch0 | touch1)].sum() / total),
    )
