"""Butler-Volmer kinetics with a series resistance, solved per face.

A face reaction with a film (or half-voxel) resistance ``R`` in series obeys
``j = i0 * (exp((1 - alpha) f eta) - exp(-alpha f eta))`` with ``eta = eta0 - R j``
(Newman & Thomas-Alyea, Electrochemical Systems, 3rd ed., eq. 8.6; the film as a series
resistance as in seed 001's CEI, notes/echem.md 1.3). Newton on ``eta`` from ``eta = eta0``
converges monotonically because ``G(eta) = eta0 - eta - R j(eta)`` is concave where
``eta > 0`` and convex where ``eta < 0``.
"""

from __future__ import annotations

__all__ = []

#: |alpha f eta| is clipped here so exp never overflows (exp(50) ~ 5e21).
_CLIP = 50.0


def _bv(i0, eta, af_a, af_c):
    ea = (af_a * eta).clamp(-_CLIP, _CLIP).exp()
    ec = (-af_c * eta).clamp(-_CLIP, _CLIP).exp()
    return i0 * (ea - ec), i0 * (af_a * ea + af_c * ec)


def butler_volmer(i0, eta0, resistance, alpha, f, iterations=60, tol=1e-13):
    """Current density ``j`` [A/m^2] and its derivative ``dj/deta0`` [S/m^2].

    Parameters
    ----------
    i0 : torch.Tensor
        Exchange current density [A/m^2].
    eta0 : torch.Tensor
        Driving overpotential before the series drop [V].
    resistance : torch.Tensor or float or None
        Series area resistance [Ohm m^2] (0 or None: plain Butler-Volmer).
    alpha : float
        Cathodic charge-transfer coefficient (anodic ``1 - alpha``).
    f : float
        ``F / (R T)`` [1/V].
    """
    af_a, af_c = (1.0 - alpha) * f, alpha * f
    if resistance is None or (not hasattr(resistance, "shape") and resistance == 0):
        j, dj = _bv(i0, eta0, af_a, af_c)
        return j, dj, eta0
    eta = eta0.clone()
    for _ in range(iterations):
        j, dj = _bv(i0, eta, af_a, af_c)
        g = eta0 - eta - resistance * j
        step = g / (1.0 + resistance * dj)
        eta = eta + step
        if float(step.abs().max()) < tol:
            break
    j, dj = _bv(i0, eta, af_a, af_c)
    return j, dj / (1.0 + resistance * dj), eta
