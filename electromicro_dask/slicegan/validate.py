"""Statistics of a generated volume next to those of its 2D training image(s).

Volume fractions; the two-point probability function S2(r) of each phase along every
axis (Torquato, Random Heterogeneous Materials, 2002, ch. 2: the probability that two
points a distance r apart both lie in the phase), computed along lattice lines; and the
interface area per volume from the stereological relation S_V = 2 P_L (Underwood,
Quantitative Stereology, 1970), P_L being boundary crossings per unit line length, which
applies equally to lines in 2D sections and in 3D volumes of a statistically isotropic
structure, so the 2D input and the 3D output are compared on the same footing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..core.errors import InputError
from ..core.phases import phase_table

__all__ = ["validate", "Validation", "two_point"]


@dataclass
class Validation:
    """Result of :func:`validate`: the comparison table, S2 curves, figures, written files."""

    table: pd.DataFrame
    s2: pd.DataFrame
    figures: dict = field(default_factory=dict)
    files: list = field(default_factory=list)


def two_point(mask, axis, max_distance):
    """S2(r), r = 0..max_distance voxels, of a boolean array along ``axis`` (numpy)."""
    m = np.moveaxis(np.asarray(mask, bool), axis, 0)
    n = m.shape[0]
    out = np.empty(min(max_distance, n - 1) + 1)
    for r in range(out.size):
        out[r] = np.count_nonzero(m[: n - r] & m[r:]) / m[: n - r].size
    return out


def _s2_axes(labels, code, dims, spacing, max_distance):
    """S2 along each axis as ``{dim: (r_um array, s2 array)}``.

    Uses :func:`electromicro_dask.measure.correlation.two_point_correlation` (same
    non-periodic estimator, chunked) when the measure package has it, else
    :func:`two_point` on the in-memory array.
    """
    try:
        from ..measure.correlation import two_point_correlation
    except ImportError:
        two_point_correlation = None
    out = {}
    if two_point_correlation is not None:
        seg = xr.DataArray(labels, dims=dims,
                           coords={d: np.arange(n) * spacing[d] for d, n in zip(dims, labels.shape)},
                           attrs={"phases": {int(code): "a", int(code) + 1: "b"}})
        for d in dims:
            seg[d].attrs["units"] = "um"
        r_max = max_distance * min(spacing.values()) * (1 + 1e-9)
        ax = two_point_correlation(seg, "a", r_max_um=r_max).axes
        for d in dims:
            sel = ax[ax.axis == d].sort_values("r_um")
            out[d] = (sel.r_um.to_numpy(), sel.s2.to_numpy())
        return out
    for i, d in enumerate(dims):
        s = two_point(labels == code, i, max_distance)
        out[d] = (np.arange(s.size) * spacing[d], s)
    return out


def _crossings_per_length(mask, axis, spacing):
    m = np.moveaxis(np.asarray(mask, bool), axis, 0)
    changes = np.count_nonzero(m[1:] != m[:-1])
    return changes / ((m.shape[0] - 1) * np.prod(m.shape[1:]) * spacing)


def _spacing(arr, dim):
    c = arr.coords.get(dim) if isinstance(arr, xr.DataArray) else None
    if c is not None and c.size > 1:
        return float(c.values[1] - c.values[0])
    return 1.0


def _central_crop(vol, max_size):
    sl = {d: slice(max(0, (n - max_size) // 2), max(0, (n - max_size) // 2) + max_size)
          for d, n in vol.sizes.items()}
    return vol.isel(sl)


def _tortuosity_rows(name, vcrop, inp, code_v, code_i):
    """Tortuosity factor of the phase along each axis (needs the transport package)."""
    try:
        from ..transport import tortuosity_factor
    except ImportError:
        return []
    rows = []
    seg_v = xr.DataArray(np.where(np.asarray(vcrop.values) == code_v, 0, 1).astype(np.uint8),
                         dims=vcrop.dims, coords=vcrop.coords, attrs={"phases": {0: name, 1: "_other"}})
    for d in seg_v.dims:
        try:
            tv = tortuosity_factor(seg_v, phase=name, axis=d).tau
        except Exception:  # non-percolating or absent phase: reported as NaN
            tv = float("nan")
        ti = []
        for _, (a, im) in inp.items():
            if d not in im.dims:
                continue
            seg_i = xr.DataArray(np.where(a == code_i, 0, 1).astype(np.uint8), dims=im.dims,
                                 coords=im.coords, attrs={"phases": {0: name, 1: "_other"}})
            try:
                ti.append(tortuosity_factor(seg_i, phase=name, axis=d).tau)
            except Exception:  # as above
                ti.append(float("nan"))
        rows.append({"phase": name, "quantity": f"tortuosity factor along {d} (2D input vs 3D)",
                     "training": float(np.mean(ti)) if ti else float("nan"), "generated": tv})
    return rows


def validate(volume, training_image, out=None, max_distance_voxels=32, max_size=256,
             tortuosity=False):
    """Compare a generated volume with its training image(s): table and figures.

    Parameters
    ----------
    volume : xarray.DataArray
        Generated ``("z", "y", "x")`` labels with ``attrs["phases"]``.
    training_image : xarray.DataArray, sequence of three, or mapping
        The 2D label image(s) with ``attrs["phases"]`` (phases are matched by name);
        three sections keyed ``{"z": yx, "y": zx, "x": zy}`` for anisotropic training.
    out : str or Path, optional
        Directory to write ``validation.csv``, ``s2.csv`` and the figures (PNG) to.
    max_distance_voxels : int
        Largest distance of the S2 curves.
    max_size : int
        S2 and interface area are computed on a central crop of at most this many
        voxels per axis of the volume (computed into memory); fractions use the whole
        volume (one lazy reduction).
    tortuosity : bool
        Also the tortuosity factor of each phase along each axis, of the 2D image(s)
        and of the volume's crop (:func:`electromicro_dask.transport.tortuosity_factor`;
        skipped when the transport package is absent). 2D values are larger than 3D ones
        for the same structure; they are shown side by side as the paper does.

    Returns
    -------
    Validation
        ``table`` (rows: phase and quantity; columns ``training``, ``generated``,
        ``difference``), ``s2`` (long table), ``figures`` and written ``files``.

    Examples
    --------
    >>> res = validate(vol, image, out="validation")     # doctest: +SKIP
    >>> res.table.loc[("am", "volume fraction")]         # doctest: +SKIP
    """
    from .. import measure

    if not isinstance(volume, xr.DataArray) or volume.ndim != 3:
        raise InputError("volume", "a 3D DataArray of labels with attrs['phases']")
    vtab = phase_table(volume, "volume")
    if isinstance(training_image, Mapping) and set(training_image) == {"z", "y", "x"}:
        images = dict(training_image)
    elif isinstance(training_image, (list, tuple)):
        if len(training_image) != 3:
            raise InputError("training_image", "one 2D image or three")
        images = dict(zip("zyx", training_image))
    else:
        images = {"all": training_image}
    itab = None
    for k, im in images.items():
        if not isinstance(im, xr.DataArray) or im.ndim != 2:
            raise InputError("training_image", "2D DataArray label image(s) with attrs['phases']")
        itab = phase_table(im, "training_image")
    names = [n for n in itab.values() if n in vtab.values()]
    if not names:
        raise InputError("training_image", f"phases shared with the volume {vtab}, got {itab}")
    by_name_v = {n: c for c, n in vtab.items()}
    by_name_i = {n: c for c, n in itab.items()}

    vfrac = measure.volume_fractions(volume)
    vcrop = _central_crop(volume, max_size)
    vnp = np.asarray(vcrop.values)
    vsp = {d: _spacing(volume, d) for d in volume.dims}
    inp = {k: (np.asarray(im.values), im) for k, im in images.items()}

    rows, s2rows = [], []
    for name in names:
        masks_i = {k: a == by_name_i[name] for k, (a, _) in inp.items()}
        tot = sum(m.size for m in masks_i.values())
        f_in = sum(np.count_nonzero(m) for m in masks_i.values()) / tot
        mv = vnp == by_name_v[name]
        pl_v = [_crossings_per_length(mv, ax, vsp[d]) for ax, d in enumerate(volume.dims)]
        pl_i = [_crossings_per_length(m, ax, _spacing(im, im.dims[ax]))
                for k, (_, im) in inp.items() for ax, m in [(0, masks_i[k]), (1, masks_i[k])]]
        rows.append({"phase": name, "quantity": "volume fraction", "training": f_in,
                     "generated": float(vfrac.get(name, 0.0))})
        rows.append({"phase": name, "quantity": "interface area per volume (1/um)",
                     "training": 2 * float(np.mean(pl_i)), "generated": 2 * float(np.mean(pl_v))})
        for d, (r_um, s) in _s2_axes(mv.astype(np.uint8), 1, volume.dims, vsp,
                                     max_distance_voxels).items():
            s2rows += [{"phase": name, "source": "generated", "axis": d, "r_um": r, "s2": v}
                       for r, v in zip(r_um, s)]
        for k, (_, im) in inp.items():
            label = "training" if k == "all" else f"training ({k}-section)"
            sp = {d: _spacing(im, d) for d in im.dims}
            for d, (r_um, s) in _s2_axes(masks_i[k].astype(np.uint8), 1, im.dims, sp,
                                         max_distance_voxels).items():
                s2rows += [{"phase": name, "source": label, "axis": d, "r_um": r, "s2": v}
                           for r, v in zip(r_um, s)]
        if tortuosity:
            rows += _tortuosity_rows(name, vcrop, inp, by_name_v[name], by_name_i[name])
    s2 = pd.DataFrame(s2rows)
    # One S2 summary number per phase: mean absolute gap between the generated curve
    # (averaged over axes) and the training curve (averaged over its axes).
    for name in names:
        sel = s2[s2.phase == name]
        g = sel[sel.source == "generated"].groupby("r_um")["s2"].mean()
        t = sel[sel.source != "generated"].groupby("r_um")["s2"].mean()
        g.index, t.index = g.index.round(9), t.index.round(9)
        common = g.index.intersection(t.index)
        rows.append({"phase": name, "quantity": "S2 mean |gap| to training",
                     "training": 0.0, "generated": float(np.mean(np.abs(g[common] - t[common])))})
    table = pd.DataFrame(rows).set_index(["phase", "quantity"])
    table["difference"] = table["generated"] - table["training"]
    figures = _figures(vnp, vtab, inp, itab, s2, names, table)
    files = []
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "validation.csv")
        s2.to_csv(out / "s2.csv", index=False)
        files += [out / "validation.csv", out / "s2.csv"]
        for k, fig in figures.items():
            fig.savefig(out / f"{k}.png", dpi=100)
            files.append(out / f"{k}.png")
    return Validation(table, s2, figures, files)


def _figures(vnp, vtab, inp, itab, s2, names, table):
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    n_in = len(inp)
    fig, axes = plt.subplots(1, n_in + 3, figsize=(3.2 * (n_in + 3), 3.4))
    vmax = max(max(vtab), max(itab))
    for ax, (k, (a, _)) in zip(axes, inp.items()):
        ax.imshow(a, vmin=0, vmax=vmax, cmap="viridis", interpolation="nearest")
        ax.set_title("training" if k == "all" else f"training ({k}-section)")
    for ax, (d, sl) in zip(axes[n_in:], [("z", vnp[vnp.shape[0] // 2]), ("y", vnp[:, vnp.shape[1] // 2]),
                                           ("x", vnp[:, :, vnp.shape[2] // 2])]):
        ax.imshow(sl, vmin=0, vmax=vmax, cmap="viridis", interpolation="nearest")
        ax.set_title(f"generated, normal to {d}")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    figs["slices"] = fig

    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        sel = s2[s2.phase == name]
        for i, ((src, d), g) in enumerate(sel.groupby(["source", "axis"], sort=False)):
            ax.plot(g.r_um, g.s2, ls="-" if src == "generated" else "--", label=f"{src}, {d}")
        ax.set_title(f"S2 of {name}")
        ax.set_xlabel("r (um)")
        ax.set_ylabel("S2(r)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    figs["s2"] = fig

    fr = table.xs("volume fraction", level="quantity")[["training", "generated"]]
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    fr.plot.bar(ax=ax)
    ax.set_ylabel("volume fraction")
    fig.tight_layout()
    figs["fractions"] = fig
    return figs
