"""Azimuthal integration of detector frames, block by block (seed 004, SWAXS-CT: pyFAI).

Each worker builds the pyFAI engine once (cached per process by geometry, frame shape,
bins, unit and mask) and integrates every frame of its block. With ``batched=True`` the
engine's sparse CSR integration matrix ``A`` (pixel splitting "bbox") is applied to all
frames of a block at once as a scipy sparse product,
``I = (A @ frames) / (A @ (solid angle x polarisation))``, which equals pyFAI's
``integrate1d`` with method ``("bbox", "csr", "cython")`` to about 1e-6 and is 3 to 7 times
faster on one core (../shared/notes/swaxs.md, section 5).
"""

from __future__ import annotations

import hashlib
import json
import threading

import dask.array as da
import numpy as np
import xarray as xr

from ..core.errors import InputError

__all__ = ["integrate", "load_geometry"]

_ENGINES = {}
_LOCK = threading.Lock()
_BUILD_LOCK = threading.Lock()


def load_geometry(poni):
    """pyFAI geometry as a JSON-able config dict, from a PONI file, a dict or an integrator."""
    try:
        import pyFAI
        from pyFAI.integrator.azimuthal import AzimuthalIntegrator
    except ImportError:
        raise InputError("poni", "pyFAI installed: pip install 'electromicro-dask[scattering]'") from None
    if isinstance(poni, AzimuthalIntegrator):
        ai = poni
    elif isinstance(poni, dict):
        ai = AzimuthalIntegrator()
        ai.set_config(poni)
    else:
        try:
            ai = pyFAI.load(str(poni))
        except Exception as exc:
            raise InputError("poni", f"a readable PONI file, {str(poni)!r} is not ({exc})") from None
    cfg = ai.get_config()
    cfg = json.loads(json.dumps(cfg, default=lambda o: getattr(o, "value", str(o))))
    return cfg


def _engine(cfg_json, shape, bins, unit, mask_key, mask, radial_range, pf, method, batched):
    # One engine per thread: pyFAI integrators cache state and are not thread-safe.
    key = (threading.get_ident(), cfg_json, shape, bins, unit, mask_key, radial_range, pf,
           tuple(method), batched)
    with _LOCK:
        entry = _ENGINES.get(key)
    if entry is not None:
        return entry
    # pyFAI evaluates its geometry arrays with numexpr, and numexpr called from several
    # threads at once can abort the process (seen under a loaded 3-process test run):
    # build one engine at a time; the others wait for it and find it in the cache.
    with _BUILD_LOCK:
        with _LOCK:
            entry = _ENGINES.get(key)
        if entry is not None:
            return entry
        from pyFAI.integrator.azimuthal import AzimuthalIntegrator

        ai = AzimuthalIntegrator()
        ai.set_config(json.loads(cfg_json))
        entry = {"ai": ai}
        if batched:
            from scipy.sparse import csr_matrix

            eng = ai.setup_sparse_integrator(shape, bins, mask=mask, unit=unit,
                                             pos0_range=radial_range, split="bbox", algo="CSR")
            a = csr_matrix((eng.data, eng.indices, eng.indptr), shape=(bins, int(np.prod(shape))))
            norm = ai.solidAngleArray(shape).astype(np.float64)
            if pf is not None:
                norm = norm * ai.polarization(shape, pf)
            entry["A"] = a
            entry["den"] = a @ norm.ravel()
        with _LOCK:
            _ENGINES[key] = entry
    return entry


def _integrate_block(block, cfg_json, bins, unit, mask_key, mask, radial_range, pf, method,
                     batched, monitor=None):
    shape = block.shape[-2:]
    lead = block.shape[:-2]
    e = _engine(cfg_json, shape, bins, unit, mask_key, mask, radial_range, pf, method, batched)
    flat = block.reshape((-1,) + shape)
    if batched:
        num = e["A"] @ flat.reshape(len(flat), -1).astype(np.float64).T
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (num / e["den"][:, None]).T
        out[:, e["den"] == 0] = 0.0
    else:
        out = np.empty((len(flat), bins))
        for i, frame in enumerate(flat):
            res = e["ai"].integrate1d(frame, bins, unit=unit, correctSolidAngle=True,
                                      polarization_factor=pf, mask=mask, method=method,
                                      radial_range=radial_range)
            out[i] = res.intensity
    out = out.reshape(lead + (bins,))
    if monitor is not None:
        out = out / monitor[..., None]
    return out.astype(np.float32)


