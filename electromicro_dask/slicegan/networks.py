"""The SliceGAN generator (3D) and critic (2D), as the v1.1 reference builds them.

Reference: ``slicegan/networks.py`` at tag ``v.1.1`` of github.com/stke9/SliceGAN.
Generator: plain ``ConvTranspose3d`` layers without bias, each but the last followed by
``BatchNorm3d`` and ReLU; the last gives a softmax over phases (n-phase) or
``(tanh + 1) / 2`` (grey level). Critic: ``Conv2d`` layers without bias, ReLU between
them, no normalisation (WGAN-GP, Gulrajani et al. 2017, forbids batch norm in the critic).
PyTorch's default initialisation is kept, as in the reference (its ``weights_init`` is
never called).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Generator", "Critic", "build_networks"]


class Generator(nn.Module):
    """3D generator: latent ``(N, latent_channels, n, n, n)`` -> ``(N, channels, m, m, m)``."""

    def __init__(self, cfg, channels, grey=False):
        super().__init__()
        widths = [cfg["latent_channels"], *cfg["g_channels"], channels]
        self.grey = bool(grey)
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        for i, (k, s, p) in enumerate(zip(cfg["g_kernels"], cfg["g_strides"], cfg["g_paddings"])):
            self.convs.append(nn.ConvTranspose3d(widths[i], widths[i + 1], k, s, p, bias=False))
            if i < len(cfg["g_kernels"]) - 1:
                self.bns.append(nn.BatchNorm3d(widths[i + 1]))

    def logits(self, x):
        for conv, bn in zip(self.convs[:-1], self.bns):
            x = torch.relu(bn(conv(x)))
        return self.convs[-1](x)

    def forward(self, x):
        y = self.logits(x)
        if self.grey:
            return 0.5 * (torch.tanh(y) + 1.0)
        return torch.softmax(y, dim=1)


class Critic(nn.Module):
    """2D critic: images ``(N, channels, l, l)`` -> scores ``(N,)``."""

    def __init__(self, cfg, channels):
        super().__init__()
        widths = [channels, *cfg["d_channels"], 1]
        self.convs = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], k, s, p, bias=False)
            for i, (k, s, p) in enumerate(zip(cfg["d_kernels"], cfg["d_strides"], cfg["d_paddings"])))

    def forward(self, x):
        for conv in self.convs[:-1]:
            x = torch.relu(conv(x))
        return self.convs[-1](x).reshape(x.shape[0])


def build_networks(cfg, channels, grey=False, n_critics=1):
    """A generator and ``n_critics`` critics (1 isotropic, 3 anisotropic)."""
    return Generator(cfg, channels, grey), [Critic(cfg, channels) for _ in range(n_critics)]
