"""Tomographic reconstruction of sinograms, one q bin (or q window) per channel, distributed
over q with dask (seed 004, SWAXS-CT: "SART as implemented in astra-toolbox").

scikit-image's ``iradon_sart`` (Andersen & Kak 1984) is the default SART here: one call is
one sweep over all angles, relaxation 0.15, non-negativity by ``clip=(0, np.inf)`` (in
scikit-image 0.26 ``clip=(0, None)`` returns an all-NaN image, ../shared/notes/swaxs.md,
section 2.3). ``method="fbp"`` is filtered back-projection (``iradon``, ramp filter), the
fast option for the hundreds of SAXS q bins (notes section 5). Both use scikit-image's
geometry: the rotation axis at pixel ``n_t // 2`` of the translation axis (centre first
with :func:`~electromicro_dask.scattering.assemble`).

``library="astra"`` runs astra-toolbox's SART instead (the seed's own tool; GPLv3, an
optional extra: ``pip install electromicro-dask[astra]``), ``SART_CUDA`` on a worker with a
GPU and the CPU ``SART`` with a linear projector otherwise, on the same geometry (pixel =
translation step, rotation axis at the detector centre). One astra iteration updates from one
projection, so one sweep here is ``n_angles`` of them, in a fixed pseudo-random order (astra's
own "random" order is unseeded and would make the result depend on the run);
non-negativity by ``MinConstraint = 0``. ``library="auto"`` takes astra when it imports.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from ..core.errors import InputError

__all__ = ["reconstruct"]

_METHODS = ("sart", "fbp")
_LIBRARIES = ("auto", "scikit-image", "astra")


def _astra_available():
    try:
        import astra  # noqa: F401
    except Exception:  # noqa: BLE001 - missing CUDA runtime libraries raise OSError
        return False
    return True


def _astra_sart(sino, theta, iterations, relaxation):
    """SART of one (angle, t) sinogram with astra-toolbox; angles in degrees."""
    import astra

    n_a, n_t = sino.shape
    pg = astra.create_proj_geom("parallel", 1.0, n_t, np.deg2rad(np.asarray(theta)))
    # scikit-image puts the rotation axis through pixel n // 2 of the image and of the
    # detector, astra through their centres, (n - 1) / 2: for an even n the detector and the
    # volume window are moved by half a pixel (astra's y axis points up the rows).
    off, h = 0.5 * (1 - n_t % 2), n_t / 2
    if off:
        pg = astra.geom_postalignment(pg, -off)
    vg = astra.create_vol_geom(n_t, n_t, -h - off, h - off, -h + off, h + off)
    cuda = bool(astra.use_cuda())
    pid = None if cuda else astra.create_projector("linear", pg, vg)
    sid = astra.data2d.create("-sino", pg, np.ascontiguousarray(sino, dtype=np.float32))
    rid = astra.data2d.create("-vol", vg, 0.0)
    order = np.concatenate([np.random.default_rng(k).permutation(n_a)
                            for k in range(int(iterations))])
    cfg = astra.astra_dict("SART_CUDA" if cuda else "SART")
    cfg.update(ProjectionDataId=sid, ReconstructionDataId=rid)
    if pid is not None:
        cfg["ProjectorId"] = pid
    cfg["option"] = {"MinConstraint": 0.0, "Relaxation": float(relaxation),
                     "ProjectionOrder": "custom", "ProjectionOrderList": order}
    aid = astra.algorithm.create(cfg)
    try:
        astra.algorithm.run(aid, int(len(order)))
        return astra.data2d.get(rid)
    finally:
        astra.algorithm.delete(aid)
        astra.data2d.delete([sid, rid])
        if pid is not None:
            astra.projector.delete(pid)


def _recon_block(block, theta, method, iterations, relaxation, library):
    from skimage.transform import iradon, iradon_sart

    n_t = block.shape[1]
    out = np.empty((n_t, n_t, block.shape[2]), np.float32)
    for k in range(block.shape[2]):
        if library == "astra" and method == "sart":
            out[:, :, k] = _astra_sart(block[:, :, k], theta, iterations, relaxation)
            continue
        sino = np.ascontiguousarray(block[:, :, k].T, dtype=np.float64)  # (t, angle)
        if method == "fbp":
            img = iradon(sino, theta=theta, filter_name="ramp", circle=True)
        else:
            img = None
            for _ in range(iterations):
                img = iradon_sart(sino, theta=theta, image=img, relaxation=relaxation,
                                  clip=(0, np.inf))
        out[:, :, k] = img
    return out


def _one(sino, method, iterations, relaxation, q_chunk, library):
    if not isinstance(sino, xr.DataArray) or sino.dims[:2] != ("angle", "t"):
        raise InputError("sinograms", "a DataArray with dims ('angle', 't') or ('angle', 't', 'q')")
    if "angle" not in sino.coords or "t" not in sino.coords:
        raise InputError("sinograms", "'angle' (degrees) and 't' (um) positioner coordinates")
    theta = np.asarray(sino["angle"].values, dtype=np.float64)
    if np.any(np.diff(theta) <= 0):
        raise InputError("sinograms", "angles sorted ascending (use scattering.assemble or "
                         "merge_subsets first)")
    t = np.asarray(sino["t"].values, dtype=np.float64)
    step = float(np.mean(np.diff(t)))
    if sino.ndim == 2:
        res = _one(sino.expand_dims("q", axis=2), method, iterations, relaxation, q_chunk,
                   library)
        return res.isel(q=0, drop=True)
    if sino.ndim != 3:
        raise InputError("sinograms", "dims ('angle', 't') or ('angle', 't', 'q')")
    data = sino.data if isinstance(sino.data, da.Array) else da.from_array(np.asarray(sino.data))
    data = data.rechunk({0: -1, 1: -1, 2: int(q_chunk)})
    n_t = data.shape[1]
    rec = data.map_blocks(_recon_block, theta, method, int(iterations), float(relaxation), library,
                          chunks=((n_t,), (n_t,), data.chunks[2]), dtype=np.float32)
    xy = np.arange(n_t) * step
    coords = {"y": ("y", xy, {"units": "um"}), "x": ("x", xy, {"units": "um"})}
    third = sino.dims[2]
    if third in sino.coords:
        coords[third] = sino[third].variable
    out = xr.DataArray(rec, dims=("y", "x", third), coords=coords, name=sino.name)
    out.attrs = dict(sino.attrs, units="um", reconstruction={
        "method": method, "iterations": int(iterations), "relaxation": float(relaxation),
        "library": library if method == "sart" else "scikit-image"})
    return out


def reconstruct(sinograms, method="sart", iterations=5, relaxation=None, q_chunk=8,
                library="auto"):
    """Reconstruct ``("angle", "t", "q")`` sinograms into ``("y", "x", "q")`` maps, lazily.

    Parameters
    ----------
    sinograms : xarray.DataArray or xarray.Dataset
        Sorted, centred sinograms (:func:`~electromicro_dask.scattering.assemble`) with
        dims ``("angle", "t")`` or ``("angle", "t", q)`` and positioner coordinates (angle
        in degrees, t in um); a Dataset (e.g. window sums) is reconstructed variable by
        variable.
    method : {"sart", "fbp"}
        SART with a non-negativity constraint, or filtered back-projection.
    iterations : int
        SART sweeps over all angles (ignored by FBP).
    relaxation : float, optional
        SART relaxation; the two libraries scale their updates differently, so the default
        is each one's own: 0.15 for scikit-image, 1.0 for astra (per projection).
    q_chunk : int
        q channels per task; each task holds the whole ``(angle, t)`` plane.
    library : {"auto", "scikit-image", "astra"}
        Whose SART: astra-toolbox (CUDA on a GPU worker, else CPU; optional extra) or
        scikit-image; "auto" takes astra when it is installed. FBP is scikit-image's.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        ``("y", "x"[, "q"])`` float32 maps with y and x in um (pixel = translation step),
        lazy.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from skimage.transform import radon
    >>> img = np.zeros((32, 32)); img[10:20, 12:18] = 1
    >>> ang = np.linspace(0, 180, 40, endpoint=False)
    >>> s = xr.DataArray(radon(img, ang, circle=True).T, dims=("angle", "t"),
    ...                  coords={"angle": ang, "t": np.arange(32.0)})
    >>> rec = reconstruct(s, method="fbp").compute()
    >>> rec.dims
    ('y', 'x')
    """
    if method not in _METHODS:
        raise InputError("method", f"one of {_METHODS}, got {method!r}")
    if int(iterations) < 1:
        raise InputError("iterations", f"a positive integer, got {iterations!r}")
    if int(q_chunk) < 1:
        raise InputError("q_chunk", f"a positive integer, got {q_chunk!r}")
    if library not in _LIBRARIES:
        raise InputError("library", f"one of {_LIBRARIES}, got {library!r}")
    if library == "auto":
        library = "astra" if _astra_available() else "scikit-image"
    elif library == "astra" and not _astra_available():
        raise InputError("library", "'astra' needs astra-toolbox (pip install "
                         "electromicro-dask[astra]); it does not import here")
    if relaxation is None:
        relaxation = 1.0 if library == "astra" else 0.15
    if isinstance(sinograms, xr.Dataset):
        return xr.Dataset({k: _one(v, method, iterations, relaxation, q_chunk, library)
                           for k, v in sinograms.data_vars.items()}, attrs=sinograms.attrs)
    return _one(sinograms, method, iterations, relaxation, q_chunk, library)
