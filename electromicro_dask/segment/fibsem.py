"""FIB-SEM trinarization of the correlative training volume (seed 002, section 3.3).

Seed 002 segments its FIB-SEM volume (10 nm voxels) in three steps: Otsu's threshold for
the active material (the brightest phase), a U-Net (Ronneberger et al. 2015) trained on a
few annotated slices that tells pores from carbon-binder domain in the rest (the two differ
in texture and in what shows through the pores, not in mean grey value), and a slice-wise
flood filling that gives enclosed inclusions of the AM particles back to the AM.

Here: the Otsu threshold from a global histogram (the upper of the three-class thresholds:
with pore, CBD and AM the two-class threshold can fall between pore and the rest), a small
2D U-Net in torch (two poolings, 16-32-64 channels, batch norm) trained on random crops of
the annotated slices with the eight flips and quarter turns as augmentation, saved to and
resumed from a checkpoint, CUDA when present; ``scipy.ndimage.binary_fill_holes`` slice by
slice. Everything applies lazily, one block of whole slices at a time.
"""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ..core.arrays import as_volume
from ..core.errors import InputError
from ..core.progress import compute
from ..transport._common import resolve_device as _device
from ._common import CODES3, PHASES3

__all__ = ["otsu_am", "fill_inclusions", "UNetModel", "train_unet", "load_unet",
           "unet_segment", "trinarize_fibsem"]

_FORMAT = "electromicro_dask.fibsem_unet/1"


