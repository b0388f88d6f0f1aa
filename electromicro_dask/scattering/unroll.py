"""Virtual unrolling of a wound cell (seed 004, "Virtual unrolling of the cell"; Figs 2, 3).

The seed finds the outer casing by a Hough transform (OpenCV) on the WAXS map of a housing
peak ("two clean circles") and unrolls the slice by a polar transformation; layers then
appear as slanted bands
(angle x radius). Here: scikit-image's circular Hough transform on the casing wall (or its Canny
edges), refined by an algebraic least-squares circle fit (Kasa 1976) to the pixels near the
Hough circle
(the Hough centre alone can be pixels off, ../shared/notes/swaxs.md, section 2.8); the polar
transform by bilinear interpolation; the winding pitch from the mean radial autocorrelation
of the unrolled image (an Archimedean spiral repeats every pitch along the radius at any
angle). The seed never follows the spiral; :func:`unwind_spiral` does, as an extension of
ours: every layer becomes one straight band along the arc length of the roll.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.errors import InputError

__all__ = ["find_casing", "polar_unroll", "winding_pitch", "unwind_spiral"]


def _image(image, argument="image"):
    if not isinstance(image, xr.DataArray) or image.dims != ("y", "x"):
        raise InputError(argument, "a ('y', 'x') DataArray with coordinates in um")
    for d in ("y", "x"):
        if d not in image.coords:
            raise InputError(argument, f"a {d!r} coordinate in um")
    y = np.asarray(image["y"].values, dtype=np.float64)
    x = np.asarray(image["x"].values, dtype=np.float64)
    step = float(np.mean(np.diff(y)))
    if not np.isclose(step, float(np.mean(np.diff(x))), rtol=1e-3):
        raise InputError(argument, "square pixels")
    return np.asarray(image.values, dtype=np.float64), y[0], x[0], step


def _fit_circle(py, px, w=None):
    """Algebraic least-squares circle (Kasa): x^2 + y^2 + D x + E y + F = 0, weighted."""
    w = np.ones_like(px) if w is None else np.sqrt(w)
    a = np.stack([px, py, np.ones_like(px)], axis=1) * w[:, None]
    b = -(px ** 2 + py ** 2) * w
    (d, e, f), *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = -d / 2, -e / 2
    return cy, cx, float(np.sqrt(cx ** 2 + cy ** 2 - f))


def find_casing(image, radius_range_um, feature="ridge", sigma_voxels=1.0, band_voxels=2.0,
                level=0.5):
    """Centre and radius of the casing circle.

    Parameters
    ----------
    image : xarray.DataArray
        ``("y", "x")`` map in which the casing shows (e.g. the window map of a housing
        peak), computed here (a 2D slice fits in memory).
    radius_range_um : (float, float)
        Radii searched by the Hough transform, um.
    feature : {"ridge", "edge"}
        "ridge": the bright casing wall itself (pixels above ``level`` times the 99.9th
        percentile) enters the Hough transform and an intensity-weighted fit, giving the
        wall's mid-line; right for walls a few pixels thick. "edge": Canny edges, the
        outermost strong circle (the outer surface) for walls many pixels thick.
    sigma_voxels : float
        Canny smoothing ("edge").
    band_voxels : float
        Pixels within this distance of the Hough circle enter the least-squares fit.
    level : float
        Relative threshold of the wall ("ridge").

    Returns
    -------
    dict
        ``center_y_um``, ``center_x_um``, ``radius_um``, ``feature``, ``hough`` (the
        unrefined circle), ``n_pixels`` used by the fit.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> yy, xx = np.mgrid[:128, :128]
    >>> r = np.hypot(yy - 60.3, xx - 66.7)
    >>> ring = ((r > 48) & (r < 52)).astype(float)
    >>> img = xr.DataArray(ring, dims=("y", "x"), coords={"y": np.arange(128.0),
    ...                                                    "x": np.arange(128.0)})
    >>> c = find_casing(img, (40, 60))
    >>> abs(c["radius_um"] - 50) < 1.5
    True
    """
    from skimage.feature import canny
    from skimage.transform import hough_circle, hough_circle_peaks

    img, y0, x0, step = _image(image)
    if feature not in ("ridge", "edge"):
        raise InputError("feature", f"'ridge' or 'edge', got {feature!r}")
    lo, hi = (float(v) / step for v in radius_range_um)
    if not (0 < lo < hi):
        raise InputError("radius_range_um", f"0 < low < high, got {radius_range_um}")
    if feature == "edge":
        mask = canny(img / (np.abs(img).max() or 1.0), sigma=sigma_voxels)
        weight = np.ones(img.shape)
    else:
        top = np.percentile(img, 99.9)
        mask = img >= level * top
        weight = np.clip(img, 0, None)
    if mask.sum() < 10:
        raise InputError("image", "a visible casing (no wall pixels found)")
    radii = np.arange(max(lo, 2.0), hi + 0.5, 0.5)
    acc = hough_circle(mask, radii)
    _, cx, cy, rr = hough_circle_peaks(acc, radii, total_num_peaks=5)
    if len(rr) == 0:
        raise InputError("image", "a circle within radius_range_um")
    acc_best = [acc[int(np.argmin(np.abs(radii - r))), y, x] for r, y, x in zip(rr, cy, cx)]
    if feature == "edge":
        # Strong peaks include the inner and outer surface of the wall: take the outer one.
        strong = [i for i, a in enumerate(acc_best) if a >= 0.6 * max(acc_best)]
        k = max(strong, key=lambda i: rr[i])
    else:
        k = int(np.argmax(acc_best))
    hy, hx, hr = float(cy[k]), float(cx[k]), float(rr[k])
    ey, ex = np.nonzero(mask)
    near = np.abs(np.hypot(ey - hy, ex - hx) - hr) <= band_voxels
    cy_f, cx_f, r_f = _fit_circle(ey[near].astype(float), ex[near].astype(float),
                                  weight[ey[near], ex[near]])
    return {"center_y_um": float(y0 + cy_f * step), "center_x_um": float(x0 + cx_f * step),
            "radius_um": float(r_f * step), "feature": feature,
            "hough": {"center_y_um": float(y0 + hy * step), "center_x_um": float(x0 + hx * step),
                      "radius_um": hr * step},
            "n_pixels": int(near.sum())}


def polar_unroll(image, center_um, r_max_um, n_angles=720, dr_um=None, r_min_um=0.0):
    """Polar transform: rows = angle (degrees, counter-clockwise from +x), columns = radius.

    Parameters
    ----------
    image : xarray.DataArray
        ``("y", "x")`` map (computed here).
    center_um : (float, float)
        Centre (y, x) in um, e.g. from :func:`find_casing`.
    r_max_um, r_min_um : float
        Radial range in um.
    n_angles : int
        Angular samples over 360 degrees.
    dr_um : float, optional
        Radial step (default half a pixel).

    Returns
    -------
    xarray.DataArray
        ``("angle", "r")`` with coordinates ``angle`` (deg) and ``r`` (um), bilinear.
    """
    from scipy import ndimage

    img, y0, x0, step = _image(image)
    if r_max_um <= r_min_um:
        raise InputError("r_max_um", f"more than r_min_um={r_min_um}, got {r_max_um}")
    dr = step / 2 if dr_um is None else float(dr_um)
    r = np.arange(float(r_min_um), float(r_max_um) + dr / 2, dr)
    th = np.arange(int(n_angles)) * 360.0 / int(n_angles)
    t = np.deg2rad(th)[:, None]
    yy = (center_um[0] + r[None, :] * np.sin(t) - y0) / step
    xx = (center_um[1] + r[None, :] * np.cos(t) - x0) / step
    out = ndimage.map_coordinates(img, [yy, xx], order=1, mode="constant", cval=np.nan)
    return xr.DataArray(out, dims=("angle", "r"),
                        coords={"angle": ("angle", th, {"units": "deg"}),
                                "r": ("r", r, {"units": "um"})}, name="unrolled")


def winding_pitch(unrolled, pitch_range_um=(100.0, 500.0)):
    """Winding pitch (um) from the radial autocorrelation of an unrolled image.

    Each row (one angle) of an Archimedean roll repeats every pitch along r; the mean
    autocorrelation of the rows (mean removed) peaks at the pitch, refined by a parabola
    through the peak and its neighbours.

    Parameters
    ----------
    unrolled : xarray.DataArray
        ``("angle", "r")`` from :func:`polar_unroll`, restricted to the roll (NaN allowed).
    pitch_range_um : (float, float)
        Lags searched.

    Returns
    -------
    float
        The pitch in um.
    """
    if not isinstance(unrolled, xr.DataArray) or unrolled.dims != ("angle", "r"):
        raise InputError("unrolled", "an ('angle', 'r') DataArray (polar_unroll)")
    r = np.asarray(unrolled["r"].values, dtype=np.float64)
    dr = float(np.mean(np.diff(r)))
    v = np.nan_to_num(np.asarray(unrolled.values, dtype=np.float64))
    v = v - v.mean(axis=1, keepdims=True)
    n = v.shape[1]
    f = np.fft.rfft(v, 2 * n, axis=1)
    ac = np.fft.irfft(np.abs(f) ** 2, axis=1)[:, :n].mean(axis=0)
    ac = ac / (n - np.arange(n))  # unbiased: the overlap shrinks with the lag
    lo, hi = int(np.floor(pitch_range_um[0] / dr)), int(np.ceil(pitch_range_um[1] / dr))
    hi = min(hi, n - 2)
    if hi <= lo + 2:
        raise InputError("pitch_range_um", f"lags inside the radial extent ({n * dr:.0f} um)")
    k = lo + int(np.argmax(ac[lo:hi + 1]))
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    den = a - 2 * b + c
    off = 0.5 * (a - c) / den if den != 0 else 0.0
    return float((k + off) * dr)


def _spiral_samples(r_start_um, pitch_um, n_turns, ds, du):
    """(theta(s), s) along the centre line r = r_start + pitch * theta / 2 pi, and u."""
    b = pitch_um / (2 * np.pi)
    th_end = 2 * np.pi * n_turns
    # arc length of an Archimedean spiral, cumulative on a fine theta grid (trapezoids)
    th = np.linspace(0.0, th_end, max(4096, int(64 * n_turns * (r_start_um + pitch_um
                                                                    * n_turns) / ds)))
    dsdth = np.hypot(r_start_um + b * th, b)
    arc = np.concatenate([[0.0], np.cumsum(0.5 * (dsdth[1:] + dsdth[:-1]) * np.diff(th))])
    s = np.arange(0.0, arc[-1], ds)
    th_s = np.interp(s, arc, th)
    u = np.arange(0.0, pitch_um, du)
    return th_s, s, u, float(arc[-1])


def _unwind(img, y0, x0, step, center_um, r_start_um, pitch_um, n_turns, sense, ds, du):
    from scipy import ndimage

    th, s, u, length = _spiral_samples(r_start_um, pitch_um, n_turns, ds, du)
    r = r_start_um + pitch_um * th[None, :] / (2 * np.pi) + u[:, None]
    ang = sense * th[None, :]
    yy = (center_um[0] + r * np.sin(ang) - y0) / step
    xx = (center_um[1] + r * np.cos(ang) - x0) / step
    out = ndimage.map_coordinates(img, [yy, xx], order=1, mode="constant", cval=np.nan)
    return out, s, u, length


def _band_contrast(out):
    # Straight bands: the mean over s keeps their full contrast; a wrong winding sense
    # smears every band over the whole pitch.
    prof = np.nanmean(out, axis=1)
    return float(np.nanvar(prof))


def unwind_spiral(image, center_um, pitch_um, r_range_um, sense=None, ds_um=None, du_um=None):
    """Arc-length unwinding of a wound cell (extension; seed 004 only unrolls by polar transform).

    The roll is modelled as an Archimedean spiral ``r = r_start + pitch * theta / 2 pi``
    around ``center_um``. The image is sampled along the spiral's centre line at equal
    steps of arc length ``s`` and, across it, at radial offsets ``0 <= u < pitch``, so
    that each layer of the stack becomes one straight band at constant ``u`` over the
    whole length of the electrode (the polar transform of :func:`polar_unroll` gives
    slanted bands instead). Any ``r_start`` inside the roll describes the same spiral up
    to where the unwound strip begins (a radial shift of an Archimedean spiral is a
    rotation), so only the winding sense is searched when not given.

    Parameters
    ----------
    image : xarray.DataArray
        ``("y", "x")`` map with coordinates in um (e.g. the Cu or anode WAXS map).
    center_um : (float, float)
        Spiral centre (y, x) in um, e.g. the casing centre from :func:`find_casing`.
    pitch_um : float
        Winding pitch in um (:func:`winding_pitch`).
    r_range_um : (float, float)
        Radii where the unwinding starts and ends (inside the roll), um.
    sense : {1, -1}, optional
        +1 when the radius grows with the angle counted counter-clockwise from +x (the
        convention of :func:`polar_unroll`), -1 for the other sense; found from the data
        (the sense whose unwound bands keep the most contrast) when not given.
    ds_um, du_um : float, optional
        Steps along and across the strip (default half a pixel).

    Returns
    -------
    xarray.DataArray
        ``("u", "s")`` strip, bilinear, with coordinates ``u`` (um across the pitch from
        the centre line) and ``s`` (um of arc length along it); ``attrs``: ``sense``,
        ``length_um`` (arc length of the centre line), ``n_turns``, ``r_start_um``,
        ``pitch_um`` and ``extension`` (this is not a method of the seed).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> c = (np.arange(200) - 99.5) * 10.0
    >>> yy, xx = np.meshgrid(c, c, indexing="ij")
    >>> turn = (np.hypot(yy, xx) - 100) / 200 - np.mod(np.arctan2(yy, xx), 2 * np.pi) / 2 / np.pi
    >>> img = xr.DataArray(((turn % 1) < 0.2) * 1.0, dims=("y", "x"), coords={"y": c, "x": c})
    >>> strip = unwind_spiral(img, (0.0, 0.0), 200.0, (100.0, 700.0))
    >>> strip.attrs["sense"], round(strip.attrs["n_turns"], 1)
    (1, 2.0)
    """
    img, y0, x0, step = _image(image)
    if not np.isfinite(pitch_um) or pitch_um <= 0:
        raise InputError("pitch_um", f"a positive pitch in um, got {pitch_um!r}")
    r0, r1 = (float(v) for v in r_range_um)
    if not 0 <= r0 < r1 or r1 - r0 < pitch_um:
        raise InputError("r_range_um", f"0 <= start < end, at least one pitch apart, got "
                         f"{r_range_um!r}")
    if sense not in (None, 1, -1):
        raise InputError("sense", f"1, -1 or None, got {sense!r}")
    ds = step / 2 if ds_um is None else float(ds_um)
    du = step / 2 if du_um is None else float(du_um)
    n_turns = (r1 - pitch_um - r0) / pitch_um  # the strip's outer edge stays below r1
    if n_turns <= 0:
        raise InputError("r_range_um", "room for at least a part of a turn plus one pitch")
    args = (img, y0, x0, step, tuple(center_um), r0, float(pitch_um), n_turns)
    if sense is None:
        trials = {sg: _unwind(*args, sg, ds, du) for sg in (1, -1)}
        sense = max(trials, key=lambda sg: _band_contrast(trials[sg][0]))
        out, s, u, length = trials[sense]
    else:
        out, s, u, length = _unwind(*args, sense, ds, du)
    return xr.DataArray(
        out, dims=("u", "s"),
        coords={"u": ("u", u, {"units": "um"}), "s": ("s", s, {"units": "um"})},
        name="unwound",
        attrs={"sense": int(sense), "length_um": length, "n_turns": float(n_turns),
               "r_start_um": r0, "pitch_um": float(pitch_um),
               "extension": "arc-length unwinding along an Archimedean spiral (not in seed 004)"})
