"""Crack volume and phase contact normalised by particle volume and surface (seed 001,
Fig. 2C and 2D: cracks in NMC particles and NMC-CBD contact after calendering/cycling)."""

from __future__ import annotations

from ..core.errors import InputError
from ..core.phases import phase_code
from .fractions import volume_fractions
from .surface import _interface_matrix, _segmentation

__all__ = ["crack_fraction", "contact_area"]


def crack_fraction(phases, crack="crack", particle="am"):
    """Crack volume normalised by the particle volume including its cracks.

    ``V_crack / (V_particle + V_crack)`` (seed 001, Fig. 2C).

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation with ``attrs["phases"]`` holding both phases.
    crack : str
        Name of the crack phase.
    particle : str
        Name of the particle (active material) phase.

    Returns
    -------
    float
        Crack fraction in [0, 1]; NaN when neither phase occurs.

    Notes
    -----
    One global reduction (the phase histogram).

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask import measure
    >>> im = np.zeros((4, 4, 4), "uint8"); im[1:3, 1:3, 1:3] = 2; im[1, 1, 1] = 3
    >>> seg = emd.as_volume(im, voxel_size=1.0)
    >>> seg.attrs["phases"] = {0: "pore", 2: "am", 3: "crack"}
    >>> measure.crack_fraction(seg)
    0.125
    """
    seg = _segmentation(phases)
    phase_code(seg, crack, "crack")
    phase_code(seg, particle, "particle")
    if crack == particle:
        raise InputError("crack", f"a phase other than particle={particle!r}")
    f = volume_fractions(seg)
    tot = f[crack] + f[particle]
    return float(f[crack] / tot) if tot > 0 else float("nan")


def contact_area(phases, a, b):
    """Interface area between phases ``a`` and ``b`` as a share of the surface of ``a``.

    E.g. the NMC-CBD contact normalised by the particle surface (seed 001, Fig. 2D):
    ``contact_area(seg, "am", "cbd")``. Areas from the Crofton estimator of
    :func:`electromicro_dask.measure.interface_area`.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation with ``attrs["phases"]``.
    a, b : str
        Phase names; the result is ``S_ab / S_a`` with ``S_a`` the total surface of ``a``.

    Returns
    -------
    float
        Share in [0, 1]; NaN when ``a`` has no surface.

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask import measure
    >>> im = np.zeros((12, 8, 8), "uint8"); im[4:8] = 2; im[8:] = 1   # pore|am|cbd layers
    >>> seg = emd.as_volume(im, voxel_size=1.0)
    >>> seg.attrs["phases"] = {0: "pore", 1: "cbd", 2: "am"}
    >>> round(measure.contact_area(seg, "am", "cbd"), 3)
    0.5
    """
    seg = _segmentation(phases)
    ca = phase_code(seg, a, "a")
    cb = phase_code(seg, b, "b")
    if ca == cb:
        raise InputError("b", f"a phase other than a={a!r}")
    mat, _ = _interface_matrix(seg, "contact area")
    total = mat[ca].sum() - mat[ca, ca]
    return float(mat[ca, cb] / total) if total > 0 else float("nan")
