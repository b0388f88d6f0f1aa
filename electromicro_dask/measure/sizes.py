"""Phase size distribution (local thickness), simulated mercury intrusion and constrictivity.

Münch and Holzer, J. Am. Ceram. Soc. 91 (2008) 4059: the *continuous phase size
distribution* (c-PSD) gives, for each radius r, the share of a phase covered by balls of
radius r that fit inside it (the morphological opening by a ball of radius r); its 50 %
quantile is ``r_max``. *Simulated mercury intrusion porosimetry* (MIP) lets a ball of
radius r enter only where its centre is connected to the inlet face through centres where
it fits; its 50 % quantile is ``r_min``. Holzer et al., J. Power Sources 236 (2013) 235,
eq. 2, and seed 002 sec. 5.1 define the constrictivity ``beta = r_min^2 / r_max^2``.

Conventions follow PoreSpy's ``local_thickness(method="dt")`` and ``porosimetry(method=
"dt")`` so the two can be compared voxel by voxel: the distance transform ``dt`` gives
each phase voxel its distance to the nearest other voxel (the volume's outer faces are not
walls); ball centres for radius r are ``dt >= r``; a ball covers the voxels at distance
``< r`` from its centre; each voxel gets the largest radius that covers it; the MIP
connectivity of ball centres is face connectivity (6 neighbours in 3D).

Chunking: ``min(dt, R)`` for R at least the largest radius is exact on a block with a halo
of R (nearest walls further away than R do not change it); the largest radius, the global
maximum of ``dt``, is found first by capped passes with growing halos. The opening at
radius r needs centres up to r away, so local thickness works on blocks with a halo of
2 R. The intrusion needs the global connectivity of the centres to the inlet. All radii
are answered at once by the widest path from the inlet (for each voxel the largest
``min(dt)`` over face-connected paths from the inlet face; centres reachable at radius r
are those where it is ``>= r``): a grey-level reconstruction by dilation (Vincent, IEEE
Trans. Image Process. 2 (1993) 176) of the inlet under the per-voxel count of fitting
radii, one labeling per level within a block, iterated with boundary exchange across
blocks (:mod:`._exchange`). The dilation by r then runs on blocks with a halo of r.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import dask.array as da
import edt as edt_lib
import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage as ndi

from ..core.arrays import voxel_size
from ..core.errors import InputError
from ..core.phases import phase_code
from ..core.progress import compute
from ._exchange import assemble, extend, iterate
from ..core.reduce import blockwise_bincount
from .surface import _segmentation

__all__ = ["phase_size_distribution", "porosimetry", "constrictivity",
           "PhaseSizeDistribution", "Porosimetry", "Constrictivity"]


@dataclass
class PhaseSizeDistribution:
    """Result of :func:`phase_size_distribution`.

    Attributes
    ----------
    phase : str
    r_max : float
        Radius (um) at which half of the phase is covered by balls of at least that radius
        (Münch and Holzer 2008); NaN for an empty phase.
    curve : pandas.DataFrame
        Columns ``radius_um`` (ascending) and ``fraction``: share of the phase covered by
        balls of radius >= ``radius_um`` that fit inside the phase.
    local_thickness : xarray.DataArray
        Lazy map (um) of the largest covering radius per voxel, 0 outside the phase.
    """

    phase: str
    r_max: float
    curve: pd.DataFrame
    local_thickness: xr.DataArray = field(repr=False)


@dataclass
class Porosimetry:
    """Result of :func:`porosimetry`.

    Attributes
    ----------
    phase, inlet : str
    r_min : float
        Radius (um) at which half of the phase is intruded from the inlet (Münch and
        Holzer 2008); NaN if less than half of the phase is ever reached.
    curve : pandas.DataFrame
        Columns ``radius_um`` (ascending) and ``fraction``: share of the phase intruded by
        balls of radius >= ``radius_um``.
    intrusion : xarray.DataArray
        Lazy map (um) of the largest ball radius that reaches each voxel, 0 where none.
    """

    phase: str
    inlet: str
    r_min: float
    curve: pd.DataFrame
    intrusion: xr.DataArray = field(repr=False)


@dataclass
class Constrictivity:
    """Result of :func:`constrictivity`: ``beta = r_min**2 / r_max**2`` and its parts."""

    phase: str
    beta: float
    r_min: float
    r_max: float


# ----------------------------------------------------------------------------- helpers

def _edt(mask, spacing):
    return edt_lib.edt(np.ascontiguousarray(mask), anisotropy=tuple(float(s) for s in spacing),
                    black_border=False, parallel=1)


def _depth(length_um, spacing):
    """Halo in voxels per axis that holds every point within ``length_um``."""
    return {i: int(math.ceil(length_um / s - 1e-9)) + 1 for i, s in enumerate(spacing)}


def _rechunk_for(data, depth):
    # A halo never needs to be longer than the axis; an axis in one chunk needs none.
    for i, c in enumerate(data.chunks):
        depth[i] = 0 if len(c) == 1 else min(depth[i], data.shape[i])
    chunks = tuple(da.overlap.ensure_minimum_chunksize(max(1, depth[i]), c)
                   if len(c) > 1 else c for i, c in enumerate(data.chunks))
    return data.rechunk(chunks) if chunks != data.chunks else data


def _capped_dt_block(block, code, spacing, cap):
    return np.minimum(_edt(block == code, spacing), cap).astype(np.float32)


def _capped_dt(data, code, spacing, cap):
    """Lazy ``min(dt, cap)`` of the phase (um), exact across chunk borders."""
    depth = _depth(cap, spacing)
    work = _rechunk_for(data, depth)
    out = work.map_overlap(_capped_dt_block, depth=depth, boundary="none", dtype=np.float32,
                           code=code, spacing=tuple(spacing), cap=np.float32(cap))
    return out


def _max_distance(data, code, spacing):
    """Global maximum of the phase's distance transform (um): a small global quantity.

    Capped passes with growing halos: once the capped maximum is below the cap, it is the
    true maximum. A phase wider than the volume returns the volume's largest extent.
    """
    extent = float(max(n * s for n, s in zip(data.shape, spacing)))
    cap = 16.0 * float(min(spacing))
    while True:
        cap = min(cap, extent)
        dt = _capped_dt(data, code, spacing, cap)
        masked = da.where(data == code, dt, 0)
        (m,) = compute(masked.max(), label="phase size: largest distance")
        m = float(m)
        if m < cap - 1e-6 or cap >= extent:
            return m
        cap *= 2.0


def _default_radii(dtmax, spacing, radii_um, argument="radii_um"):
    """Descending radii in um: every multiple of the smallest voxel size up to max(dt)."""
    step = float(min(spacing))
    if radii_um is None:
        n = int(math.floor(dtmax / step + 1e-9))
        return step * np.arange(n, 0, -1, dtype=float)
    try:
        r = np.unique(np.asarray(radii_um, dtype=float).ravel())[::-1]
    except (TypeError, ValueError):
        raise InputError(argument, f"a sequence of radii in um, got {radii_um!r}") from None
    if r.size == 0 or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise InputError(argument, f"positive finite radii in um, got {radii_um!r}")
    return r[r <= dtmax + 1e-9]


def _lt_block(block, code, spacing, radii):
    """Index (1-based into descending ``radii``) of the largest ball covering each voxel."""
    mask = block == code
    out = np.zeros(block.shape, np.uint16)
    if not mask.any():
        return out
    dt = _edt(mask, spacing)
    for i, r in enumerate(radii):
        seeds = dt >= r
        if not seeds.any():
            continue
        cov = _edt(~seeds, spacing) < r
        out[(out == 0) & cov & mask] = i + 1
    return out


def _level_block(block, code, spacing, cap, radii_asc):
    """Per voxel, how many of the radii fit as ball centres there (``dt >= r``)."""
    dt = _capped_dt_block(block, code, spacing, cap)
    return np.searchsorted(radii_asc, dt, side="right").astype(np.uint16)


def _reach_block(level, parts, idx, axis, last, first_block):
    """Widest-path level from the inlet of every voxel of one block (0: unreached).

    ``level`` counts the radii whose balls fit centred on each voxel. A voxel gets the
    largest k such that a face-connected path of voxels with level >= k joins it to the
    inlet face or to a halo voxel offering k or more (a halo voxel offers its own
    widest-path level): the grey-level reconstruction by dilation of the inlet under
    ``level``, done as one labeling per level, highest first. A ball of the k-th smallest
    radius reaches a centre exactly when this is ``>= k``, which replaces one global
    labeling per radius by one iteration over blocks.
    """
    ext = extend(level.shape, parts, 0, np.uint16)
    inner = tuple(slice(1, n + 1) for n in level.shape)
    marker = ext.copy()
    if idx[axis] == first_block:
        face = list(inner)
        face[axis] = level.shape[axis] if last else 1
        marker[tuple(face)] = np.take(level, -1 if last else 0, axis=axis)
    out = np.zeros(ext.shape, np.uint16)
    if not marker.any() or not level.any():
        return out[inner]
    ext[inner] = level
    cross = ndi.generate_binary_structure(level.ndim, 1)
    for k in range(int(ext.max()), 0, -1):
        seeds = marker >= k
        if not seeds.any():
            continue
        lab, n = ndi.label(ext >= k, structure=cross)
        hit = np.zeros(n + 1, bool)
        hit[lab[seeds]] = True
        hit[0] = False
        out[hit[lab] & (out == 0)] = k
    return out[inner]


def _intrude_block(block, reach, code, spacing, radii):
    mask = block == code
    out = np.zeros(block.shape, np.uint16)
    n = len(radii)
    for i, r in enumerate(radii):
        a = reach >= n - i   # radii descend: radii[i] is the (n - i)-th smallest
        if not a.any():
            continue
        cov = _edt(~a, spacing) < r
        out[(out == 0) & cov & mask] = i + 1
    return out


def _curve(index, mask, radii, n_phase, label):
    """Cumulative share of the phase with index 1..k (radius >= radii[k-1])."""
    n = len(radii)
    idx = da.where(mask, index.astype(np.int64), 0)
    (hist,) = compute(blockwise_bincount(idx, n + 1), label=label)
    cum = np.cumsum(hist[1:n + 1]) / max(n_phase, 1)
    df = pd.DataFrame({"radius_um": radii[::-1], "fraction": cum[::-1]})
    return df


def _quantile50(curve, prepend_zero):
    r = curve["radius_um"].to_numpy()
    f = curve["fraction"].to_numpy()
    if prepend_zero:
        r = np.concatenate([[0.0], r])
        f = np.concatenate([[1.0], f])
    if r.size == 0 or f.max() < 0.5:
        return float("nan")
    # fraction decreases with radius: the largest radius with fraction >= 0.5 and the next
    above = np.nonzero(f >= 0.5)[0][-1]
    if above == len(r) - 1 or f[above] == 0.5:
        return float(r[above])
    r0, r1, f0, f1 = r[above], r[above + 1], f[above], f[above + 1]
    return float(r0 + (f0 - 0.5) * (r1 - r0) / (f0 - f1))


def _to_map(index, radii, template, name):
    lut = np.concatenate([[0.0], radii]).astype(np.float32)
    vals = index.map_blocks(lambda b: lut[b], dtype=np.float32)
    out = xr.DataArray(vals, dims=template.dims, coords=template.coords, name=name,
                       attrs={"units": "um"})
    return out


def _prepare(phases, phase, radii_um):
    seg = _segmentation(phases)
    code = phase_code(seg, phase, "phase")
    spacing = voxel_size(seg)
    data = seg.data
    (n_phase,) = compute((data == code).sum(), label="phase size: volume")
    dtmax = _max_distance(data, code, spacing) if n_phase else 0.0
    radii = _default_radii(dtmax, spacing, radii_um)
    return seg, code, spacing, int(n_phase), radii


# ----------------------------------------------------------------------------- public

def phase_size_distribution(phases, phase, radii_um=None):
    """Continuous phase size distribution (local thickness) of one phase and its ``r_max``.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation (2D or 3D) with ``attrs["phases"]``; anisotropic voxels allowed.
    phase : str
        The phase to size (``"pore"``, ``"cbd"``, ...).
    radii_um : sequence of float, optional
        Ball radii in um (default: every multiple of the smallest voxel size up to the
        largest distance inside the phase, as PoreSpy's default integer radii).
        Radii larger than the largest inscribed ball are dropped.

    Returns
    -------
    PhaseSizeDistribution
        ``r_max`` (um), ``curve`` (``radius_um``, ``fraction``), lazy ``local_thickness``.

    Notes
    -----
    Münch and Holzer (2008); conventions of PoreSpy ``local_thickness(method="dt")`` (module
    docstring). Computes small global quantities: the phase volume, the largest distance
    (capped passes with growing halos), and the histogram of the local thickness. Blocks
    carry a halo of twice the largest radius; each costs one distance transform per radius.

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask import measure
    >>> slab = np.zeros((30, 20, 20), "uint8"); slab[10:20] = 1   # a 10-voxel thick layer
    >>> seg = emd.as_volume(slab, voxel_size=1.0); seg.attrs["phases"] = {0: "am", 1: "pore"}
    >>> psd = measure.phase_size_distribution(seg, "pore")
    >>> psd.curve.radius_um.max(), round(psd.r_max, 1)
    (np.float64(5.0), 5.0)
    """
    seg, code, spacing, n_phase, radii = _prepare(phases, phase, radii_um)
    data = seg.data
    if radii.size:
        depth = _depth(2 * float(radii.max()), spacing)
        work = _rechunk_for(data, depth)
        index = work.map_overlap(_lt_block, depth=depth, boundary="none", dtype=np.uint16,
                                 code=code, spacing=tuple(spacing), radii=tuple(radii))
        if index.chunks != data.chunks:
            index = index.rechunk(data.chunks)
    else:
        index = da.zeros(data.shape, np.uint16, chunks=data.chunks)
    curve = _curve(index, data == code, radii, n_phase, "phase size distribution")
    r_max = _quantile50(curve, prepend_zero=True) if n_phase else float("nan")
    lt = _to_map(index, radii, seg, "local_thickness")
    return PhaseSizeDistribution(phase, r_max, curve, lt)


def _inlet(seg, inlet):
    if not isinstance(inlet, str) or len(inlet) < 2 or inlet[-1] not in "01" \
            or inlet[:-1] not in seg.dims:
        raise InputError("inlet", f"a face like 'z0' (first slice) or 'z1' (last slice) of "
                         f"the dims {seg.dims}, got {inlet!r}")
    return seg.dims.index(inlet[:-1]), inlet[-1] == "1"


def porosimetry(phases, phase, inlet="z0", radii_um=None):
    """Simulated mercury intrusion porosimetry from one face, and its ``r_min``.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation (2D or 3D) with ``attrs["phases"]``.
    phase : str
        The phase intruded (usually ``"pore"``).
    inlet : str
        The face the intruding phase enters through: a dim name and ``0`` (first slice)
        or ``1`` (last slice), e.g. ``"z0"`` (current collector side) or ``"z1"``.
    radii_um : sequence of float, optional
        Ball radii in um (default as :func:`phase_size_distribution`).

    Returns
    -------
    Porosimetry
        ``r_min`` (um), ``curve`` (``radius_um``, ``fraction`` intruded), lazy ``intrusion``.

    Notes
    -----
    Münch and Holzer (2008); conventions of PoreSpy ``porosimetry(method="dt")`` with the
    inlet face as ``inlets`` (module docstring). A ball centre is accessible when its
    face-connected component of centres touches the inlet face. For all radii at once
    this is the widest path from the inlet, a global quantity found by block-wise
    grey-level reconstruction with boundary exchange: each round brings the blocks'
    outer shells to the client, never the volume.

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask import measure
    >>> im = np.zeros((30, 20, 20), "uint8"); im[:, 5:15, 5:15] = 1   # a 10x10 channel
    >>> seg = emd.as_volume(im, voxel_size=1.0); seg.attrs["phases"] = {0: "am", 1: "pore"}
    >>> mip = measure.porosimetry(seg, "pore", inlet="z0")
    >>> float(mip.curve.fraction.iloc[0])
    1.0
    """
    seg = _segmentation(phases)
    axis, last = _inlet(seg, inlet)
    seg, code, spacing, n_phase, radii = _prepare(seg, phase, radii_um)
    data = seg.data
    if not radii.size:
        index = da.zeros(data.shape, np.uint16, chunks=data.chunks)
    else:
        cap = float(radii.max())
        depth = _depth(cap, spacing)
        work = _rechunk_for(data, depth)
        level = work.map_overlap(_level_block, depth=depth, boundary="none",
                                 dtype=np.uint16, code=code, spacing=tuple(spacing),
                                 cap=np.float32(cap),
                                 radii_asc=np.sort(radii).astype(np.float32))
        if level.chunks != data.chunks:
            level = level.rechunk(data.chunks)
        first = data.numblocks[axis] - 1 if last else 0

        def solve(b, parts, idx):
            return _reach_block(b, parts, idx, axis, last, first)

        _, parts = iterate([level], solve, 0, "porosimetry: widest paths", max_rounds=10000,
                           sources=lambda idx: idx[axis] == first)
        reach = assemble([level], solve, parts, 0, np.uint16)
        index = da.map_overlap(_intrude_block, work, reach.rechunk(work.chunks), depth=depth,
                               boundary="none", dtype=np.uint16, code=code,
                               spacing=tuple(spacing), radii=tuple(radii),
                               align_arrays=False)
        if index.chunks != data.chunks:
            index = index.rechunk(data.chunks)
    curve = _curve(index, data == code, radii, n_phase, "porosimetry")
    r_min = _quantile50(curve, prepend_zero=False) if n_phase else float("nan")
    return Porosimetry(phase, inlet, r_min, curve, _to_map(index, radii, seg, "intrusion"))


def constrictivity(phases, phase, inlet="z0", radii_um=None):
    """Constrictivity ``beta = r_min**2 / r_max**2`` of a phase (Holzer et al. 2013, eq. 2).

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation with ``attrs["phases"]``.
    phase : str
        The transporting phase.
    inlet : str
        Face for the simulated intrusion (see :func:`porosimetry`).
    radii_um : sequence of float, optional
        Ball radii in um shared by both distributions.

    Returns
    -------
    Constrictivity
        ``beta`` (1 = no bottlenecks, towards 0 = strong bottlenecks), ``r_min`` and
        ``r_max`` in um.

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask import measure
    >>> im = np.zeros((30, 20, 20), "uint8"); im[:, 5:15, 5:15] = 1
    >>> seg = emd.as_volume(im, voxel_size=1.0); seg.attrs["phases"] = {0: "am", 1: "pore"}
    >>> round(measure.constrictivity(seg, "pore").beta, 2)
    1.0
    """
    psd = phase_size_distribution(phases, phase, radii_um=radii_um)
    mip = porosimetry(phases, phase, inlet=inlet, radii_um=radii_um)
    beta = (mip.r_min / psd.r_max) ** 2 if psd.r_max > 0 else float("nan")
    return Constrictivity(phase, float(beta), mip.r_min, psd.r_max)
