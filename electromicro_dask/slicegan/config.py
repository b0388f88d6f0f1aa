"""Network configurations of SliceGAN and the geometry of its generator.

The default, ``"v1.1"``, is the configuration of the code cited by Kench and Cooper,
Nat. Mach. Intell. 3, 299 (2021) (github.com/stke9/SliceGAN, tag ``v.1.1``, Dec 2020):
``run_slicegan.py`` fixes the layer sizes, kernels, strides and paddings and
``slicegan/model.py`` the training hyper-parameters. Each value below says where it
comes from. ``"tiny"`` is a reduced configuration of the same form (for tests and CPU
smoke runs), not a model of the paper.

Geometry (used by :func:`~electromicro_dask.slicegan.generate`): a transposed
convolution of kernel ``k``, stride ``s`` and padding ``p`` maps ``n`` input voxels to
``s*n + k - s - 2p``. When ``p >= k - s`` every kept output voxel receives all of its
``k/s`` taps from inputs that exist, so it does not see the border of the latent; the
network is then exactly translation-equivariant with a period of ``s**L`` output voxels
per latent voxel (``L`` layers), with batch norm in eval mode (fixed per-channel affine).
The output of ``n`` latent voxels is ``s**L * n - C`` voxels long; ``C / s**L`` is the
latent halo a block needs.
"""

from __future__ import annotations

import copy
import math

from ..core.errors import InputError

__all__ = ["CONFIGS", "make_config", "output_size", "latent_size", "period", "trim"]

CONFIGS = {
    "v1.1": {
        # run_slicegan.py (v.1.1): img_size 64, z_channels 16, lays 6 with gk=[4]*6,
        # gs=[2]*6, gf=[16,256,256,128,64,nc], gp=[2,2,2,2,3] -> zip() keeps 5 layers.
        "image_size": 64,
        "latent_channels": 16,
        "latent_size": 4,             # model.py: lz = 4 (training latent is 16 x 4^3)
        "g_channels": [256, 256, 128, 64],   # gf[1:-1]; the output layer has nc channels
        "g_kernels": [4, 4, 4, 4, 4],
        "g_strides": [2, 2, 2, 2, 2],
        "g_paddings": [2, 2, 2, 2, 3],
        # run_slicegan.py: df=[nc,64,128,256,512,1], dk=[4]*6, ds=[2]*6, dp=[1,1,1,1,0]
        # -> five Conv2d layers 64 -> 32 -> 16 -> 8 -> 4 -> 1.
        "d_channels": [64, 128, 256, 512],
        "d_kernels": [4, 4, 4, 4, 4],
        "d_strides": [2, 2, 2, 2, 2],
        "d_paddings": [1, 1, 1, 1, 0],
        # model.py (v.1.1): batch_size 32 (real slices per critic step and generator
        # volumes per generator step), D_batch_size 8 (fake volumes per critic step),
        # lrg = lrd = 1e-4, beta1 0, beta2 0.9, Lambda 10, critic_iters 5.
        "real_batch": 32,
        "critic_batch": 8,
        "generator_batch": 32,
        "lr_g": 1e-4,
        "lr_d": 1e-4,
        "betas": [0.0, 0.9],
        "gp_lambda": 10.0,
        "critic_steps": 5,
    },
    "tiny": {
        # Three layers 4 -> 6 -> 10 -> 16 (same rules as v1.1, paddings 2, 2, 3) and a
        # three-layer critic 16 -> 8 -> 4 -> 1; for tests and CPU smoke runs only.
        "image_size": 16,
        "latent_channels": 4,
        "latent_size": 4,
        "g_channels": [32, 16],
        "g_kernels": [4, 4, 4],
        "g_strides": [2, 2, 2],
        "g_paddings": [2, 2, 3],
        "d_channels": [16, 32],
        "d_kernels": [4, 4, 4],
        "d_strides": [2, 2, 2],
        "d_paddings": [1, 1, 0],
        "real_batch": 16,
        "critic_batch": 2,
        "generator_batch": 4,
        "lr_g": 1e-3,
        "lr_d": 1e-3,
        "betas": [0.0, 0.9],
        "gp_lambda": 10.0,
        "critic_steps": 2,            # with lr 1e-3: learns phase fractions in ~40 steps on CPU
    },
}


def make_config(config="v1.1", **overrides):
    """A validated configuration dict: a name from :data:`CONFIGS` or a dict, plus overrides."""
    if isinstance(config, str):
        if config not in CONFIGS:
            raise InputError("config", f"one of {sorted(CONFIGS)} or a dict, got {config!r}")
        cfg = copy.deepcopy(CONFIGS[config])
    elif isinstance(config, dict):
        cfg = copy.deepcopy(CONFIGS["v1.1"])
        unknown = set(config) - set(cfg)
        if unknown:
            raise InputError("config", f"keys among {sorted(cfg)}, got unknown {sorted(unknown)}")
        cfg.update(copy.deepcopy(config))
    else:
        raise InputError("config", f"a name in {sorted(CONFIGS)} or a dict, got {config!r}")
    for k, v in overrides.items():
        if v is None:
            continue
        if k not in cfg:
            raise InputError(k, f"a configuration key among {sorted(cfg)}")
        cfg[k] = v
    nl = len(cfg["g_kernels"])
    if not (len(cfg["g_strides"]) == len(cfg["g_paddings"]) == nl == len(cfg["g_channels"]) + 1):
        raise InputError("config", "g_kernels, g_strides, g_paddings of one length L and "
                         "g_channels of length L - 1")
    nd = len(cfg["d_kernels"])
    if not (len(cfg["d_strides"]) == len(cfg["d_paddings"]) == nd == len(cfg["d_channels"]) + 1):
        raise InputError("config", "d_kernels, d_strides, d_paddings of one length L and "
                         "d_channels of length L - 1")
    for k, s, p in zip(cfg["g_kernels"], cfg["g_strides"], cfg["g_paddings"]):
        if p < k - s:
            raise InputError("config", f"generator paddings >= kernel - stride (here {k - s}) "
                             f"so that generation tiles exactly, got {p}")
    if output_size(cfg, cfg["latent_size"]) != cfg["image_size"]:
        raise InputError("config", f"a generator whose {cfg['latent_size']}^3 latent gives "
                         f"image_size {cfg['image_size']}, it gives "
                         f"{output_size(cfg, cfg['latent_size'])}")
    n = cfg["image_size"]
    for k, s, p in zip(cfg["d_kernels"], cfg["d_strides"], cfg["d_paddings"]):
        n = (n + 2 * p - k) // s + 1
    if n != 1:
        raise InputError("config", f"a critic reducing image_size to 1, it gives {n}")
    return cfg


def output_size(cfg, n):
    """Output voxels along one axis for ``n`` latent voxels."""
    for k, s, p in zip(cfg["g_kernels"], cfg["g_strides"], cfg["g_paddings"]):
        n = s * n + k - s - 2 * p
    return n


def period(cfg):
    """Output voxels per latent voxel (product of the strides)."""
    return math.prod(cfg["g_strides"])


def trim(cfg):
    """``C`` in ``output = period * n - C``."""
    return period(cfg) - output_size(cfg, 1)   # output_size is affine in n


def latent_size(cfg, size):
    """Latent voxels needed for ``size`` output voxels along one axis."""
    return -(-(size + trim(cfg)) // period(cfg))