def _slices(data, slices_per_block=None):
    """Rechunk to blocks of whole (y, x) slices."""
    nz = data.shape[0]
    per = slices_per_block or max(1, min(nz, int(2**22 // max(1, data.shape[1] * data.shape[2]))))
    return data.rechunk({0: per, 1: -1, 2: -1})


def otsu_am(image, bins=256):
    """The AM threshold of a FIB-SEM volume: the upper three-class Otsu threshold.

    Parameters
    ----------
    image : xarray.DataArray
        Grey-value volume, AM brightest.
    bins : int
        Histogram bins between the volume's minimum and maximum.

    Returns
    -------
    float
        Grey value above which a voxel is AM.

    Examples
    --------
    >>> t = otsu_am(fibsem)                                             # doctest: +SKIP
    """
    from skimage.filters import threshold_multiotsu

    image = as_volume(image, argument="image")
    data = image.data if isinstance(image.data, da.Array) else da.from_array(image.data)
    lo, hi = compute(data.min(), data.max(), label="grey range")
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        raise InputError("image", "grey values that are not all equal")
    counts, edges = da.histogram(data, bins=int(bins), range=(lo, hi))
    (counts,) = compute(counts, label="grey histogram")
    centers = 0.5 * (edges[1:] + edges[:-1])
    return float(threshold_multiotsu(hist=(np.asarray(counts), centers), classes=3)[-1])


def _fill_block(block):
    from scipy import ndimage

    out = np.empty_like(block, dtype=bool)
    for k in range(block.shape[0]):
        out[k] = ndimage.binary_fill_holes(block[k])
    return out


def fill_inclusions(mask):
    """Slice-wise flood filling: background regions of ``mask`` enclosed in a (y, x) slice
    become foreground (seed 002: inclusions of the AM particles are AM).

    Parameters
    ----------
    mask : xarray.DataArray
        Boolean volume (z, y, x).

    Returns
    -------
    xarray.DataArray
        Boolean, lazy (blocks of whole slices).
    """
    mask = as_volume(mask, argument="mask")
    if mask.ndim != 3:
        raise InputError("mask", f"a 3D volume, got dims {mask.dims}")
    data = mask.data if isinstance(mask.data, da.Array) else da.from_array(mask.data)
    data = _slices(data.astype(bool))
    return mask.copy(data=data.map_blocks(_fill_block, dtype=bool))


# ---------------------------------------------------------------------------------------
# U-Net


def _torch():
    import torch

    return torch


def _unet(channels=(16, 32, 64), n_classes=2):
    torch = _torch()
    nn = torch.nn

    def double(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            c1, c2, c3 = channels
            self.d1, self.d2, self.b = double(1, c1), double(c1, c2), double(c2, c3)
            self.u2 = nn.ConvTranspose2d(c3, c2, 2, stride=2)
            self.c2 = double(2 * c2, c2)
            self.u1 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
            self.c1 = double(2 * c1, c1)
            self.out = nn.Conv2d(c1, n_classes, 1)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            x1 = self.d1(x)
            x2 = self.d2(self.pool(x1))
            xb = self.b(self.pool(x2))
            y2 = self.c2(torch.cat([self.u2(xb), x2], dim=1))
            y1 = self.c1(torch.cat([self.u1(y2), x1], dim=1))
            return self.out(y1)

    return UNet()


class UNetModel:
    """A trained pore / CBD U-Net and its grey-value scaling.

    Attributes
    ----------
    state : dict
        Network weights (numpy arrays).
    mean, std : float
        Grey-value standardisation of the annotated slices.
    history : dict
        Training loss per logged step, steps run.
    """

    def __init__(self, state, mean, std, channels=(16, 32, 64), history=None):
        self.state = {k: np.asarray(v) for k, v in state.items()}
        self.mean, self.std = float(mean), float(std)
        self.channels = tuple(int(c) for c in channels)
        self.history = dict(history or {})
        self._nets = {}

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_nets"] = {}
        return d

    def network(self, device):
        torch = _torch()
        key = str(device)
        if key not in self._nets:
            net = _unet(self.channels)
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.state.items()})
            self._nets[key] = net.to(device).eval()
        return self._nets[key]

    def predict(self, slices, device="auto"):
        """Probability of CBD (vs pore) per pixel of ``(n, y, x)`` slices."""
        torch = _torch()
        dev = _device(device)
        x = (np.asarray(slices, dtype=np.float32) - self.mean) / self.std
        ny, nx = x.shape[1:]
        py, px = (-ny) % 4, (-nx) % 4  # two poolings: sizes divisible by 4
        x = np.pad(x, ((0, 0), (0, py), (0, px)), mode="reflect")
        net = self.network(dev)
        out = np.empty((len(x), ny, nx), np.float32)
        with torch.no_grad():
            for k in range(len(x)):
                t = torch.from_numpy(np.ascontiguousarray(x[k:k + 1, None])).to(dev)
                p = torch.softmax(net(t), dim=1)[0, 1].cpu().numpy()
                out[k] = p[:ny, :nx]
        return out

    def save(self, path):
        """Write the model (.npz: weights, scaling, channels, history)."""
        meta = {"format": _FORMAT, "mean": self.mean, "std": self.std,
                "channels": list(self.channels), "history": self.history}
        with open(path, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)),
                     **{f"w:{k}": v for k, v in self.state.items()})
        return Path(path)


