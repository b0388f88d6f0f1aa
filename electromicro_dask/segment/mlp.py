"""Multilayer perceptron trained by correlative microscopy (seed 002, section 3.3).

Seed 002 predicts, for every synchrotron voxel, its material composition (volume
fractions of AM, CBD and pore) from the grey values of its 5x5x5 neighbourhood: a
feed-forward network with five hidden layers of 75 units and a softmax output of three
units, trained with the mean squared error against the composition that a correlative
FIB-SEM cutout gives for each synchrotron voxel. The training data are augmented by the
48 symmetries of the cube (rotations and reflections of the neighbourhood, which do not
change the composition), shuffled and split 60 / 20 / 20 into training, validation and
test data; training stops after ten epochs without improvement of the validation error.

Choices this module makes where the paper is silent: ReLU activations and Adam; the
split is made on the original voxels *before* augmentation (so no rotated copy of a test
voxel is trained on); the augmentation draws, in every epoch, one of the 48 symmetries
per training voxel (the 48-fold augmented set in distribution, without storing it); grey
values are standardised with the training mean and standard deviation, which are saved
with the model.

Inference is lazy: ``map_overlap`` with a depth of half the neighbourhood (2 voxels for
5x5x5), mirrored at the volume faces, batched per block; CUDA when ``device="auto"`` finds one, else the CPU, where the
forward pass is plain numpy so that CPU-only workers never import torch.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import xarray as xr

from ..core.arrays import as_volume
from ..core.errors import InputError
from ..core.progress import compute

__all__ = ["MLPModel", "train_mlp", "load_mlp", "mlp"]

_PHASES = ("pore", "cbd", "am")


def _device(device):
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError("device", f"'auto', 'cpu' or 'cuda', got {device!r}") from None


def _check_device(device):
    if device in (None, "auto", "cpu") or (isinstance(device, str)
                                           and re.fullmatch(r"cuda(:\d+)?", device)):
        return
    raise InputError("device", f"'auto', 'cpu' or 'cuda', got {device!r}")


def _nvidia_visible():
    # Cheap test before importing torch just to ask torch.cuda.is_available(): a CPU-only
    # worker then never loads torch (about 175 MiB per worker process).
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi") is not None


def _inference_device(device):
    """"cpu" (numpy forward pass) or a CUDA torch device, resolved where the block runs."""
    if device == "cpu":
        return "cpu"
    if device in (None, "auto"):
        if "torch" not in sys.modules and not _nvidia_visible():
            return "cpu"
        dev = _device("auto")
        return "cpu" if dev.type == "cpu" else dev
    return _device(device)


def _forward_numpy(state, x):
    """The network's forward pass in float32 numpy: Linear, ReLU, ..., Linear, softmax, with
    torch's parameter layout (``weight`` is out x in). CPU inference needs no torch."""
    idx = sorted({int(k.split(".")[0]) for k in state})
    for j, i in enumerate(idx):
        x = x @ state[f"{i}.weight"].T + state[f"{i}.bias"]
        if j < len(idx) - 1:
            np.maximum(x, 0, out=x)
    x -= x.max(axis=1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=1, keepdims=True)
    return x


def cube_symmetries(size):
    """The 48 symmetries of the cube as index permutations of a flattened size**3 patch."""
    idx = np.arange(size**3).reshape(size, size, size)
    out = []
    for perm in itertools.permutations(range(3)):
        t = idx.transpose(perm)
        for flips in itertools.product((False, True), repeat=3):
            sl = tuple(slice(None, None, -1) if f else slice(None) for f in flips)
            out.append(t[sl].ravel())
    return np.stack(out)


def _patches(padded, size):
    """All size**3 neighbourhoods of the interior of a block padded by size // 2."""
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(np.asarray(padded, dtype=np.float32), (size,) * 3)
    return win.reshape(-1, size**3)