def integrate(frames, poni, bins=1000, unit="q_A^-1", mask=None,
              method=("bbox", "csr", "cython"), polarization_factor=0.99, monitor=None,
              radial_range=None, batched=False):
    """Azimuthally integrate detector frames into 1D profiles, lazily.

    Parameters
    ----------
    frames : xarray.DataArray
        Frames with the detector axes last (``("angle", "t", "det_y", "det_x")`` for a
        scan, any leading dims allowed), dask-backed; each block of frames is one task.
    poni : str, dict or pyFAI AzimuthalIntegrator
        Detector geometry (a PONI file); never hard-coded.
    bins : int
        Number of radial bins (linear in ``unit``).
    unit : str
        pyFAI unit of the radial axis (default ``"q_A^-1"``).
    mask : numpy.ndarray, optional
        Detector mask (non-zero = masked), same shape as a frame.
    method : tuple
        pyFAI integration method (default bbox / csr / cython).
    polarization_factor : float or None
        Polarisation factor (0.99 for a synchrotron beam); solid angle is always corrected.
    monitor : xarray.DataArray, optional
        Incident intensity I0 per frame (dims of ``frames`` without the detector dims);
        profiles are divided by it.
    radial_range : (float, float), optional
        Radial range in ``unit``.
    batched : bool
        Apply pyFAI's sparse integration matrix to whole blocks of frames (bbox pixel
        splitting only), several times faster.

    Returns
    -------
    xarray.DataArray
        float32 profiles with dims ``frames.dims[:-2] + ("q",)`` and a ``q`` coordinate in
        ``unit``, lazy.

    Raises
    ------
    InputError
        A geometry whose detector shape differs from the frames, a mask of another shape,
        a monitor that does not match the frames.
    """
    if not isinstance(frames, xr.DataArray) or frames.ndim < 3:
        raise InputError("frames", "a DataArray of frames with the detector axes last")
    cfg = load_geometry(poni)
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    ai = AzimuthalIntegrator()
    ai.set_config(cfg)
    shape = tuple(frames.shape[-2:])
    det_shape = ai.detector.shape
    if det_shape is not None and tuple(det_shape) != shape:
        raise InputError("poni", f"a detector of the frames' shape {shape}, the geometry has "
                         f"{tuple(det_shape)}")
    if mask is not None:
        mask = np.asarray(mask).astype(np.int8)
        if mask.shape != shape:
            raise InputError("mask", f"shape {shape} like a frame, got {mask.shape}")
    if int(bins) < 2:
        raise InputError("bins", f"an integer >= 2, got {bins!r}")
    bins = int(bins)
    pf = None if polarization_factor is None else float(polarization_factor)
    rr = None if radial_range is None else tuple(float(v) for v in radial_range)
    method = tuple(method) if not isinstance(method, str) else method
    cfg_json = json.dumps(cfg, sort_keys=True)
    mask_key = hashlib.sha1(mask.tobytes()).hexdigest() if mask is not None else None
    ref = ai.integrate1d(np.zeros(shape, np.float32), bins, unit=unit, correctSolidAngle=True,
                         polarization_factor=pf, mask=mask, method=method, radial_range=rr)
    q = np.asarray(ref.radial, dtype=np.float64)
    if rr is not None:
        full = ai.integrate1d(np.zeros(shape, np.float32), bins, unit=unit, mask=mask,
                              method=method).radial
        step = full[1] - full[0]
        if rr[0] >= rr[1] or rr[0] < full[0] - step or rr[1] > full[-1] + step:
            raise InputError("radial_range", f"an increasing range within the detector's "
                             f"{full[0]:.4g} to {full[-1]:.4g} {unit}, got {rr}")

    data = frames.data if isinstance(frames.data, da.Array) else da.from_array(frames.data)
    nlead = data.ndim - 2
    data = data.rechunk({nlead: -1, nlead + 1: -1})
    out_chunks = data.chunks[:nlead] + ((bins,),)
    args = (cfg_json, bins, unit, mask_key, mask, rr, pf, method, bool(batched))
    if monitor is not None:
        if not isinstance(monitor, xr.DataArray) or monitor.dims != frames.dims[:-2]:
            raise InputError("monitor", f"a DataArray with dims {frames.dims[:-2]}")
        mon = monitor.data if isinstance(monitor.data, da.Array) else da.from_array(monitor.values)
        mon = mon.rechunk(data.chunks[:nlead])
        prof = da.map_blocks(lambda b, m, *a: _integrate_block(b, *a, monitor=m[..., 0, 0]),
                             data, mon[..., None, None], *args, chunks=out_chunks,
                             drop_axis=nlead + 1, dtype=np.float32)
    else:
        prof = data.map_blocks(_integrate_block, *args, chunks=out_chunks, drop_axis=nlead + 1,
                               dtype=np.float32)
    dims = frames.dims[:-2] + ("q",)
    coords = {k: v for k, v in frames.coords.items() if set(v.dims) <= set(frames.dims[:-2])}
    coords["q"] = xr.Variable("q", q, attrs={"units": unit})
    out = xr.DataArray(prof, dims=dims, coords=coords, name="profiles")
    out.attrs.update({"integration": {"bins": bins, "unit": unit, "method": list(method) if
                                      not isinstance(method, str) else method,
                                      "polarization_factor": pf, "batched": bool(batched),
                                      "geometry": cfg}})
    return out
