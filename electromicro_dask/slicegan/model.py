"""A trained SliceGAN: configuration, generator weights, phase table; saved as one file."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..core.errors import InputError
from .config import make_config
from .networks import Generator

__all__ = ["SliceGANModel", "load_model", "resolve_device"]

_FORMAT = "electromicro_dask.slicegan/1"


def resolve_device(device="auto", argument="device"):
    """``"auto"`` -> CUDA when available, else CPU; strings and torch.device accepted."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(argument, f"'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(argument, f"an available device; {device!r} asked but CUDA is not "
                         "available here (use device='auto' to fall back to CPU)")
    return dev


@dataclass
class SliceGANModel:
    """A trained generator and what is needed to use it.

    Attributes
    ----------
    config : dict
        Network configuration (:data:`~electromicro_dask.slicegan.config.CONFIGS`).
    generator_state : dict
        ``state_dict`` of the generator (CPU tensors), batch-norm running statistics
        included: generation uses them (eval mode), which makes it translation-equivariant.
    phases : dict or None
        ``{code: name}`` of the output channels in order; None for a grey-level model.
    spacing_um : float or None
        Pixel size of the training image in um (the generated voxel size).
    step : int
        Generator steps trained.
    history : pandas.DataFrame
        Logged losses and throughput.
    """

    config: dict
    generator_state: dict
    phases: dict | None
    spacing_um: float | None = None
    step: int = 0
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def grey(self):
        return self.phases is None

    @property
    def channels(self):
        return 1 if self.phases is None else len(self.phases)

    def generator(self, device="cpu", dtype=torch.float32):
        """The generator in eval mode on ``device``."""
        net = Generator(self.config, self.channels, self.grey)
        net.load_state_dict(self.generator_state)
        return net.to(device=device, dtype=dtype).eval()

    def to_bytes(self):
        buf = io.BytesIO()
        torch.save({"format": _FORMAT, "config": self.config, "generator": self.generator_state,
                    "phases": self.phases, "spacing_um": self.spacing_um, "step": self.step,
                    "history": self.history.to_dict(orient="list")}, buf)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data):
        try:
            d = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for corrupt files
            raise InputError("model", f"a SliceGAN model file ({exc})") from exc
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise InputError("model", f"a SliceGAN model of format {_FORMAT}")
        phases = None if d["phases"] is None else {int(k): v for k, v in d["phases"].items()}
        return cls(make_config(d["config"]), d["generator"], phases, d["spacing_um"],
                   int(d["step"]), pd.DataFrame(d["history"]))

    def save(self, path):
        """Write the model to ``path`` (one file, atomically)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)
        return path

    @property
    def token(self):
        """Content hash (for caching and provenance)."""
        h = hashlib.sha256()
        for k, v in sorted(self.generator_state.items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        h.update(repr((sorted(self.config.items()), self.phases)).encode())
        return h.hexdigest()[:16]


def load_model(path):
    """Read a model written by :meth:`SliceGANModel.save` or a training checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise InputError("path", f"an existing model file, {str(path)!r} not found")
    data = path.read_bytes()
    try:
        return SliceGANModel.from_bytes(data)
    except InputError:
        from .train import _model_from_checkpoint

        return _model_from_checkpoint(path)
