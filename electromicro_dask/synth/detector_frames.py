"""Genuine 2D detector frames from 1D scattering profiles, lazily (tier T1 of
../shared/notes/swaxs.md 6).

A frame is what an isotropic scatterer with profile ``I(q)`` leaves on a flat detector of a
known geometry: at each pixel the profile at the pixel's q, times the pixel's solid angle and
the polarisation factor. This is pyFAI's ``AzimuthalIntegrator.calcfrom1d`` (linear
interpolation in q at pixel centres, ``correctSolidAngle`` and ``polarization_factor``),
vectorised over a block of frames: the interpolation indices and weights are found once per
detector and applied to every profile of the block. Integrating such a frame with the same
corrections gives the profile back (the round trip of notes/swaxs.md check 1).
"""

from __future__ import annotations

import json
import threading

import dask.array as da
import numpy as np
import xarray as xr

from ..core.errors import InputError

__all__ = ["detector_frames"]

_CACHE = {}
_LOCK = threading.Lock()


def _integrator(poni):
    try:
        import pyFAI
        from pyFAI.integrator.azimuthal import AzimuthalIntegrator
    except ImportError:
        raise InputError("poni", "pyFAI installed: pip install 'electromicro-dask[scattering]'") \
            from None
    if isinstance(poni, AzimuthalIntegrator):
        return poni
    if isinstance(poni, dict):
        ai = AzimuthalIntegrator()
        ai.set_config(poni)
        return ai
    try:
        return pyFAI.load(str(poni))
    except Exception as exc:
        raise InputError("poni", f"a readable PONI file, {str(poni)!r} is not ({exc})") from None


def _weights(cfg_json, shape, unit, pf, q):
    """Per pixel: the two neighbouring profile bins, the weight of the upper one and the
    intensity factor (solid angle x polarisation), cached per process and geometry."""
    key = (cfg_json, shape, unit, pf, q.tobytes())
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is None:
        from pyFAI.integrator.azimuthal import AzimuthalIntegrator

        ai = AzimuthalIntegrator()
        ai.set_config(json.loads(cfg_json))
        qpix = ai.array_from_unit(shape, "center", unit).ravel()
        norm = ai.solidAngleArray(shape).ravel().astype(np.float64)
        if pf is not None:
            norm = norm * ai.polarization(shape, pf).ravel()
        # np.interp's rule: constant beyond the ends
        qc = np.clip(qpix, q[0], q[-1])
        hi = np.clip(np.searchsorted(q, qc, side="right"), 1, len(q) - 1)
        lo = hi - 1
        w = (qc - q[lo]) / (q[hi] - q[lo])
        hit = (lo, hi, w, norm)
        with _LOCK:
            _CACHE[key] = hit
    return hit


def _frames_block(block, cfg_json, shape, unit, pf, q, counts, seed, nt, block_info=None):
    lo, hi, w, norm = _weights(cfg_json, shape, unit, pf, q)
    lead = block.shape[:-1]
    prof = block.reshape(-1, block.shape[-1]).astype(np.float64)
    out = np.empty((prof.shape[0], lo.size), np.float32)
    a0 = t0 = 0
    if counts is not None:
        loc = block_info[0]["array-location"]
        a0, t0 = loc[0][0], loc[1][0]
    # frame by frame: float64 temporaries of one frame, not of the block
    for k, p in enumerate(prof):
        f = (p[lo] * (1.0 - w) + p[hi] * w) * norm
        if counts is not None:
            # one generator per frame, seeded by its global position: chunk-invariant noise
            ia, it = divmod(k, lead[1])
            rng = np.random.default_rng([int(seed), (a0 + ia) * nt + t0 + it])
            f = rng.poisson(np.maximum(f, 0.0) * counts) / counts
        out[k] = f
    return out.reshape(lead + shape)


def detector_frames(profiles, poni, shape=None, unit="q_A^-1", polarization_factor=0.99,
                    counts=None, seed=0):
    """2D detector frames that integrate back to the given 1D profiles, lazily.

    Parameters
    ----------
    profiles : xarray.DataArray
        ``("angle", "t", "q")`` 1D profiles per beam position (e.g. the ``sinogram`` of
        :func:`wound_cell`), with a ``q`` coordinate in ``unit``; chunks over angle and t
        become blocks of frames.
    poni : str, dict or pyFAI AzimuthalIntegrator
        Detector geometry (a PONI file).
    shape : (int, int), optional
        Frame shape (default: the detector's).
    unit : str
        pyFAI unit of the ``q`` coordinate.
    polarization_factor : float or None
        As pyFAI's (0.99 for a synchrotron beam); the solid angle is always applied.
    counts : float, optional
        Poisson noise: each pixel counts ``counts x value`` photons (values are divided back,
        so the mean is unchanged); chunk-invariant. Default: no noise.
    seed : int

    Returns
    -------
    xarray.DataArray
        float32 ``("angle", "t", "det_y", "det_x")`` with the positioner coordinates of
        ``profiles``; each block is made by one task, so frames never sit in memory at once.

    Examples
    --------
    >>> cell = wound_cell(size=32, n_angles=6, subsets=3)             # doctest: +SKIP
    >>> frames = detector_frames(cell.sinogram, "waxs.poni")          # doctest: +SKIP
    """
    if not isinstance(profiles, xr.DataArray) or profiles.dims != ("angle", "t", "q"):
        raise InputError("profiles", "a DataArray with dims ('angle', 't', 'q')")
    if "q" not in profiles.coords:
        raise InputError("profiles", "a 'q' coordinate")
    q = np.asarray(profiles["q"].values, dtype=np.float64)
    if q.size < 2 or np.any(np.diff(q) <= 0):
        raise InputError("profiles", "an increasing q coordinate with 2+ values")
    ai = _integrator(poni)
    if shape is None:
        shape = getattr(ai.detector, "max_shape", None)
        if shape is None:
            raise InputError("shape", "the frame shape (the detector does not state one)")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise InputError("shape", f"two positive integers, got {shape}")
    if counts is not None and not float(counts) > 0:
        raise InputError("counts", f"a positive number of counts, got {counts!r}")
    cfg = ai.get_config()
    cfg_json = json.dumps(cfg, default=lambda o: getattr(o, "value", str(o)), sort_keys=True)
    data = profiles.data if isinstance(profiles.data, da.Array) else da.from_array(
        np.asarray(profiles.data), chunks=(1, -1, -1))
    data = data.rechunk({2: -1})
    out = data.map_blocks(_frames_block, cfg_json, shape, unit, polarization_factor, q,
                          None if counts is None else float(counts), int(seed),
                          profiles.sizes["t"], drop_axis=2, new_axis=[2, 3],
                          chunks=data.chunks[:2] + ((shape[0],), (shape[1],)),
                          dtype=np.float32)
    coords = {k: v for k, v in profiles.coords.items() if "q" not in v.dims}
    frames = xr.DataArray(out, dims=("angle", "t", "det_y", "det_x"), coords=coords,
                          name="frames", attrs={"units": "counts (scaled)", "unit_q": unit})
    return frames
