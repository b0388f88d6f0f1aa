"""Training images: labels, RGB-coded segmentations, grey levels; crops drawn per batch.

The reference (``slicegan/preprocessing.py``, v.1.1) cuts 32 x 900 crops per direction
up front and stores them one-hot as float64, which exhausts memory on large images. Here
the training image is kept once, one-hot as ``uint8`` (or grey as float32), and every
critic step draws its crops at fresh random positions with a seeded generator, so
memory is one image plus one batch.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import xarray as xr

from ..core.errors import InputError
from ..core.phases import phase_table

__all__ = ["labels_from_rgb", "prepare_images", "CropSampler"]

_AXES = ("z", "y", "x")


def labels_from_rgb(rgb, colours, argument="rgb"):
    """Convert an RGB-coded segmentation to labels with an explicit colour table.

    Parameters
    ----------
    rgb : array-like, shape (ny, nx, 3) or (ny, nx, 4)
        Colour image (an alpha channel is ignored); integer 0-255 or float 0-1 values.
    colours : mapping
        ``{(r, g, b): "phase name"}`` in the same value range as ``rgb``.

    Returns
    -------
    xarray.DataArray
        uint8 labels with dims ``("y", "x")`` and ``attrs["phases"]`` (codes in the order
        of ``colours``).

    Raises
    ------
    InputError
        When a pixel has a colour not in the table (the first few are listed).

    Examples
    --------
    >>> import numpy as np
    >>> im = np.zeros((4, 4, 3), np.uint8); im[:2] = (255, 255, 255)
    >>> lab = labels_from_rgb(im, {(0, 0, 0): "pore", (255, 255, 255): "am"})
    >>> lab.values[:, 0].tolist(), lab.attrs["phases"]
    ([1, 1, 0, 0], {0: 'pore', 1: 'am'})
    """
    a = np.asarray(getattr(rgb, "values", rgb))
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise InputError(argument, f"an RGB(A) image of shape (ny, nx, 3|4), got {a.shape}")
    if not isinstance(colours, Mapping) or not colours:
        raise InputError("colours", "a mapping {(r, g, b): phase name}")
    a = a[..., :3]
    out = np.full(a.shape[:2], 255, np.uint8)
    phases = {}
    for code, (col, name) in enumerate(colours.items()):
        col = np.asarray(col, dtype=a.dtype)
        if col.shape != (3,):
            raise InputError("colours", f"keys of three values (r, g, b), got {col!r}")
        out[np.all(a == col, axis=-1)] = code
        phases[code] = str(name)
    bad = out == 255
    if bad.any():
        found = np.unique(a[bad].reshape(-1, 3), axis=0)[:5].tolist()
        raise InputError("colours", f"an entry for every colour of the image; "
                         f"{int(bad.sum())} pixels have other colours, e.g. {found}")
    return xr.DataArray(out, dims=("y", "x"), attrs={"phases": phase_table(phases, "colours")})


def _as_2d(img, argument):
    a = np.asarray(getattr(img, "values", img)) if not hasattr(img, "compute") else \
        np.asarray(img.compute().values if isinstance(img, xr.DataArray) else img.compute())
    if a.ndim != 2:
        raise InputError(argument, f"a 2D image, got shape {a.shape}")
    return a


def prepare_images(images, phases=None, grey=False, image_size=64, colours=None):
    """Normalise training input to ``(list of 2D arrays, phases, spacing)``.

    ``images`` is one 2D image (isotropic), a sequence of three, or a mapping keyed by
    the axis normal to each section, ``{"z": yx, "y": zx, "x": zy}`` (anisotropic).
    Returns the images as uint8 codes ``0..n-1`` (n-phase) or float32 in [0, 1] (grey),
    the ``{code: name}`` table of the original codes, and the pixel size in um (or None).
    """
    if isinstance(images, Mapping):
        if set(images) != set(_AXES):
            raise InputError("image", f"a mapping with keys 'z', 'y', 'x' (the axis normal to "
                             f"each section), got {sorted(images)}")
        images = [images[a] for a in _AXES]
    if isinstance(images, (list, tuple)):
        if len(images) not in (1, 3):
            raise InputError("image", f"one 2D image or three orthogonal ones, got {len(images)}")
        items = list(images)
    else:
        items = [images]
    spacing = None
    if isinstance(items[0], xr.DataArray) and items[0].ndim == 2:
        from ..core.arrays import voxel_size

        try:
            spacing = float(np.mean(voxel_size(items[0])))
        except Exception:  # coords missing or not spatial: unknown pixel size
            spacing = None
    if colours is not None:
        items = [labels_from_rgb(it, colours, argument="image") for it in items]
        if phases is None:
            phases = items[0].attrs["phases"]
    if phases is None and not grey:
        phases = getattr(items[0], "attrs", {}).get("phases")
    arrays = [_as_2d(it, "image") for it in items]
    for a in arrays:
        if min(a.shape) < image_size:
            raise InputError("image", f"sections of at least {image_size} x {image_size} pixels "
                             f"(the training crop size), got {a.shape}")
    if grey:
        out = []
        for a in arrays:
            a = a.astype(np.float32)
            if not np.isfinite(a).all():
                raise InputError("image", "a grey image without NaN or inf")
            lo, hi = float(a.min()), float(a.max())
            out.append((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a))
        return out, None, spacing
    if phases is None:
        codes = np.unique(np.concatenate([np.unique(a) for a in arrays]))
        phases = {int(c): f"phase{int(c)}" for c in codes}
    table = phase_table(phases, "phases")
    codes = np.array(sorted(table))
    if len(codes) < 2:
        raise InputError("phases", f"at least two phases, got {table}")
    out = []
    for a in arrays:
        if a.dtype.kind == "f" and not np.all(a == np.floor(a)):
            raise InputError("image", "integer phase codes (use grey=True for grey levels)")
        a = a.astype(np.int64)
        idx = np.searchsorted(codes, a).clip(0, len(codes) - 1)
        if not np.all(codes[idx] == a):
            raise InputError("image", f"only the phase codes {codes.tolist()} of {table}, found "
                             f"{sorted(set(np.unique(a).tolist()) - set(codes.tolist()))[:5]}")
        out.append(idx.astype(np.uint8))
    return out, table, spacing


class CropSampler:
    """Random ``l x l`` crops of the training images, drawn batch by batch on ``device``.

    The images live on the device once (one-hot uint8, or float grey); a batch is
    gathered by index arithmetic, so nothing per crop is stored in advance.
    """

    def __init__(self, arrays, n_channels, image_size, device, grey=False):
        self.l = int(image_size)
        self.grey = grey
        self.images = []
        for a in arrays:
            t = torch.as_tensor(np.ascontiguousarray(a), device=device)
            if grey:
                t = t.float()[None]
            else:
                t = torch.nn.functional.one_hot(t.long(), n_channels).permute(2, 0, 1).to(torch.uint8)
            self.images.append(t.contiguous())
        self.device = device
        self._ar = torch.arange(self.l, device=device)

    def sample(self, which, n, rng):
        """``n`` crops of image ``which`` as float32 ``(n, C, l, l)``; positions from ``rng``."""
        img = self.images[which]
        h, w = img.shape[1:]
        # numpy Generator: its state is a plain dict, saved in checkpoints.
        ys = torch.as_tensor(rng.integers(0, h - self.l + 1, n), device=self.device)
        xs = torch.as_tensor(rng.integers(0, w - self.l + 1, n), device=self.device)
        yi = (ys[:, None] + self._ar)[:, :, None]
        xi = (xs[:, None] + self._ar)[:, None, :]
        crops = img[:, yi, xi]                       # (C, n, l, l)
        return crops.permute(1, 0, 2, 3).float().contiguous()
