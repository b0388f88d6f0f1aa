"""SliceGAN training: WGAN-GP with one 3D generator and one or three 2D critics.

Algorithm: Kench and Cooper, Nat. Mach. Intell. 3, 299 (2021), section "SliceGAN" and
Fig. 1; loop as in ``slicegan/model.py`` of the reference (tag ``v.1.1``): every critic
iteration generates ``critic_batch`` fake volumes, cuts each into all its slices along
z, y and x, and updates the critic of that direction (the one shared critic in the
isotropic mode) on them against ``real_batch`` real crops, with the gradient penalty of
Gulrajani et al. (2017) on the first ``real_batch`` slices; after ``critic_steps`` such
iterations the generator is updated on ``generator_batch`` volumes sliced the same way.

Differences from the reference that do not change the model: real crops are drawn per
batch (not preloaded as float64), the loss values are fetched from the device only when
logged (the reference synchronises four times per iteration), random numbers come from
explicit generators whose states are checkpointed, and checkpoints allow resuming.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.errors import InputError
from .config import make_config
from .data import CropSampler, prepare_images
from .model import SliceGANModel, resolve_device
from .networks import build_networks

__all__ = ["train", "submit_train"]

log = logging.getLogger("electromicro_dask.slicegan")

_CKPT = re.compile(r"^ckpt-(\d{8})\.pt$")
_CKPT_FORMAT = "electromicro_dask.slicegan.checkpoint/1"


def _slices(vol, axis):
    """All 2D slices of ``(N, C, Z, Y, X)`` volumes normal to ``axis`` as ``(N*l, C, l, l)``."""
    n, c = vol.shape[:2]
    perm = {0: (0, 2, 1, 3, 4), 1: (0, 3, 1, 2, 4), 2: (0, 4, 1, 2, 3)}[axis]
    v = vol.permute(*perm)
    return v.reshape(n * v.shape[1], c, v.shape[3], v.shape[4])


def _gradient_penalty(critic, real, fake, gen, lam):
    """WGAN-GP term (Gulrajani et al. 2017, eq. 3) on random interpolates, in float32."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=gen)
    x = (alpha * real + (1 - alpha) * fake.float()).requires_grad_(True)
    out = critic(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return lam * ((g.reshape(g.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()


def _checkpoints(directory):
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted((int(m.group(1)), d / f) for f in os.listdir(d) if (m := _CKPT.match(f)))


def _save_checkpoint(directory, state, keep):
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"ckpt-{state['step']:08d}.pt"
    tmp = d / f".{final.name}.{os.getpid()}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, final)        # atomic: a kill leaves the previous checkpoint intact
    for _, old in _checkpoints(d)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def _load_checkpoint(path):
    d = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(d, dict) or d.get("format") != _CKPT_FORMAT:
        raise InputError("checkpoint", f"a SliceGAN checkpoint directory, {str(path)!r} is not one")
    return d


def _model_from_checkpoint(path):
    d = _load_checkpoint(path)
    return SliceGANModel(make_config(d["config"]), d["generator"], d["phases"], d["spacing_um"],
                         d["step"], pd.DataFrame(d["history"]))


def train(image, phases=None, steps=1000, device="auto", checkpoint=None,
          checkpoint_every=100, config="v1.1", seed=0, grey=False, colours=None,
          mixed_precision=False, log_every=10, keep_checkpoints=2, resume=True,
          callback=None, **config_overrides):
    """Train SliceGAN on one 2D image (isotropic) or three orthogonal ones (anisotropic).

    Parameters
    ----------
    image : 2D array-like, sequence of three, or mapping
        A label image (``xarray.DataArray`` with ``attrs["phases"]``, or an integer
        array with ``phases``), an RGB-coded segmentation with ``colours``, or a grey
        image with ``grey=True``. Three sections (a sequence or
        ``{"z": yx_section, "y": zx_section, "x": zy_section}``, keyed by the axis
        normal to each) train three critics (the anisotropic mode of the paper).
    phases : mapping, optional
        ``{code: name}``; default: the image's ``attrs["phases"]``.
    steps : int
        Generator steps (each after ``critic_steps`` critic iterations) to reach in total,
        counting steps done before a resume.
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda[:N]"``.
    checkpoint : str or Path, optional
        Directory for checkpoints (written every ``checkpoint_every`` steps and at the
        end, atomically). With ``resume=True`` training continues from the newest one:
        step counter, networks, optimiser states and random-number states.
    config : str or dict
        ``"v1.1"`` (the reference configuration, default) or ``"tiny"``, or a dict;
        keyword overrides (``real_batch=...``, ``lr_g=...``) replace single entries.
    seed : int
        Seeds the latent noise, penalty interpolation and crop positions.
    grey : bool
        Grey-level training image (one channel, ``(tanh + 1) / 2`` output).
    colours : mapping, optional
        ``{(r, g, b): name}`` colour table for an RGB-coded segmentation.
    mixed_precision : bool
        On CUDA, run the generator and critic forward passes in bfloat16 autocast (no
        loss scaling needed); the gradient penalty stays in float32. Ignored on CPU.
    log_every : int
        Steps between log records (losses, steps per second) in ``model.history``.
    callback : callable, optional
        Called as ``callback(record)`` with each log record.

    Returns
    -------
    SliceGANModel

    Examples
    --------
    >>> import numpy as np
    >>> img = (np.random.default_rng(0).random((64, 64)) > 0.5).astype("uint8")
    >>> model = train(img, phases={0: "pore", 1: "am"}, steps=2, config="tiny")
    >>> model.step
    2
    """
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise InputError("steps", f"a non-negative integer, got {steps!r}")
    if checkpoint_every < 1 or log_every < 1 or keep_checkpoints < 1:
        raise InputError("checkpoint_every", "checkpoint_every, log_every and keep_checkpoints >= 1")
    cfg = make_config(config, **config_overrides)
    dev = resolve_device(device)
    arrays, table, spacing = prepare_images(image, phases, grey, cfg["image_size"], colours)
    n_ch = 1 if grey else len(table)
    iso = len(arrays) == 1
    l = cfg["image_size"]
    if l * cfg["critic_batch"] < cfg["real_batch"]:
        raise InputError("config", "image_size * critic_batch >= real_batch (the penalty "
                         "pairs each real crop with a fake slice)")
    amp = bool(mixed_precision) and dev.type == "cuda"
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True        # as the reference (model.py)

    with torch.random.fork_rng(devices=[]):          # seeded initial weights, no global side effect
        torch.manual_seed(seed)
        gen_net, critics = build_networks(cfg, n_ch, grey, 1 if iso else 3)
    gen_net.to(dev).train()
    for c in critics:
        c.to(dev).train()
    betas = tuple(cfg["betas"])
    opt_g = torch.optim.Adam(gen_net.parameters(), lr=cfg["lr_g"], betas=betas)
    opt_d = [torch.optim.Adam(c.parameters(), lr=cfg["lr_d"], betas=betas) for c in critics]
    noise_gen = torch.Generator(device=dev)
    noise_gen.manual_seed(seed)
    rng = np.random.default_rng(seed)
    history, step = [], 0

    if checkpoint is not None and resume and (found := _checkpoints(checkpoint)):
        ck = _load_checkpoint(found[-1][1])
        if ck["config"] != cfg or ck["phases"] != table or ck["n_images"] != len(arrays):
            raise InputError("checkpoint", f"checkpoints of the same configuration, phases and "
                             f"number of images; {str(checkpoint)!r} holds another run "
                             "(use another directory or resume=False)")
        gen_net.load_state_dict(ck["generator"])
        for c, s in zip(critics, ck["critics"]):
            c.load_state_dict(s)
        opt_g.load_state_dict(ck["opt_g"])
        for o, s in zip(opt_d, ck["opt_d"]):
            o.load_state_dict(s)
        noise_gen.set_state(ck["noise_state"])
        rng.bit_generator.state = ck["crop_state"]
        history = pd.DataFrame(ck["history"]).to_dict(orient="records")
        step = ck["step"]
        log.info("resumed from %s at step %d", found[-1][1], step)
        for f in Path(checkpoint).glob(".ckpt-*.tmp"):   # left by a killed writer
            f.unlink(missing_ok=True)

    sampler = CropSampler(arrays, n_ch, l, dev, grey)
    nz, lz = cfg["latent_channels"], cfg["latent_size"]
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else \
        (lambda: torch.autocast(dev.type, enabled=False))

    def state():
        return {"format": _CKPT_FORMAT, "step": step, "config": cfg, "phases": table,
                "spacing_um": spacing, "n_images": len(arrays), "seed": seed,
                "generator": {k: v.detach().cpu() for k, v in gen_net.state_dict().items()},
                "critics": [c.state_dict() for c in critics],
                "opt_g": opt_g.state_dict(), "opt_d": [o.state_dict() for o in opt_d],
                "noise_state": noise_gen.get_state(), "crop_state": rng.bit_generator.state,
                "history": pd.DataFrame(history).to_dict(orient="list")}

    acc = torch.zeros(5, device=dev)    # d_real, d_fake, gp, g_loss, count (kept on device)
    t0, s0 = time.perf_counter(), step
    while step < steps:
        for _ in range(cfg["critic_steps"]):
            noise = torch.randn(cfg["critic_batch"], nz, lz, lz, lz, device=dev, generator=noise_gen)
            with torch.no_grad(), autocast():
                fake = gen_net(noise)
            for axis in range(3):
                k = 0 if iso else axis
                critic, opt = critics[k], opt_d[k]
                real = sampler.sample(k, cfg["real_batch"], rng)
                fake_sl = _slices(fake, axis)
                with autocast():
                    d_real = critic(real).float().mean()
                    d_fake = critic(fake_sl).float().mean()
                gp = _gradient_penalty(critic, real, fake_sl[:cfg["real_batch"]], noise_gen,
                                       cfg["gp_lambda"])
                opt.zero_grad(set_to_none=True)
                (d_fake - d_real + gp).backward()
                opt.step()
                acc[:3] += torch.stack([d_real.detach(), d_fake.detach(), gp.detach()])
        for c in critics:
            c.requires_grad_(False)
        noise = torch.randn(cfg["generator_batch"], nz, lz, lz, lz, device=dev, generator=noise_gen)
        with autocast():
            fake = gen_net(noise)
            g_loss = sum(-critics[0 if iso else a](_slices(fake, a)).float().mean() for a in range(3))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for c in critics:
            c.requires_grad_(True)
        acc[3] += g_loss.detach()
        acc[4] += 1
        step += 1
        if step % log_every == 0 or step == steps:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            dt = time.perf_counter() - t0
            a = acc.cpu().numpy()
            n = max(a[4], 1)
            nc = n * cfg["critic_steps"] * 3          # critic updates (3 slice directions)
            rec = {"step": step, "d_real": a[0] / nc, "d_fake": a[1] / nc,
                   "wasserstein": (a[0] - a[1]) / nc, "gradient_penalty": a[2] / nc,
                   "g_loss": a[3] / n, "steps_per_s": (step - s0) / dt if dt > 0 else float("nan"),
                   "seconds": dt}
            rec = {k: float(v) if k != "step" else int(v) for k, v in rec.items()}
            history.append(rec)
            acc.zero_()
            t0, s0 = time.perf_counter(), step
            log.info("step %(step)d  W %(wasserstein).4f  gp %(gradient_penalty).4f  "
                     "G %(g_loss).4f  %(steps_per_s).3f steps/s", rec)
            if callback is not None:
                callback(rec)
        if checkpoint is not None and (step % checkpoint_every == 0 or step == steps):
            _save_checkpoint(checkpoint, state(), keep_checkpoints)

    gstate = {k: v.detach().cpu().clone() for k, v in gen_net.state_dict().items()}
    return SliceGANModel(cfg, gstate, table, spacing, step, pd.DataFrame(history))


def _gpu_workers(client):
    info = client.scheduler_info()
    return [w for w, d in info.get("workers", {}).items() if d.get("resources", {}).get("GPU", 0) >= 1]


def submit_train(client, image, **kwargs):
    """Run :func:`train` as one task on a dask cluster, on a GPU worker when there is one.

    Workers started with ``--resources GPU=1`` are chosen (``resources={"GPU": 1}``);
    with none, the task runs on any worker and ``device="auto"`` falls back to its CPU.
    A lazy image is computed first (a 2D section is small). Use a ``checkpoint``
    directory the workers share, so a task restarted on another worker resumes.

    Returns
    -------
    distributed.Future
        Resolves to a :class:`SliceGANModel`.
    """
    def _materialise(im):
        if hasattr(im, "compute"):
            return im.compute()
        return im

    if isinstance(image, dict):
        image = {k: _materialise(v) for k, v in image.items()}
    elif isinstance(image, (list, tuple)):
        image = [_materialise(v) for v in image]
    else:
        image = _materialise(image)
    resources = {"GPU": 1} if _gpu_workers(client) else None
    return client.submit(train, image, pure=False, resources=resources, **kwargs)