def load_unet(path):
    """Load a :class:`UNetModel` written by :meth:`UNetModel.save` or a checkpoint."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            state = {k[2:]: z[k] for k in z.files if k.startswith("w:")}
    except (OSError, ValueError, KeyError) as exc:
        raise InputError("path", f"a U-Net model file, could not read {path!r}: {exc}") from None
    if meta.get("format") != _FORMAT:
        raise InputError("path", f"a {_FORMAT} file, got format {meta.get('format')!r}")
    return UNetModel(state, meta["mean"], meta["std"], meta["channels"], meta.get("history"))


def _annotation_arrays(image, annotations, label_names):
    """(grey slices, class maps with -1 = not trained on) from the annotated slices."""
    names = dict(label_names)
    unknown = [n for n in names.values() if n not in ("pore", "cbd", "am", "unlabelled")]
    if unknown:
        raise InputError("label_names", f"phase names pore, cbd, am or unlabelled, got {unknown}")
    grey, cls = [], []
    for z, lab in annotations.items():
        if isinstance(lab, (str, Path)):
            import tifffile

            lab = tifffile.imread(lab)
        lab = np.asarray(lab)
        if lab.shape != image.shape[1:]:
            raise InputError("annotations", f"slice {z}: a {image.shape[1:]} label image, got "
                             f"{lab.shape}")
        values = np.unique(lab)
        bad = [int(v) for v in values if int(v) not in names]
        if bad:
            raise InputError("annotations", f"slice {z}: labels {bad} not in label_names "
                             f"{sorted(names)}")
        c = np.full(lab.shape, -1, np.int64)
        for v, n in names.items():
            if n in ("pore", "cbd"):
                c[lab == v] = 0 if n == "pore" else 1
        grey.append(np.asarray(image.isel(z=int(z)).values, dtype=np.float32))
        cls.append(c)
    return np.stack(grey), np.stack(cls)


def train_unet(image, annotations, label_names=None, steps=400, crop=64, batch_size=16,
               learning_rate=2e-3, channels=(16, 32, 64), checkpoint=None,
               checkpoint_every=100, device="auto", seed=0):
    """Train the pore / CBD U-Net on annotated FIB-SEM slices (seed 002, section 3.3).

    Parameters
    ----------
    image : xarray.DataArray
        FIB-SEM grey-value volume (z, y, x).
    annotations : dict
        ``{z index: label image}``: 2D arrays (or paths of TIFF label images) on the
        (y, x) grid of a slice.
    label_names : dict, optional
        Label value -> phase (``"pore"``, ``"cbd"``, ``"am"`` or ``"unlabelled"``);
        default ``{0: "pore", 1: "cbd", 2: "am"}``. Only pore and CBD pixels are trained on.
    steps : int
        Optimiser steps (Adam), each on ``batch_size`` random ``crop`` x ``crop`` crops,
        randomly flipped and turned (the eight symmetries of the square).
    checkpoint : str or Path, optional
        File the model is saved to every ``checkpoint_every`` steps and at the end; when it
        exists, training resumes from it.
    device : str
        "auto" (CUDA when present), "cpu" or "cuda".
    seed : int

    Returns
    -------
    UNetModel

    Raises
    ------
    InputError
        Labels without a name, unknown phase names, label images of the wrong shape, no
        pore or no CBD pixel annotated.

    Examples
    --------
    >>> model = train_unet(fib, {10: lab10, 40: lab40})                  # doctest: +SKIP
    >>> seg = trinarize_fibsem(fib, model)                                # doctest: +SKIP
    """
    torch = _torch()
    image = as_volume(image, argument="image")
    if image.ndim != 3:
        raise InputError("image", f"a 3D volume, got dims {image.dims}")
    if not isinstance(annotations, dict) or not annotations:
        raise InputError("annotations", "a {z index: label image} mapping with 1+ slices")
    label_names = label_names or dict(PHASES3)
    grey, cls = _annotation_arrays(image, annotations, label_names)
    if not ((cls == 0).any() and (cls == 1).any()):
        raise InputError("annotations", "both pore and CBD pixels annotated")
    crop = int(min(crop, *grey.shape[1:]))
    crop -= crop % 4
    if crop < 8:
        raise InputError("crop", "slices of at least 8 x 8 pixels")
    mean, std = float(grey.mean()), float(grey.std()) or 1.0
    dev = _device(device)
    torch.manual_seed(int(seed))
    rng = np.random.default_rng(int(seed))
    net = _unet(tuple(channels)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=float(learning_rate))
    start, hist = 0, {"loss": [], "steps": 0}
    if checkpoint is not None and Path(checkpoint).exists():
        prev = load_unet(checkpoint)
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in prev.state.items()})
        mean, std = prev.mean, prev.std
        hist = {"loss": list(prev.history.get("loss", [])), "steps": prev.history.get("steps", 0)}
        start = int(hist["steps"])
    x_all = (grey - mean) / std
    lossf = torch.nn.CrossEntropyLoss(ignore_index=-1)

    def snapshot(step):
        hist["steps"] = step
        return UNetModel({k: v.detach().cpu().numpy() for k, v in net.state_dict().items()},
                         mean, std, channels, hist)

    net.train()
    for step in range(start, int(steps)):
        xs, ys = [], []
        for _ in range(int(batch_size)):
            k = rng.integers(len(x_all))
            y0 = rng.integers(0, x_all.shape[1] - crop + 1)
            x0 = rng.integers(0, x_all.shape[2] - crop + 1)
            a = x_all[k, y0:y0 + crop, x0:x0 + crop]
            b = cls[k, y0:y0 + crop, x0:x0 + crop]
            t = rng.integers(4)
            a, b = np.rot90(a, t), np.rot90(b, t)
            if rng.integers(2):
                a, b = a[:, ::-1], b[:, ::-1]
            xs.append(np.ascontiguousarray(a))
            ys.append(np.ascontiguousarray(b))
        xb = torch.from_numpy(np.stack(xs)[:, None]).to(dev)
        yb = torch.from_numpy(np.stack(ys)).to(dev)
        if not (yb >= 0).any():
            continue
        opt.zero_grad()
        loss = lossf(net(xb), yb)
        loss.backward()
        opt.step()
        if step % 10 == 0:
            hist["loss"].append(float(loss.item()))
        if checkpoint is not None and (step + 1) % int(checkpoint_every) == 0:
            snapshot(step + 1).save(checkpoint)
    net.eval()
    model = snapshot(max(int(steps), start))
    if checkpoint is not None:
        model.save(checkpoint)
    return model


def _unet_block(block, model, device):
    return model.predict(block, device=device)


def unet_segment(image, model, device="auto"):
    """CBD probability (vs pore) per voxel from a trained U-Net, slice by slice, lazily.

    Parameters
    ----------
    image : xarray.DataArray
        FIB-SEM grey-value volume (z, y, x).
    model : UNetModel or str or Path
    device : str

    Returns
    -------
    xarray.DataArray
        float32 probability of CBD, lazy (blocks of whole slices).
    """
    image = as_volume(image, argument="image")
    if isinstance(model, (str, Path)):
        model = load_unet(model)
    if not isinstance(model, UNetModel):
        raise InputError("model", f"a UNetModel or a path, got {type(model).__name__}")
    data = image.data if isinstance(image.data, da.Array) else da.from_array(image.data)
    data = _slices(data.astype(np.float32), slices_per_block=8)
    out = data.map_blocks(_unet_block, model=model, device=device, dtype=np.float32)
    res = image.copy(data=out)
    res.name = "p_cbd"
    res.attrs = {"units": "um", "long_name": "U-Net probability of CBD (vs pore)"}
    return res


def _trinarize_block(am, p_cbd):
    out = np.where(p_cbd >= 0.5, CODES3["cbd"], CODES3["pore"]).astype(np.uint8)
    out[am] = CODES3["am"]
    return out


def trinarize_fibsem(image, model, am_threshold=None, fill=True, device="auto"):
    """AM / CBD / pore segmentation of a FIB-SEM volume (seed 002, section 3.3).

    Parameters
    ----------
    image : xarray.DataArray
        FIB-SEM grey-value volume (z, y, x), AM brightest.
    model : UNetModel or str or Path
        The pore / CBD U-Net (:func:`train_unet`).
    am_threshold : float, optional
        Grey value above which a voxel is AM (default: :func:`otsu_am`).
    fill : bool
        Give the inclusions enclosed by AM in a slice to the AM (:func:`fill_inclusions`).
    device : str

    Returns
    -------
    xarray.DataArray
        uint8 ``{0: pore, 1: cbd, 2: am}``, lazy; ``attrs["am_threshold"]``.
    """
    image = as_volume(image, argument="image")
    t = otsu_am(image) if am_threshold is None else float(am_threshold)
    am = image > t
    if fill:
        am = fill_inclusions(am)
    p = unet_segment(image, model, device=device)
    pc = p.data
    seg = da.map_blocks(_trinarize_block, am.data.rechunk(pc.chunks), pc, dtype=np.uint8)
    out = xr.DataArray(seg, dims=image.dims, coords=image.coords, name="phases",
                       attrs={"units": "um", "phases": dict(PHASES3), "am_threshold": t,
                              "method": "Otsu AM + U-Net pore/CBD + slice-wise filling "
                                        "(seed 002, section 3.3)"})
    return out
