"""Multimodal rigid registration of volumes, slice-height search and RGB composites.

Seed 004 ("Multimodal datasets alignments") registers neutron and X-ray CT of the same cell
(different voxel sizes, inverted contrast: what absorbs X-rays may be transparent to
neutrons), finds the height of a SWAXS-CT slice in the registered volume and shows the
result as a red (X-ray) / cyan (neutron) composite; seed 002's correlative microscopy needs
the same steps. Here (notes/swaxs.md 2.7):

* :func:`register` estimates the rigid transform (rotation and translation, um) with
  Mattes mutual information (Mattes et al., IEEE Trans. Med. Imaging 22 (2003) 120), which
  does not care about the sign of the contrast, optimised by SimpleITK (Apache-2.0; the
  seed's spam is GPL, so it is not a dependency). Like every local optimiser it needs a
  start within its capture range: an automatic pre-alignment searches rotations on a coarse
  grid and, for each, the best translation by FFT cross-correlation of gradient magnitudes
  (a contrast-sign-free edge map). A result is reported as not converged when the optimiser
  ran out of iterations, when the overlap is small, or when the two volumes share little
  information at the end (uncertainty coefficient, Press et al., Numerical Recipes 3rd ed.,
  eq. 14.7.20).
* :func:`resample` brings the moving volume onto the fixed grid lazily, block by block.
* :func:`composition` averages a fine label volume (FIB-SEM) into the voxels of a coarse
  grid (the tomogram) through a registration: the per-voxel phase fractions that train
  seed 002's correlative network (its section 3.3).
* :func:`locate` finds a 2D image (an SEM surface scan) in a larger 2D slice by SIFT
  features (Lowe, Int. J. Comput. Vis. 60 (2004) 91; scikit-image) and a RANSAC similarity
  fit (Fischler & Bolles, Commun. ACM 24 (1981) 381), as seed 002 section 3.3 does.
* :func:`find_slice` finds the slice of a volume that best matches a 2D map (normalised
  mutual information per slice, Studholme et al., Pattern Recognit. 32 (1999) 71).
* :func:`composite` makes the red = X-ray / cyan = neutron RGB image.

Coordinates are the data model's ``(z, y, x)`` in micrometres throughout; a transform maps
a point of the fixed volume to the point of the moving volume that shows the same material:
``p_moving = R @ (p_fixed - c) + c + t`` with ``c`` the centre of the fixed volume.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .core.arrays import as_volume, spatial_dims, voxel_size
from .core.errors import InputError
from .core.geometry import rotation_zyx
from .core.progress import compute

__all__ = ["Registration", "register", "resample", "composition", "locate", "Location",
           "find_slice", "composite"]


@dataclass
class Registration:
    """Result of :func:`register`.

    Attributes
    ----------
    matrix : numpy.ndarray
        4 x 4 homogeneous transform on ``(z, y, x)`` um: fixed point -> moving point.
    rotation : numpy.ndarray
        3 x 3 rotation part (``(z, y, x)`` axes).
    scale : float
        Isotropic scale of the matrix (1 unless registered with ``scale=True``).
    translation_um : tuple of float
        ``t`` of ``p_moving = s R (p_fixed - c) + c + t``, ``(z, y, x)`` um.
    center_um : tuple of float
        ``c``, the centre of the fixed volume.
    angle_deg : float
        Total rotation angle.
    converged : bool
        Whether the result can be trusted; ``reason`` says why not.
    reason : str
    shared_information : float
        Mutual information over the smaller of the two entropies at the result, in [0, 1].
    overlap : float
        Share of the fixed volume that the moving volume covers at the result.
    metric : float
        Final Mattes mutual information (negative; lower is better).
    iterations : int
    prealignment : dict
        The start of the fine registration and how it was found.
    """

    matrix: np.ndarray
    translation_um: tuple
    center_um: tuple
    converged: bool
    reason: str
    shared_information: float
    overlap: float
    metric: float
    iterations: int
    prealignment: dict = field(default_factory=dict)

    @property
    def scale(self):
        """Isotropic scale (1 for a rigid registration)."""
        return float(abs(np.linalg.det(self.matrix[:3, :3])) ** (1.0 / 3.0))

    @property
    def rotation(self):
        return self.matrix[:3, :3] / self.scale

    @property
    def angle_deg(self):
        c = (np.trace(self.rotation) - 1.0) / 2.0
        return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))

    def apply(self, points_um):
        """Moving-volume coordinates of fixed-volume points ``(..., 3)`` (z, y, x um)."""
        p = np.asarray(points_um, dtype=np.float64)
        return p @ self.matrix[:3, :3].T + self.matrix[:3, 3]


# ----------------------------------------------------------------------------- helpers

def _volume(v, argument):
    if not isinstance(v, xr.DataArray):
        raise InputError(argument, "a volume with physical coordinates (an xarray.DataArray "
                         f"with z, y, x coordinates in um), got {type(v).__name__}")
    if spatial_dims(v) != ("z", "y", "x") or v.ndim != 3:
        raise InputError(argument, f"a 3D volume with dims (z, y, x), got {v.dims}")
    for d in ("z", "y", "x"):
        if d not in v.coords:
            raise InputError(argument, f"physical coordinates in um for dim {d!r} (see "
                             "electromicro_dask.as_volume(..., voxel_size=...))")
    try:
        spacing = voxel_size(v)
    except InputError as e:
        raise InputError(argument, str(e).split(": ", 1)[-1]) from None
    origin = tuple(float(v.coords[d].values[0]) for d in ("z", "y", "x"))
    return spacing, origin


def _coarsened(v, spacing, max_voxels):
    """In-memory float32 copy, block-mean coarsened to at most ``max_voxels`` voxels."""
    f = max(1, math.ceil((v.size / max_voxels) ** (1.0 / 3.0) - 1e-9))
    data = v.data if isinstance(v.data, da.Array) else da.from_array(np.asarray(v.data))
    data = data.astype(np.float32)
    if f > 1:
        trim = tuple(slice(0, (n // f) * f) for n in data.shape)
        data = da.coarsen(np.mean, data[trim], {0: f, 1: f, 2: f}, trim_excess=True)
    (arr,) = compute(data, label="registration copy")
    return np.asarray(arr, dtype=np.float32), tuple(s * f for s in spacing)


def _image(arr, spacing, origin):
    import SimpleITK as sitk

    im = sitk.GetImageFromArray(np.ascontiguousarray(arr, dtype=np.float32))
    im.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    # the centre of a coarsened voxel: half the coarsening step beyond the first voxel centre
    im.SetOrigin(tuple(float(o) for o in origin[::-1]))
    return im


def _euler(R, t, center):
    """SimpleITK Euler3DTransform (x, y, z order) from R, t on (z, y, x)."""
    import SimpleITK as sitk

    tx = sitk.Euler3DTransform()
    tx.SetCenter(tuple(float(c) for c in center[::-1]))
    tx.SetMatrix(tuple(float(v) for v in R[::-1, ::-1].ravel()))
    tx.SetTranslation(tuple(float(v) for v in t[::-1]))
    return tx


def _affine(M, t, center):
    """SimpleITK AffineTransform (x, y, z order) from a matrix M and t on (z, y, x)."""
    import SimpleITK as sitk

    tx = sitk.AffineTransform(3)
    tx.SetCenter(tuple(float(c) for c in center[::-1]))
    tx.SetMatrix(tuple(float(v) for v in np.asarray(M)[::-1, ::-1].ravel()))
    tx.SetTranslation(tuple(float(v) for v in t[::-1]))
    return tx


def _from_euler(tx):
    R = np.array(tx.GetMatrix(), dtype=np.float64).reshape(3, 3)[::-1, ::-1]
    t = np.array(tx.GetTranslation(), dtype=np.float64)[::-1]
    return R, t


def _homogeneous(R, t, c):
    m = np.eye(4)
    m[:3, :3] = R
    m[:3, 3] = c + t - R @ c
    return m


_rotation_zyx = rotation_zyx  # the name the tests and helpers use


def _edges(arr, spacing, sigma_um):
    from scipy import ndimage as ndi

    sig = [sigma_um / s for s in spacing]
    g = ndi.gaussian_gradient_magnitude(arr.astype(np.float32), sig)
    return g


def _resampled(fixed_im, moving_im, tx, fill=np.nan):
    import SimpleITK as sitk

    out = sitk.Resample(moving_im, fixed_im, tx, sitk.sitkLinear, float(fill), sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def _prealign(fixed_im, moving_im, f_arr, m_arr, f_spacing, m_spacing, center, start,
              max_angle_deg, angle_step_deg, n_coarse=40):
    """Coarse search: for each rotation of a grid around ``start``, the best translation by
    FFT cross-correlation of gradient-magnitude maps resampled to one coarse grid."""
    import SimpleITK as sitk

    R0, t0 = start
    step = max(f_spacing) * max(1.0, max(f_arr.shape) / n_coarse)
    ext = [n * s for n, s in zip(f_arr.shape, f_spacing)]
    size = [max(4, int(round(e / step))) for e in ext]
    ref = sitk.Image([int(v) for v in size[::-1]], sitk.sitkFloat32)
    ref.SetSpacing((step,) * 3)
    ref.SetOrigin(fixed_im.GetOrigin())
    ef = _image(_edges(f_arr, f_spacing, step), f_spacing, fixed_im.GetOrigin()[::-1])
    em = _image(_edges(m_arr, m_spacing, step), m_spacing, moving_im.GetOrigin()[::-1])
    gf = _resampled(ref, ef, sitk.Euler3DTransform(), 0.0)
    gf = (gf - gf.mean()) / (gf.std() + 1e-12)
    pad = [2 * n for n in gf.shape]
    Ff = np.conj(np.fft.rfftn(gf, pad, axes=(0, 1, 2)))
    n_ang = int(round(max_angle_deg / angle_step_deg)) if angle_step_deg > 0 else 0
    angles = np.radians(angle_step_deg * np.arange(-n_ang, n_ang + 1))
    best = (-np.inf, R0, t0)
    for a in angles:
        for b in angles:
            for g in angles:
                R = _rotation_zyx(a, b, g) @ R0
                gm = _resampled(ref, em, _euler(R, t0, center), np.nan)
                valid = np.isfinite(gm)
                if valid.mean() < 0.25:
                    continue
                gm = np.where(valid, gm, np.nanmean(gm))
                gm = (gm - gm.mean()) / (gm.std() + 1e-12)
                cc = np.fft.irfftn(np.fft.rfftn(gm, pad, axes=(0, 1, 2)) * Ff, pad, axes=(0, 1, 2))
                # cc[s] = sum_p gm[p + s] gf[p]: the moving map matches where shifted by s
                k = np.unravel_index(int(np.argmax(cc)), cc.shape)
                score = cc[k] / gf.size
                if score > best[0]:
                    s = np.array([ki if ki < n else ki - p for ki, n, p in zip(k, gf.shape, pad)])
                    # a feature at fixed point p shows at moving grid point p + s, i.e. at
                    # R (p - c) + c + t0 + R s step: the translation grows by R s step
                    best = (score, R, t0 + R @ (s * step))
    return best


def _information(f, m, bins=32):
    """(mutual information / min entropy, overlap share) of two arrays on one grid."""
    ok = np.isfinite(m) & np.isfinite(f)
    overlap = float(ok.mean())
    if ok.sum() < 64:
        return 0.0, overlap
    a, b = f[ok], m[ok]
    h, _, _ = np.histogram2d(a, b, bins=bins)
    p = h / h.sum()
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    ha = float(-(pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = float(-(pb[pb > 0] * np.log(pb[pb > 0])).sum())
    return mi / max(min(ha, hb), 1e-12), overlap


def _initial(initial, argument="initial"):
    if initial is None:
        return np.eye(3), np.zeros(3)
    if isinstance(initial, Registration):
        return initial.rotation.copy(), np.asarray(initial.translation_um, dtype=float)
    try:
        rot, t = initial
        rot = np.asarray(rot, dtype=float)
        t = np.asarray(t, dtype=float).reshape(3)
    except (TypeError, ValueError):
        raise InputError(argument, "(rotation, translation_um): three angles in degrees about "
                         "z, y, x or a 3 x 3 matrix, and three translations in um") from None
    if rot.shape == (3,):
        rot = _rotation_zyx(*np.radians(rot))
    if rot.shape != (3, 3) or not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6):
        raise InputError(argument, "a rotation: three angles in degrees or an orthonormal "
                         "3 x 3 matrix")
    return rot, t


# ----------------------------------------------------------------------------- public

_STAGNANT_WINDOW = 50
_STAGNANT_REL = 1e-4


def _stagnant(history):
    """ITK's convergence-window test: the last iterations no longer change the metric.
    The regular-step optimiser keeps stepping along a flat valley of the metric (a
    direction the data hardly determine) until its iterations run out; there the metric
    has long stopped improving, which counts as converged."""
    if len(history) < 2 * _STAGNANT_WINDOW:
        return False
    last = np.asarray(history[-_STAGNANT_WINDOW:], dtype=float)
    scale = max(abs(float(np.mean(last))), 1e-12)
    return float(last.max() - last.min()) / scale < _STAGNANT_REL


def register(fixed, moving, initial=None, prealign=True, max_angle_deg=20.0,
             angle_step_deg=10.0, bins=50, sampling=0.25, max_iterations=300,
             min_shared=0.05, max_voxels=4_000_000, seed=0, threads=1, scale=False):
    """Rigid (or similarity) multimodal registration of ``moving`` onto ``fixed`` (mutual
    information).

    Parameters
    ----------
    fixed, moving : xarray.DataArray
        3D grey-value volumes ``(z, y, x)`` with coordinates in um; voxel sizes, extents and
        contrast (even its sign) may differ.
    initial : (rotation, translation_um) or Registration, optional
        A rough start: rotation as three angles in degrees (about z, then y, then x) or a
        3 x 3 matrix, translation in um (``(z, y, x)``; see the module docstring). Default:
        identity.
    prealign : bool
        Search rotations within ``max_angle_deg`` of the start in ``angle_step_deg`` steps,
        each with its best translation, before the fine optimisation (default True). Without
        it the optimiser starts at ``initial`` and a start outside its capture range is
        reported as not converged.
    max_angle_deg, angle_step_deg : float
        The pre-alignment's rotation grid (per axis).
    bins : int
        Histogram bins of the mutual information.
    sampling : float
        Share of the fixed voxels sampled per metric evaluation.
    max_iterations : int
        Per resolution level of the fine optimisation.
    min_shared : float
        Smallest mutual information over the smaller entropy (0 to 1) that counts as
        converged; misregistered multimodal volumes share almost none (below 0.02 in the
        tests), aligned ones 0.15 and more.
    max_voxels : int
        Volumes larger than this are block-mean coarsened (integer factor) for the
        registration; the transform is in um either way.
    seed : int
        Seed of the metric's voxel sampling.
    scale : bool
        Also fit an isotropic scale (a similarity transform), for voxel sizes known only
        roughly (seed 002's FIB-SEM to synchrotron ratio of 64 is known to about 2 %).
    threads : int
        Threads of the optimisation. With more than one, the metric's sums are added in
        a varying order and the result is no longer reproducible to the last digit.

    Returns
    -------
    Registration

    Examples
    --------
    >>> import electromicro_dask as emd
    >>> from electromicro_dask import register as reg
    >>> r = reg.register(xray, neutron)                         # doctest: +SKIP
    >>> r.converged, r.translation_um, r.angle_deg              # doctest: +SKIP
    (True, (0.61, 1.72, -2.28), 1.51)
    >>> aligned = reg.resample(neutron, r, like=xray)           # doctest: +SKIP
    """
    try:
        import SimpleITK as sitk
    except ImportError:  # pragma: no cover - an install problem, not bad input
        raise ImportError("register needs SimpleITK: pip install 'electromicro-dask[register]'")
    f_spacing, f_origin = _volume(fixed, "fixed")
    m_spacing, m_origin = _volume(moving, "moving")
    for name, v in (("bins", bins), ("max_iterations", max_iterations)):
        if not isinstance(v, (int, np.integer)) or v < 2:
            raise InputError(name, f"an integer of at least 2, got {v!r}")
    if not isinstance(threads, (int, np.integer)) or threads < 1:
        raise InputError("threads", f"a positive integer, got {threads!r}")
    if not 0 < float(sampling) <= 1:
        raise InputError("sampling", f"a share in (0, 1], got {sampling!r}")
    if not 0 <= float(min_shared) < 1:
        raise InputError("min_shared", f"a value in [0, 1), got {min_shared!r}")
    if float(max_angle_deg) < 0 or float(angle_step_deg) <= 0:
        raise InputError("max_angle_deg", "max_angle_deg >= 0 and angle_step_deg > 0")
    R0, t0 = _initial(initial)

    f_arr, f_sp = _coarsened(fixed, f_spacing, max_voxels)
    m_arr, m_sp = _coarsened(moving, m_spacing, max_voxels)
    # coarsened voxel centres sit half a (new - old) step beyond the first original centre
    f_org = tuple(o + (n - s) / 2 for o, n, s in zip(f_origin, f_sp, f_spacing))
    m_org = tuple(o + (n - s) / 2 for o, n, s in zip(m_origin, m_sp, m_spacing))
    fim, mim = _image(f_arr, f_sp, f_org), _image(m_arr, m_sp, m_org)
    center = np.array([o + (n - 1) * s / 2 for o, n, s in zip(f_org, f_arr.shape, f_sp)])

    pre = {"method": "none", "rotation": R0.tolist(), "translation_um": t0.tolist()}
    if prealign:
        score, R0, t0 = _prealign(fim, mim, f_arr, m_arr, f_sp, m_sp, center, (R0, t0),
                                  float(max_angle_deg), float(angle_step_deg))
        pre = {"method": "rotation grid x FFT edge correlation", "score": float(score),
               "rotation": R0.tolist(), "translation_um": t0.tolist()}

    reg = sitk.ImageRegistrationMethod()
    reg.SetNumberOfThreads(int(threads))
    reg.SetMetricAsMattesMutualInformation(int(bins))
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    # seed 0 is SimpleITK's sitkWallClock (a new sample every run): shift ours by one
    reg.SetMetricSamplingPercentage(float(sampling), int(seed) + 1)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4,
                                                 numberOfIterations=int(max_iterations),
                                                 relaxationFactor=0.5,
                                                 gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([2, 1])
    reg.SetSmoothingSigmasPerLevel([1, 0])
    start = _euler(R0, t0, center)
    if scale:
        start = sitk.Similarity3DTransform()
        start.SetCenter(tuple(float(c) for c in center[::-1]))
        start.SetMatrix(tuple(float(v) for v in R0[::-1, ::-1].ravel()))
        start.SetTranslation(tuple(float(v) for v in t0[::-1]))
    reg.SetInitialTransform(start, inPlace=False)
    history = []
    reg.AddCommand(sitk.sitkIterationEvent, lambda: history.append(reg.GetMetricValue()))
    out = reg.Execute(fim, mim)
    if out.GetName() == "CompositeTransform":
        out = sitk.CompositeTransform(out).GetNthTransform(0)
    kind = sitk.Similarity3DTransform if scale else sitk.Euler3DTransform
    R, t = _from_euler(kind(out))  # R carries the scale when fitted
    stop = reg.GetOptimizerStopConditionDescription()
    shared, overlap = _information(f_arr, _resampled(fim, mim, _affine(R, t, center)))
    reasons = []
    if "Maximum number of iterations" in stop and not _stagnant(history):
        reasons.append(f"the optimiser ran out of iterations ({stop})")
    elif "Maximum number of iterations" in stop:
        stop = (f"metric stagnant (relative change below {_STAGNANT_REL:g} over the last "
                f"{_STAGNANT_WINDOW} iterations) when the iterations ran out")
    if overlap < 0.25:
        reasons.append(f"the volumes overlap on {100 * overlap:.0f} % of the fixed volume")
    if shared < min_shared:
        reasons.append(f"they share {shared:.3f} of their information (< min_shared = "
                       f"{min_shared}): a local optimum away from the alignment; give a "
                       "closer `initial` or a wider pre-alignment")
    return Registration(matrix=_homogeneous(R, t, center), translation_um=tuple(t.tolist()),
                        center_um=tuple(center.tolist()), converged=not reasons,
                        reason="; ".join(reasons) or stop, shared_information=shared,
                        overlap=overlap, metric=float(reg.GetMetricValue()),
                        iterations=int(reg.GetOptimizerIteration()), prealignment=pre)


def _resample_block(arr, lo, zyx, matrix, origin, spacing, order, fill):
    from scipy import ndimage as ndi

    p = np.stack(np.meshgrid(*zyx, indexing="ij"), axis=-1)
    q = p @ matrix[:3, :3].T + matrix[:3, 3]
    idx = [(q[..., i] - origin[i]) / spacing[i] - lo[i] for i in range(3)]
    return ndi.map_coordinates(np.asarray(arr, dtype=np.float32), idx, order=order,
                               mode="constant", cval=fill).astype(np.float32)


def _block_sources(like, matrix, src_shape, src_origin, src_spacing, halo):
    """For every block of ``like``: its index, coordinates, shape and the index range
    ``[lo, hi)`` of the source array its voxels map into (voxel edges included, plus
    ``halo`` voxels), or ``None`` where the block maps outside the source."""
    offsets = [np.cumsum((0,) + c) for c in like.data.chunks]
    spacing = voxel_size(like)
    for idx in np.ndindex(*like.data.numblocks):
        zyx = [like.coords[d].values[offsets[i][j]:offsets[i][j + 1]]
               for i, (d, j) in enumerate(zip(("z", "y", "x"), idx))]
        shape = tuple(len(a) for a in zyx)
        edges = [[a[0] - h / 2, a[-1] + h / 2] for a, h in zip(zyx, spacing)]
        corners = np.array(np.meshgrid(*edges, indexing="ij")).reshape(3, -1).T
        q = corners @ matrix[:3, :3].T + matrix[:3, 3]
        ii = (q - np.array(src_origin)) / np.array(src_spacing)
        lo = np.clip(np.floor(ii.min(0)).astype(int) - halo, 0, np.array(src_shape))
        hi = np.clip(np.ceil(ii.max(0)).astype(int) + halo + 1, 0, np.array(src_shape))
        yield idx, zyx, shape, (None if np.any(hi <= lo) else (lo, hi))


def resample(moving, registration, like, order=1, fill=np.nan):
    """``moving`` on the grid of ``like`` through a :class:`Registration`, lazily.

    Each output block reads only the part of ``moving`` its transformed corners span.

    Parameters
    ----------
    moving : xarray.DataArray
        The volume registered as ``moving``.
    registration : Registration
    like : xarray.DataArray
        The grid (coordinates and chunks) of the result, usually the fixed volume.
    order : int
        Spline order of the interpolation (0: nearest, for labels; 1: linear).
    fill : float
        Value outside ``moving``.

    Returns
    -------
    xarray.DataArray
        float32 on the coordinates of ``like``.

    Examples
    --------
    >>> aligned = resample(neutron, r, like=xray)               # doctest: +SKIP
    """
    if not isinstance(registration, Registration):
        raise InputError("registration", f"a Registration, got {type(registration).__name__}")
    m_spacing, m_origin = _volume(moving, "moving")
    _volume(like, "like")
    if order not in (0, 1, 3):
        raise InputError("order", f"0, 1 or 3, got {order!r}")
    like = as_volume(like, argument="like")
    mdata = moving.data if isinstance(moving.data, da.Array) else da.from_array(
        np.asarray(moving.data))
    m = registration.matrix
    halo = 1 if order <= 1 else 2
    blocks = np.empty(like.data.numblocks, dtype=object)
    fn = dask.delayed(_resample_block, pure=True)
    for idx, zyx, shape, src in _block_sources(like, m, mdata.shape, m_origin, m_spacing, halo):
        if src is None:
            blocks[idx] = da.full(shape, fill, dtype=np.float32)
            continue
        lo, hi = src
        part = mdata[tuple(slice(a, b) for a, b in zip(lo, hi))]
        blocks[idx] = da.from_delayed(fn(part, lo, zyx, m, m_origin, m_spacing, order, fill),
                                      shape=shape, dtype=np.float32)
    data = da.block(blocks.tolist())
    out = xr.DataArray(data, dims=("z", "y", "x"), coords={d: like.coords[d] for d in "zyx"},
                       name=moving.name, attrs=dict(moving.attrs))
    return out


def _composition_block(labels, lo, zyx, spacing_like, matrix, origin, spacing, codes,
                       samples):
    """Phase fractions and coverage of coarse voxels by a regular sub-grid of sample
    points (midpoint rule), one sub-grid offset at a time to keep memory per block small."""
    grids = np.meshgrid(*zyx, indexing="ij")
    shape = grids[0].shape
    counts = np.zeros((len(codes),) + shape, np.float32)
    covered = np.zeros(shape, np.float32)
    steps = (np.arange(samples) + 0.5) / samples - 0.5
    lab = np.asarray(labels)
    hi = np.array(lab.shape) - 1
    for off in itertools.product(steps, repeat=3):
        p = [g + o * h for g, o, h in zip(grids, off, spacing_like)]
        q = [matrix[i, 0] * p[0] + matrix[i, 1] * p[1] + matrix[i, 2] * p[2] + matrix[i, 3]
             for i in range(3)]
        idx = [np.rint((q[i] - origin[i]) / spacing[i]).astype(np.int64) - lo[i]
               for i in range(3)]
        inside = np.ones(shape, bool)
        for i in range(3):
            inside &= (idx[i] >= 0) & (idx[i] <= hi[i])
            np.clip(idx[i], 0, hi[i], out=idx[i])
        v = lab[idx[0], idx[1], idx[2]]
        covered += inside
        for k, c in enumerate(codes):
            counts[k] += inside & (v == c)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(covered > 0, counts / covered, np.nan)
    return np.concatenate([frac, (covered / samples ** 3)[None]]).astype(np.float32)


def composition(labels, registration, like, samples=4):
    """Fraction of each phase of a fine segmentation inside every voxel of a coarse grid.

    Seed 002 (section 3.3) trains its network on the composition of every synchrotron
    voxel measured by the registered FIB-SEM volume. Each coarse voxel is sampled on a
    regular ``samples^3`` sub-grid (the midpoint rule); every sample point is mapped
    through the registration into the fine volume and takes the label of the fine voxel
    it falls in, so any size ratio (integer or not), rotation and partial coverage is
    handled; fractions are over the covered points.

    Parameters
    ----------
    labels : xarray.DataArray
        Fine 3D segmentation (``attrs["phases"]``), the registration's ``moving`` volume.
    registration : Registration
        Maps points of ``like`` to points of ``labels`` (um).
    like : xarray.DataArray
        The coarse grid (the registration's ``fixed`` volume); its chunks set the blocks.
    samples : int
        Sample points per coarse voxel edge; choose it so the sub-grid is at least as fine
        as the fine voxels (``samples >= coarse / fine`` voxel size) for exact counts of
        the fine voxels, fewer for a quadrature.

    Returns
    -------
    xarray.Dataset
        ``composition`` (``("phase", "z", "y", "x")``, float32, NaN where not covered) and
        ``coverage`` (share of each coarse voxel inside the fine volume), lazy.

    Examples
    --------
    >>> comp = composition(fib_labels, r, like=tomogram, samples=8)    # doctest: +SKIP
    """
    from .core.phases import phase_table

    if not isinstance(registration, Registration):
        raise InputError("registration", f"a Registration, got {type(registration).__name__}")
    l_spacing, l_origin = _volume(labels, "labels")
    like_spacing, _ = _volume(like, "like")
    try:
        table = phase_table(labels)
    except InputError:
        raise InputError("labels", "a segmentation with attrs['phases']") from None
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise InputError("samples", f"a positive integer, got {samples!r}")
    like = as_volume(like, argument="like")
    codes = sorted(table)
    ldata = labels.data if isinstance(labels.data, da.Array) else da.from_array(
        np.asarray(labels.data))
    m = registration.matrix
    n_out = len(codes) + 1
    blocks = np.empty(like.data.numblocks, dtype=object)
    fn = dask.delayed(_composition_block, pure=True)
    for idx, zyx, shape, src in _block_sources(like, m, ldata.shape, l_origin, l_spacing, 1):
        if src is None:
            nan = da.full((len(codes),) + shape, np.nan, dtype=np.float32)
            blocks[idx] = da.concatenate([nan, da.zeros((1,) + shape, np.float32)])
            continue
        lo, hi = src
        part = ldata[tuple(slice(a, b) for a, b in zip(lo, hi))]
        blocks[idx] = da.from_delayed(
            fn(part, lo, zyx, like_spacing, m, l_origin, l_spacing, codes, int(samples)),
            shape=(n_out,) + shape, dtype=np.float32)
    out = _stack_blocks(blocks)
    coords = {d: like.coords[d] for d in "zyx"}
    comp = xr.DataArray(out[:-1], dims=("phase", "z", "y", "x"),
                        coords=dict(coords, phase=[table[c] for c in codes]),
                        name="composition")
    cov = xr.DataArray(out[-1], dims=("z", "y", "x"), coords=coords, name="coverage")
    return xr.Dataset({"composition": comp, "coverage": cov})


def _stack_blocks(blocks):
    """Assemble a 3D grid of (n, bz, by, bx) dask blocks into one (n, Z, Y, X) array."""
    nz, ny, nx = blocks.shape
    return da.concatenate([
        da.concatenate([
            da.concatenate([blocks[i, j, k] for k in range(nx)], axis=3)
            for j in range(ny)], axis=2)
        for i in range(nz)], axis=1)


@dataclass
class Location:
    """Result of :func:`locate`: where a 2D image lies in a reference image.

    ``matrix`` (3 x 3, on ``(y, x)`` um) maps image points to reference points;
    ``angle_deg`` is its rotation on ``(y, x)`` (from y towards x); ``scale`` the size
    ratio left after the resampling to the reference's pixel size (1 when the stated pixel
    sizes are right);
    ``center_um`` is where the image's centre falls; ``residual_um`` the RMS distance of
    the RANSAC inliers after the fit; ``inliers`` their number.
    """

    matrix: np.ndarray
    center_um: tuple
    angle_deg: float
    scale: float
    residual_um: float
    inliers: int
    matches: int


def _on_grid(img, spacing, origin, step):
    """A 2D image resampled (area-averaged) to pixels of ``step`` um, and its new origin."""
    from skimage.transform import rescale

    f = [s / step for s in spacing]
    out = rescale(img, f, anti_aliasing=True, preserve_range=True) if \
        any(abs(x - 1) > 1e-6 for x in f) else img
    return out, tuple(o - s / 2 + step / 2 for o, s in zip(origin, spacing))


def _normalised(img):
    lo, hi = np.nanpercentile(img, (1, 99))
    return np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1)


def locate(image, reference, min_inliers=8, residual_threshold_px=1.5, seed=0):
    """Locate a 2D image (e.g. an SEM surface scan) in a reference slice by SIFT + RANSAC.

    Parameters
    ----------
    image, reference : xarray.DataArray
        2D images with ``(y, x)`` coordinates in um; the image is resampled to the
        reference's pixel size first (the size ratio comes from the coordinates, so SIFT
        compares like with like). Their contrast must have the same sign (SIFT descriptors
        are not contrast-sign invariant): invert one if needed.
    min_inliers : int
        Fewer RANSAC inliers raise :class:`~electromicro_dask.errors.ConvergenceError`.
    residual_threshold_px : float
        RANSAC inlier distance in reference pixels.
    seed : int

    Returns
    -------
    Location

    Examples
    --------
    >>> loc = locate(sem_surface, tomogram.isel(z=0))             # doctest: +SKIP
    >>> loc.center_um, loc.residual_um                            # doctest: +SKIP
    """
    from skimage.feature import SIFT, match_descriptors
    from skimage.measure import ransac
    from skimage.transform import SimilarityTransform

    from .core.errors import ConvergenceError

    arrs = []
    for name, im in (("image", image), ("reference", reference)):
        if not isinstance(im, xr.DataArray) or im.dims != ("y", "x"):
            raise InputError(name, "a 2D DataArray with dims (y, x) and coordinates in um")
        for d in ("y", "x"):
            if d not in im.coords:
                raise InputError(name, f"physical coordinates in um for dim {d!r}")
        try:
            sp = voxel_size(im)
        except InputError as e:
            raise InputError(name, str(e).split(": ", 1)[-1]) from None
        arrs.append((np.asarray(im.values, dtype=np.float64), sp,
                     tuple(float(im.coords[d].values[0]) for d in ("y", "x"))))
    (img, isp, iorg), (ref, rsp, rorg) = arrs
    step = float(min(rsp))
    img, iorg = _on_grid(img, isp, iorg, step)
    ref, rorg = _on_grid(ref, rsp, rorg, step)
    keys, descs = [], []
    for a in (img, ref):
        sift = SIFT()
        try:
            sift.detect_and_extract(_normalised(a))
        except RuntimeError:  # no keypoints at all
            raise ConvergenceError("locate: no SIFT features found") from None
        keys.append(sift.keypoints[:, ::-1])  # (row, col) -> (x, y) for the transforms
        descs.append(sift.descriptors)
    m = match_descriptors(descs[0], descs[1], max_ratio=0.8, cross_check=True)
    if len(m) < min_inliers:
        raise ConvergenceError(f"locate: {len(m)} SIFT matches, fewer than min_inliers = "
                               f"{min_inliers}")
    src, dst = keys[0][m[:, 0]], keys[1][m[:, 1]]
    model, inl = ransac((src, dst), SimilarityTransform, min_samples=3,
                        residual_threshold=residual_threshold_px, max_trials=2000,
                        rng=np.random.default_rng(seed))
    n_in = int(inl.sum()) if inl is not None else 0
    if model is None or n_in < min_inliers:
        raise ConvergenceError(f"locate: {n_in} RANSAC inliers of {len(m)} matches, fewer "
                               f"than min_inliers = {min_inliers}: not located")
    res = np.sqrt(np.mean(np.sum((model(src[inl]) - dst[inl]) ** 2, axis=1))) * step
    # pixel (x, y) of the resampled image -> um (y, x) of the reference
    to_px = np.array([[0, 1 / step, -iorg[1] / step], [1 / step, 0, -iorg[0] / step], [0, 0, 1]])
    to_um = np.array([[0, step, rorg[0]], [step, 0, rorg[1]], [0, 0, 1]])
    M = to_um @ model.params @ to_px
    cy = float(image.coords["y"].values.mean())
    cx = float(image.coords["x"].values.mean())
    c = M @ np.array([cy, cx, 1.0])
    return Location(matrix=M, center_um=(float(c[0]), float(c[1])),
                    # skimage's angle is in the (x, y) frame: on (y, x) it turns the other way
                    angle_deg=-float(np.degrees(model.rotation)), scale=float(model.scale),
                    residual_um=float(res), inliers=n_in, matches=int(len(m)))


def _nmi_block(block, image, bins, lo, hi):
    out = np.empty(block.shape[0])
    b = image.ravel()
    for k in range(block.shape[0]):
        a = block[k].ravel()
        ok = np.isfinite(a) & np.isfinite(b)
        h, _, _ = np.histogram2d(a[ok], b[ok], bins=bins, range=[lo, hi])
        p = h / max(h.sum(), 1)
        pa, pb = p.sum(1), p.sum(0)

        def ent(q):
            q = q[q > 0]
            return float(-(q * np.log(q)).sum())

        hj = ent(p.ravel())
        out[k] = (ent(pa) + ent(pb)) / hj if hj > 0 else 0.0
    return out


def find_slice(volume, image, axis="z", bins=32):
    """The slice of ``volume`` along ``axis`` that best matches the 2D ``image``.

    Parameters
    ----------
    volume : xarray.DataArray
        3D volume (already registered in-plane, e.g. by :func:`resample`).
    image : xarray.DataArray or numpy.ndarray
        2D map on the grid of one slice (the other two dims of ``volume``), any contrast.
    axis : str
        The dim searched.
    bins : int
        Histogram bins of the normalised mutual information.

    Returns
    -------
    index : int
        Index of the best slice along ``axis``.
    scores : pandas.Series
        Normalised mutual information ``(H(a) + H(b)) / H(a, b)`` per slice (1: independent,
        2: identical up to a relabelling), indexed by the coordinate in um.

    Examples
    --------
    >>> k, scores = find_slice(xct, saxs_map)                  # doctest: +SKIP
    """
    import pandas as pd

    _volume(volume, "volume")
    if axis not in volume.dims:
        raise InputError("axis", f"one of {volume.dims}, got {axis!r}")
    img = np.asarray(image.values if isinstance(image, xr.DataArray) else image, dtype=float)
    other = [d for d in volume.dims if d != axis]
    want = tuple(volume.sizes[d] for d in other)
    if img.shape != want:
        raise InputError("image", f"a 2D map on the grid of one {axis}-slice, shape {want}, "
                         f"got {img.shape}")
    if not isinstance(bins, (int, np.integer)) or bins < 2:
        raise InputError("bins", f"an integer of at least 2, got {bins!r}")
    v = volume.transpose(axis, *other).data
    v = v if isinstance(v, da.Array) else da.from_array(np.asarray(v))
    v = v.rechunk({1: -1, 2: -1}).astype(np.float64)
    vmin, vmax = compute(da.nanmin(v), da.nanmax(v), label="slice search: range")
    lo = (float(vmin), float(vmax) + 1e-12)
    hi = (float(np.nanmin(img)), float(np.nanmax(img)) + 1e-12)
    scores = v.map_blocks(_nmi_block, img, bins, lo, hi, drop_axis=(1, 2), dtype=float)
    (s,) = compute(scores, label="slice search")
    s = pd.Series(s, index=pd.Index(volume.coords[axis].values, name=f"{axis}_um"),
                  name="nmi")
    return int(np.argmax(s.values)), s


def composite(xray, neutron, percentiles=(1.0, 99.0)):
    """Red = X-ray, cyan = neutron RGB composite of two registered images (seed 004).

    Parameters
    ----------
    xray, neutron : array-like or xarray.DataArray
        Images (2D or 3D) on one grid.
    percentiles : (float, float)
        Each channel is scaled from these percentiles to 0 and 1 (clipped).

    Returns
    -------
    numpy.ndarray
        ``(..., 3)`` float RGB in [0, 1]: red from ``xray``, green and blue from ``neutron``;
        where both are bright the pixel is white, NaN (outside a volume) is black.

    Examples
    --------
    >>> rgb = composite(xray.isel(z=40), aligned.isel(z=40))    # doctest: +SKIP
    """
    a = np.asarray(getattr(xray, "values", xray), dtype=float)
    b = np.asarray(getattr(neutron, "values", neutron), dtype=float)
    if a.shape != b.shape:
        raise InputError("neutron", f"an image on the grid of xray {a.shape}, got {b.shape}")

    def scale(x):
        lo, hi = np.nanpercentile(x, percentiles)
        return np.nan_to_num(np.clip((x - lo) / max(hi - lo, 1e-12), 0, 1), nan=0.0)

    r, c = scale(a), scale(b)
    return np.stack([r, c, c], axis=-1)
