"""Rotations on ``(z, y, x)`` coordinates, shared by the synthetic data and registration."""

from __future__ import annotations

import numpy as np

__all__ = ["rotation_zyx"]


def rotation_zyx(a, b, g):
    """Rotation by ``a`` about z, then ``b`` about y, then ``g`` about x (radians).

    The matrix acts on ``(z, y, x)`` column vectors.

    Examples
    --------
    >>> import numpy as np
    >>> R = rotation_zyx(np.pi / 2, 0.0, 0.0)
    >>> np.round(R @ [0.0, 1.0, 0.0], 6).tolist()   # y turns into x about z
    [0.0, 0.0, 1.0]
    """
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    rz = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])   # acts on (y, x)
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])   # acts on (z, x)
    rx = np.array([[cg, -sg, 0], [sg, cg, 0], [0, 0, 1]])   # acts on (z, y)
    return rx @ ry @ rz