class _one_thread:
    """Run torch on one CPU thread inside the block: the network is small (a 75-unit
    layer is far below the size where intra-op threads pay off) and dask already runs
    one block per core, so more threads only contend."""

    # torch's thread count is process-wide and blocks run concurrently: the first
    # block in saves it, the last one out restores it.
    _lock = threading.Lock()
    _depth = 0
    _saved = None

    def __enter__(self):
        import torch

        with _one_thread._lock:
            if _one_thread._depth == 0:
                _one_thread._saved = torch.get_num_threads()
                torch.set_num_threads(1)
            _one_thread._depth += 1

    def __exit__(self, *exc):
        import torch

        with _one_thread._lock:
            _one_thread._depth -= 1
            if _one_thread._depth == 0:
                torch.set_num_threads(_one_thread._saved)


def _network(size, layers, units):
    import torch

    mods, n_in = [], size**3
    for _ in range(layers):
        mods += [torch.nn.Linear(n_in, units), torch.nn.ReLU()]
        n_in = units
    mods += [torch.nn.Linear(n_in, len(_PHASES)), torch.nn.Softmax(dim=1)]
    return torch.nn.Sequential(*mods)


class MLPModel:
    """A trained composition predictor: the network, its neighbourhood size and scaling.

    Attributes
    ----------
    size_voxels : int
        Edge of the cubic input neighbourhood (5 in seed 002).
    mean, std : float
        Grey-value standardisation of the training data.
    history : dict
        Training and validation loss per epoch and the test loss of the best epoch.
    """

    def __init__(self, size_voxels, layers, units, state, mean, std, history=None):
        self.size_voxels = int(size_voxels)
        self.layers = int(layers)
        self.units = int(units)
        self.state = {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}
        self.mean = float(mean)
        self.std = float(std)
        self.history = dict(history or {})
        self._nets = {}

    def network(self, device="cpu"):
        import torch

        key = str(device)
        if key not in self._nets:
            net = _network(self.size_voxels, self.layers, self.units)
            net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.state.items()})
            self._nets[key] = net.to(device).eval()
        return self._nets[key]

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_nets"] = {}
        return d

    def predict(self, patches, device="cpu", batch=65536):
        """Composition (N, 3: pore, cbd, am) of flattened neighbourhoods (N, size**3).

        On the CPU the forward pass runs in numpy (no torch import on the worker); on a
        CUDA device in torch.
        """
        dev = _inference_device(device)
        x = (np.asarray(patches, dtype=np.float32) - self.mean) / self.std
        out = np.empty((len(x), len(_PHASES)), dtype=np.float32)
        if dev == "cpu":
            for s in range(0, len(x), batch):
                out[s:s + batch] = _forward_numpy(self.state, x[s:s + batch])
            return out
        import torch

        net = self.network(dev)
        with torch.no_grad():
            for s in range(0, len(x), batch):
                xb = torch.from_numpy(np.ascontiguousarray(x[s:s + batch])).to(dev)
                out[s:s + batch] = net(xb).cpu().numpy()
        return out

    def save(self, path):
        """Write the model to ``path`` (.npz: weights, neighbourhood size, scaling)."""
        meta = {"size_voxels": self.size_voxels, "layers": self.layers, "units": self.units,
                "mean": self.mean, "std": self.std, "phases": list(_PHASES),
                "history": self.history, "format": "electromicro_dask.mlp/1"}
        arrays = {f"w:{k}": v for k, v in self.state.items()}
        with open(path, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
        return Path(path)

    def to_dict(self):
        """JSON-able form (weights as nested lists), e.g. for a pipeline table."""
        return {"size_voxels": self.size_voxels, "layers": self.layers, "units": self.units,
                "mean": self.mean, "std": self.std, "history": self.history,
                "state": {k: v.tolist() for k, v in self.state.items()}}

    @classmethod
    def from_dict(cls, d):
        return cls(d["size_voxels"], d["layers"], d["units"], d["state"], d["mean"],
                   d["std"], d.get("history"))


def load_mlp(path, size_voxels=None):
    """Load a model written by :meth:`MLPModel.save`.

    Parameters
    ----------
    path : str or Path
        The .npz file.
    size_voxels : int, optional
        Expected neighbourhood size; a model trained for another size raises InputError.

    Examples
    --------
    >>> model = load_mlp("model.npz", size_voxels=5)            # doctest: +SKIP
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            state = {k[2:]: z[k] for k in z.files if k.startswith("w:")}
    except (OSError, KeyError, ValueError) as exc:
        raise InputError("path", f"a model file written by MLPModel.save, {str(path)!r} is "
                         f"not ({exc})") from None
    model = MLPModel(meta["size_voxels"], meta["layers"], meta["units"], state, meta["mean"],
                     meta["std"], meta.get("history"))
    if size_voxels is not None and int(size_voxels) != model.size_voxels:
        raise InputError("size_voxels", f"the neighbourhood size the model was trained for "
                         f"({model.size_voxels}), got {size_voxels}")
    return model


def _composition_array(composition, shape):
    if isinstance(composition, xr.Dataset):
        composition = composition["composition"]
    if not isinstance(composition, xr.DataArray) or "phase" not in composition.dims:
        raise InputError("composition", "a DataArray with a 'phase' dim (pore, cbd, am)")
    try:
        comp = composition.sel(phase=list(_PHASES)).transpose("phase", ...)
    except KeyError:
        raise InputError("composition", f"phase labels {list(_PHASES)}, got "
                         f"{list(composition['phase'].values)}") from None
    if comp.shape[1:] != tuple(shape):
        raise InputError("composition", f"the image's shape {tuple(shape)}, got {comp.shape[1:]}")
    return comp


def train_mlp(image, composition, size_voxels=5, hidden_layers=5, hidden_units=75,
              max_epochs=500, patience=10, batch_size=256, learning_rate=1e-3, augment=True,
              max_samples=None, seed=0, device="auto"):
    """Train the composition network of seed 002 on correlative data.

    Parameters
    ----------
    image : xarray.DataArray
        Coarse grey-value volume of the correlative cutout (dims z, y, x).
    composition : xarray.DataArray or Dataset
        True volume fractions per voxel, dims ``("phase", z, y, x)`` with phases pore,
        cbd, am (e.g. :func:`synth.correlative`'s ``composition``).
    size_voxels : int
        Odd edge of the input neighbourhood (5 in the paper).
    hidden_layers, hidden_units : int
        Network shape (5 and 75 in the paper).
    max_epochs, patience : int
        Epoch budget; training stops after ``patience`` epochs (10 in the paper) without
        a lower validation error, keeping the best epoch's weights.
    batch_size, learning_rate : int, float
        Adam mini-batch size and step size.
    augment : bool
        Random one of the 48 cube symmetries per training voxel and epoch.
    max_samples : int, optional
        Use at most this many voxels (a random subset) of the cutout.
    seed : int
        Seed of the split, the shuffling, the augmentation and the initial weights.
    device : str
        "auto" (CUDA when available, else CPU), "cpu" or "cuda".

    Returns
    -------
    MLPModel
        The trained model; ``history`` holds the loss curves and the test MSE. The
        cutout is loaded into memory (training data are small: seed 002 had 2541 voxels).

    Examples
    --------
    >>> from electromicro_dask import segment, synth
    >>> ds = synth.correlative((16, 16, 16), factor=3, seed=0)
    >>> model = segment.train_mlp(ds["grey"], ds["composition"], max_epochs=2)  # doctest: +SKIP
    """
    import torch

    image = as_volume(image, argument="image")
    if image.ndim != 3:
        raise InputError("image", f"a 3D volume, got dims {image.dims}")
    if int(size_voxels) != size_voxels or size_voxels < 1 or size_voxels % 2 == 0:
        raise InputError("size_voxels", f"an odd positive integer, got {size_voxels!r}")
    size = int(size_voxels)
    comp = _composition_array(composition, image.shape)
    for name, v in (("hidden_layers", hidden_layers), ("hidden_units", hidden_units),
                    ("max_epochs", max_epochs), ("patience", patience),
                    ("batch_size", batch_size)):
        if int(v) != v or v < 1:
            raise InputError(name, f"a positive integer, got {v!r}")
    grey, y = compute(image.data, comp.data, label="MLP training data")
    grey = np.asarray(grey, dtype=np.float32)
    r = size // 2
    X = _patches(np.pad(grey, r, mode="symmetric"), size)
    Y = np.asarray(y, dtype=np.float32).reshape(3, -1).T
    if not np.isfinite(X).all() or not np.isfinite(Y).all():
        raise InputError("image", "finite grey values and compositions")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    if max_samples is not None:
        order = order[: int(max_samples)]
    n = len(order)
    n_tr, n_va = int(round(0.6 * n)), int(round(0.2 * n))
    if n_tr < 1 or n_va < 1 or n - n_tr - n_va < 1:
        raise InputError("image", f"enough voxels for a 60/20/20 split, got {n}")
    tr, va, te = order[:n_tr], order[n_tr:n_tr + n_va], order[n_tr + n_va:]
    mean, std = float(X[tr].mean()), float(X[tr].std()) or 1.0

    dev = _device(device)
    torch.manual_seed(seed)
    net = _network(size, int(hidden_layers), int(hidden_units)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=float(learning_rate))
    lossf = torch.nn.MSELoss()

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

    Xtr, Ytr = tensor((X[tr] - mean) / std), tensor(Y[tr])
    Xva, Yva = tensor((X[va] - mean) / std), tensor(Y[va])
    Xte, Yte = tensor((X[te] - mean) / std), tensor(Y[te])
    sym = tensor(cube_symmetries(size).astype(np.int64))
    gen = torch.Generator(device="cpu").manual_seed(seed)

    with _one_thread():
        best_state, hist = _train_loop(net, opt, lossf, Xtr, Ytr, Xva, Yva, sym, gen, dev,
                                       n_tr, int(batch_size), int(max_epochs), int(patience),
                                       augment)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in best_state.items()})
    net.eval()
    with torch.no_grad():
        hist["test_loss"] = float(lossf(net(Xte), Yte))
    hist["epochs"] = len(hist["val_loss"])
    hist["n_train"], hist["n_val"], hist["n_test"] = int(n_tr), int(n_va), int(n - n_tr - n_va)
    return MLPModel(size, hidden_layers, hidden_units, best_state, mean, std, hist)


def _train_loop(net, opt, lossf, Xtr, Ytr, Xva, Yva, sym, gen, dev, n_tr, batch_size,
                max_epochs, patience, augment):
    import torch

    def evaluate(Xs, Ys):
        net.eval()
        with torch.no_grad():
            return float(lossf(net(Xs), Ys))

    best, best_state, since = np.inf, None, 0
    hist = {"train_loss": [], "val_loss": []}
    for _epoch in range(max_epochs):
        net.train()
        perm = torch.randperm(n_tr, generator=gen).to(dev)
        Xe = Xtr[perm]
        if augment:
            k = torch.randint(0, 48, (n_tr,), generator=gen).to(dev)
            Xe = torch.gather(Xe, 1, sym[k])
        Ye = Ytr[perm]
        total = 0.0
        for s in range(0, n_tr, int(batch_size)):
            xb, yb = Xe[s:s + batch_size], Ye[s:s + batch_size]
            opt.zero_grad()
            loss = lossf(net(xb), yb)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
        v = evaluate(Xva, Yva)
        hist["train_loss"].append(total / n_tr)
        hist["val_loss"].append(v)
        if v < best:
            best, since = v, 0
            best_state = {k: t.detach().cpu().numpy().copy() for k, t in net.state_dict().items()}
        else:
            since += 1
            if since >= patience:
                break
    return best_state, hist


def _predict_block(padded, model, size, device, batch):
    # z-slabs of about `batch` voxels: the (voxels, size**3) patch matrix is built per
    # slab, never for the whole block (125 values a voxel for 5x5x5).
    r = size // 2
    inner = tuple(n - 2 * r for n in padded.shape)
    out = np.empty((3,) + inner, dtype=np.float32)
    plane = max(1, inner[1] * inner[2])
    step = max(1, int(batch) // plane)
    for z0 in range(0, inner[0], step):
        z1 = min(inner[0], z0 + step)
        p = model.predict(_patches(padded[z0:z1 + 2 * r], size), device=device, batch=batch)
        out[:, z0:z1] = p.T.reshape((3, z1 - z0) + inner[1:])
    return out


def mlp(image, model, size_voxels=5, device="auto", batch_voxels=4096):
    """Per-voxel composition probabilities of a grey-value volume (seed 002 §3.3), lazily.

    Parameters
    ----------
    image : xarray.DataArray
        3D grey-value volume (dims z, y, x), on the grey scale of the training data.
    model : MLPModel or str or Path
        A trained model (:func:`train_mlp`) or the path of one saved with
        :meth:`MLPModel.save`.
    size_voxels : int
        Neighbourhood edge the model must have been trained for (5 in the paper).
    device : str
        "auto" (CUDA when available, else CPU), "cpu" or "cuda".
    batch_voxels : int
        Voxels per inference batch inside a block. Each batch holds ``size_voxels**3``
        float32 values per voxel (2 MiB at the default), so a small batch keeps the
        workers' unmanaged memory low; throughput barely changes above ~1000.

    Returns
    -------
    xarray.DataArray
        float32, dims ``("phase", z, y, x)``, phases pore / cbd / am, summing to 1 per
        voxel; lazy (``map_overlap`` with depth ``size_voxels // 2``, mirrored at the
        volume faces), independent of the chunking.

    Raises
    ------
    InputError
        ``model`` trained for another neighbourhood size, unreadable model file, not a 3D
        volume.

    Examples
    --------
    >>> prob = segment.mlp(grey, "model.npz", size_voxels=5)           # doctest: +SKIP
    >>> seg = segment.convert(prob, fractions, method="NN-AM-Cond")    # doctest: +SKIP
    """
    image = as_volume(image, argument="image")
    if image.ndim != 3:
        raise InputError("image", f"a 3D volume, got dims {image.dims}")
    if isinstance(model, (str, Path)):
        model = load_mlp(model)
    if not isinstance(model, MLPModel):
        raise InputError("model", f"an MLPModel or the path of a saved one, got "
                         f"{type(model).__name__}")
    if int(size_voxels) != model.size_voxels:
        raise InputError("model", f"a model trained for {size_voxels}^3 neighbourhoods, got "
                         f"one for {model.size_voxels}^3")
    _check_device(device)
    size = model.size_voxels
    r = size // 2
    data = image.data.astype(np.float32)
    if min(min(c) for c in data.chunks) < r:
        data = data.rechunk({i: max(r, max(c)) for i, c in enumerate(data.chunks)
                             if min(c) < r})
    prob = data.map_overlap(_predict_block, depth=r, boundary="reflect", trim=False,
                            model=model, size=size, device=device, batch=int(batch_voxels),
                            new_axis=0, chunks=((3,),) + data.chunks, dtype=np.float32)
    out = xr.DataArray(prob, dims=("phase",) + image.dims,
                       coords=dict({d: image.coords[d] for d in image.dims},
                                   phase=list(_PHASES)),
                       name="probabilities",
                       attrs={"units": "um", "long_name": "predicted volume fraction",
                              "size_voxels": size, "method": "MLP (seed 002, section 3.3)"})
    return out
