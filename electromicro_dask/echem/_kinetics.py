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


def butler_volmer_surface(i0_of, u_of, c_a, m, c_max, psi, resistance, alpha, f, guess=None,
                          iterations=80, tol=1e-10):
    """Butler-Volmer with the exchange current and the open-circuit potential at a surface
    concentration that depends on the face's own current:
    ``j = i0(c) B(psi - U(c) - R j)``, ``c = c_a - m j``.

    ``psi`` [V] is ``phi_s - phi_e`` across the face, ``R`` [Ohm m^2] the film resistance
    and ``m`` [mol m^-3 / (A m^-2)] the face's one-voxel uptake over the step plus the
    half-voxel surface extrapolation (notes/echem.md 5). Solving this per face, instead of
    taking ``i0`` and ``U`` from the step's start or linearising ``U`` about the voxel
    value, keeps ``c`` inside ``[0, c_max]``: the exchange current vanishes there
    (``i0 ~ (c (c_max - c))^(1/2)``, Chen et al. 2020 table VII), so a full voxel stops
    reacting, as in the continuum, where the lagged value overfilled it or alternated from
    step to step; and where solid diffusion limits the current the surface OCP is the
    OCP's own value, not a tangent that drifts with the voxel's mean (which made the
    voltage rise during a discharge as the tangent flattened).

    The unknown is ``j``, with ``eta = psi - U(c) - R j`` and ``c = c_a - m j``. As
    ``U`` falls with ``c``, ``eta`` falls with ``j``, so the residual
    ``r(j) = j - i0(c) B(eta)`` brackets its root between 0 and the current that empties
    (``c = 0``) or fills (``c = c_max``) the surface, where ``i0 = 0``, or where the film
    drop alone cancels the zero-current overpotential. From ``guess`` (the previous
    Newton iterate's currents) or a linearised start, Newton steps are taken while they
    stay in the bracket and halve it, bisection otherwise (``rtsafe``, Press et al.,
    Numerical Recipes, 3rd ed., section 9.4): plain Newton would crawl at the square-root
    singularity of a filling voxel's exchange current.

    ``i0_of(c, index)`` gives the exchange current of the faces ``index`` (a flat index
    into the arrays) at surface concentration ``c`` (its last axis runs over ``index``);
    ``u_of(c)`` the OCP, elementwise. Faces with ``i0 > 0`` and a nonzero zero-current
    overpotential are iterated, each until its own residual is small.

    Returns ``j``, ``dj/dpsi`` (with ``c`` following ``j``) and ``eta`` (arrays of the
    shape of ``psi``); ``j`` stays inside the bracket, so the surface never passes 0 or
    ``c_max``.
    """
    af_a, af_c = (1.0 - alpha) * f, alpha * f
    shape = psi.shape
    c_a, m, psi = (x.reshape(-1) for x in (c_a, m, psi))
    r_s = 0.0 if resistance is None else resistance
    if hasattr(r_s, "shape"):
        r_s = r_s.reshape(-1)
    c_a = c_a.clamp(0.0, c_max)
    delta = 1e-7 * c_max

    def residual(j, sel):
        """r(j), dr/dj with dr/dj's exchange-current part floored, i0 B'(eta) and eta."""
        rs = r_s[sel] if hasattr(r_s, "shape") else r_s
        ms = m[sel]
        c = (c_a[sel] - ms * j).clamp(0.0, c_max)
        # i0 and U with their central differences in one call each: on small grids the
        # solve is bound by the number of tensor operations, not their size
        cs = c.new_empty((3,) + c.shape)
        cs[0] = c
        cs[1] = (c + delta).clamp(max=c_max)
        cs[2] = (c - delta).clamp(min=0.0)
        i0, ip, im = i0_of(cs, sel)
        u, up, um = u_of(cs)
        dc = cs[1] - cs[2]
        di0, du = (ip - im) / dc, (up - um) / dc
        eta = psi[sel] - u - rs * j
        ea = (af_a * eta).clamp(-_CLIP, _CLIP).exp()
        ec = (-af_c * eta).clamp(-_CLIP, _CLIP).exp()
        b = ea - ec
        djb = i0 * (af_a * ea + af_c * ec)
        # an extrapolation that raises i0 faster than the face drains it would make the
        # derivative lose its sign; the floor keeps the potentials' Newton matrix SPD
        conc = (1.0 + ms * di0 * b).clamp(min=0.5)
        # -dU/dc >= 0 for an intercalation OCP; a noisy tabulated OCP is not let to
        # make the face's effective resistance negative
        return j - i0 * b, conc + (rs + ms * (-du).clamp(min=0.0)) * djb, djb, eta

    every = slice(None)
    i0a = i0_of(c_a, every)
    eta0 = psi - u_of(c_a)  # the overpotential at zero current
    if guess is None:
        # the first Newton step of the plain series-resistance problem from eta = eta0
        jb, djb = _bv(i0a, eta0, af_a, af_c)
        guess = jb / (1.0 + r_s * djb)
    j = guess.reshape(-1).clone()
    active = ((i0a > 0) & (eta0 != 0)).nonzero().reshape(-1)
    j[(i0a <= 0) | (eta0 == 0)] = 0.0
    if active.numel():
        ma, ca, e0 = m[active], c_a[active], eta0[active]
        # bracket ends with r < 0 (xl) and r > 0 (xh): r(0) = -i0 B(eta0) has the sign of
        # -eta0, and at the far end i0 = 0, so r = j there (or the film drop and the
        # surface's OCP shift together reverse eta)
        rs = r_s[active] if hasattr(r_s, "shape") else r_s
        far_c = (-(c_max - ca) / ma.clamp(min=1e-300)).where(e0 < 0, ca / ma.clamp(min=1e-300))
        far_r = e0 / (rs.clamp(min=1e-300) if hasattr(rs, "shape") else max(rs, 1e-300))
        far = far_c.where(far_c.abs() < far_r.abs(), far_r)
        zero = e0.new_zeros(())
        xl, xh = far.where(e0 < 0, zero), zero.where(e0 < 0, far)
        x = j[active].clamp(xl, xh)
        dxold = (xh - xl).abs()
        dx = dxold.clone()
        scale = max(float(x.abs().max()), 1e-300)
        idx = active
        pos = x.new_ones(x.shape, dtype=active.dtype).cumsum(0) - 1  # index into out
        out = x.clone()
        for _ in range(iterations):
            r, slope = residual(x, idx)[:2]
            xl, xh = xl.where(r >= 0, x), xh.where(r <= 0, x)
            bisect = (((x - xh) * slope - r) * ((x - xl) * slope - r) >= 0) | \
                (2.0 * r.abs() > (dxold * slope).abs())
            dxold = dx
            dx = (0.5 * (xh - xl)).where(bisect, r / slope)
            x = (xl + dx).where(bisect, x - dx)
            out[pos] = x
            # done where the residual is small (a small Newton step is not enough: at the
            # square-root singularity of a filling voxel it is small far from the root) or
            # the bracket or step is down to round-off
            tiny = 1e-14 * x.abs()
            keep = (r.abs() > tol * scale) & ((xh - xl).abs() > tiny) & (dx.abs() > tiny)
            if not bool(keep.any()):
                break
            idx, pos, x, xl, xh, dx, dxold = (
                v[keep] for v in (idx, pos, x, xl, xh, dx, dxold))
        j[active] = out
    _, slope, djb, eta = residual(j, every)
    return j.reshape(shape), (djb / slope).reshape(shape), eta.reshape(shape)
