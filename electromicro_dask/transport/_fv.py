"""Matrix-free finite-volume diffusion on a voxel grid, solved by preconditioned CG in torch.

Discretisation (cell-centred finite volumes, the scheme TauFactor uses, Cooper et al.,
SoftwareX 5 (2016) 203, section 2): one unknown per voxel, a face conductance
``g = hm(s_i, s_j) * A / h`` between face neighbours (``hm`` the harmonic mean of the two
voxel conductivities, ``A`` the face area, ``h`` the centre distance), and Dirichlet values on
the two faces normal to the flow axis placed on the voxel faces (half a voxel from the
first centre, conductance ``2 s A / h``), as TauFactor's ``Solver`` does (its ghost layer
holds ``2 * bc`` with neighbour weight 2). Side faces are no-flux, or periodic.

The operator ``A x = sum_j g_ij (x_i - x_j) + g_b x_i`` is symmetric positive definite on the
voxels connected to a Dirichlet face, so conjugate gradients apply (Hestenes & Stiefel 1952);
voxels with no conductance are decoupled with a unit diagonal and stay at 0. The flow axis is
axis 0 of every array here (the caller transposes).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ._common import _threads, _torch

__all__ = []

def bytes_per_voxel(itemsize):
    """Memory per voxel of a solve: 3 face conductances, diagonal, b and 5 CG vectors in the
    solve dtype, the multigrid's inverse diagonal, 2 buffers and ~1/7 for its coarse levels,
    plus the float64 set-up (conductivity, face conductances, diagonal: 40 bytes) and labels
    (8 bytes)."""
    return 13 * itemsize + 48


def _harmonic(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 2.0 * a * b / (a + b)
    out[~np.isfinite(out)] = 0.0
    return out


def build_system(sigma, spacing, periodic):
    """Face conductances (numpy float64) for conductivity map ``sigma`` (axis 0 = flow)."""
    h0, h1, h2 = spacing
    area_over_h = (h1 * h2 / h0, h0 * h2 / h1, h0 * h1 / h2)
    g = []
    for ax in range(3):
        a = np.take(sigma, np.arange(1, sigma.shape[ax]), axis=ax)
        b = np.take(sigma, np.arange(0, sigma.shape[ax] - 1), axis=ax)
        g.append(_harmonic(a, b) * area_over_h[ax])
    wrap = [None, None, None]
    if periodic:
        for ax in (1, 2):
            if sigma.shape[ax] > 2:
                wrap[ax] = _harmonic(np.take(sigma, 0, axis=ax),
                                     np.take(sigma, -1, axis=ax)) * area_over_h[ax]
    g_in = 2.0 * sigma[0] * area_over_h[0]
    g_out = 2.0 * sigma[-1] * area_over_h[0]
    return g, wrap, g_in, g_out


class _Operator:
    def __init__(self, g, wrap, g_in, g_out, device, dtype):
        torch = _torch()
        self.torch = torch
        self.g = [torch.as_tensor(a, device=device).to(dtype) for a in g]
        self.wrap = [None if w is None else torch.as_tensor(w, device=device).to(dtype)
                     for w in wrap]
        shape = (g[0].shape[0] + 1,) + g[0].shape[1:]
        diag = torch.zeros(shape, dtype=dtype, device=device)
        for ax, ga in enumerate(self.g):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[ax] = slice(0, -1)
            hi[ax] = slice(1, None)
            diag[tuple(lo)] += ga
            diag[tuple(hi)] += ga
        for ax, w in enumerate(self.wrap):
            if w is not None:
                diag.select(ax, 0).add_(w)
                diag.select(ax, -1).add_(w)
        diag[0] += torch.as_tensor(g_in, device=device).to(dtype)
        diag[-1] += torch.as_tensor(g_out, device=device).to(dtype)
        # Decoupled voxels (solid, excluded pockets) get a unit diagonal and a zero
        # right-hand side, so they stay at 0 and never enter the Krylov space.
        diag[diag == 0] = 1.0
        self.diag = diag
        self.shape = shape

    def bind(self, x, out):
        """``out = A x`` as a closure over precomputed views (slicing costs ~20 us a call)."""
        return bind_stencil(self.torch, self.g, self.wrap, self.diag, x, out)

    def matvec(self, x, out):
        return self.bind(x, out)()


def _dot(a, b):
    # A float32 dot (blocked SIMD partial sums) has a relative error of ~1e-6 on 10^6-10^8
    # terms of one sign (r.z, p.Ap are sums of non-negative terms), which CG tolerates; a
    # float64 copy per dot would cost as much as the stencil itself.
    return _torch().dot(a.view(-1), b.view(-1))


def solve(sigma, spacing, periodic, device, dtype, tol, max_iter, x0=None,
          preconditioner="multigrid"):
    """Solve for the potential with 1 on the inlet face (axis-0 index 0) and 0 on the outlet.

    Returns ``(x, info)`` with ``x`` a float64 numpy array and ``info`` a dict with
    ``iterations``, ``converged``, ``residual`` (relative, preconditioned norm),
    ``flux_per_slice`` (through the inlet face, the n0 - 1 internal face planes and the
    outlet face, in conductivity x um), ``time_s``.
    """
    torch = _torch()
    t0 = time.perf_counter()
    g, wrap, g_in, g_out = build_system(sigma, spacing, periodic)
    op = _Operator(g, wrap, g_in, g_out, device, dtype)
    if preconditioner == "multigrid" and sigma.size > 4096:
        from ._multigrid import MultigridPreconditioner

        t64 = [torch.as_tensor(a, device=device) for a in g]
        w64 = [None if w is None else torch.as_tensor(w, device=device) for w in wrap]
        dtrue = op.diag.to(torch.float64)
        dtrue[torch.as_tensor(sigma == 0, device=device)] = 0.0
        mg = MultigridPreconditioner(t64, w64, dtrue, dtype, fine=(op.g, op.wrap, op.diag))
        del t64, w64, dtrue

        def prec(r, z):
            return mg.apply(r, z)
    else:
        def prec(r, z):
            return torch.div(r, op.diag, out=z)
    del g, wrap
    b = torch.zeros(op.shape, dtype=dtype, device=device)
    b[0] = torch.as_tensor(g_in, device=device).to(dtype)
    active = torch.as_tensor(sigma > 0, device=device)
    n0 = op.shape[0]
    if x0 is None:
        # Linear profile between the Dirichlet faces: exact for straight channels and a
        # good start for porous media (TauFactor starts from the same profile).
        prof = 1.0 - (torch.arange(n0, dtype=dtype, device=device) + 0.5) / n0
        x = prof.view(-1, 1, 1) * active.to(dtype)
    else:
        x = torch.as_tensor(x0, device=device).to(dtype).clone()
    r = torch.empty_like(x)
    op.matvec(x, r)
    torch.sub(b, r, out=r)
    z = torch.empty_like(x)
    ap = torch.empty_like(x)
    prec(b, z)
    bnorm = math.sqrt(max(float(_dot(b, z)), 0.0))
    prec(r, z)
    p = z.clone()
    rz = float(_dot(r, z))
    it = 0
    converged = bnorm == 0.0
    rel = 0.0 if converged else math.sqrt(max(rz, 0.0)) / bnorm
    converged = converged or rel < tol
    apply = op.bind(p, ap)
    with torch.no_grad(), _threads(x.numel(), device):
        while not converged and it < max_iter:
            apply()
            pap = float(_dot(p, ap))
            if not pap > 0:
                break
            alpha = rz / pap
            x.add_(p, alpha=alpha)
            r.add_(ap, alpha=-alpha)
            prec(r, z)
            rz_new = float(_dot(r, z))
            it += 1
            rel = math.sqrt(max(rz_new, 0.0)) / bnorm
            if rel < tol:
                converged = True
                break
            p.mul_(rz_new / rz).add_(z)
            rz = rz_new
    xs = x.to(torch.float64).cpu().numpy()
    flux = flux_per_slice(xs, sigma, spacing)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    info = {"iterations": it, "converged": bool(converged), "residual": rel,
            "flux_per_slice": flux, "time_s": time.perf_counter() - t0}
    return xs, info


def flux_per_slice(x, sigma, spacing):
    """Current through each plane normal to axis 0 (inlet face, internal planes, outlet face)."""
    h0, h1, h2 = spacing
    aoh = h1 * h2 / h0
    g = _harmonic(sigma[1:], sigma[:-1]) * aoh
    internal = (g * (x[:-1] - x[1:])).sum(axis=(1, 2))
    inlet = (2.0 * sigma[0] * aoh * (1.0 - x[0])).sum()
    outlet = (2.0 * sigma[-1] * aoh * x[-1]).sum()
    return np.concatenate([[inlet], internal, [outlet]])


def bind_stencil(torch, g, wrap, diag, x, out):
    """Closure computing ``out = diag * x - sum_faces g * x_neighbour`` (the 7-point
    finite-volume operator, with optional periodic wrap faces) over precomputed views."""
    terms = []
    for ax, ga in enumerate(g):
        n = x.shape[ax]
        if n < 2:
            continue
        terms.append((out.narrow(ax, 0, n - 1), ga, x.narrow(ax, 1, n - 1)))
        terms.append((out.narrow(ax, 1, n - 1), ga, x.narrow(ax, 0, n - 1)))
    for ax, w in enumerate(wrap):
        if w is not None:
            terms.append((out.select(ax, 0), w, x.select(ax, -1)))
            terms.append((out.select(ax, -1), w, x.select(ax, 0)))

    def apply():
        torch.mul(diag, x, out=out)
        for o, ga, xi in terms:
            o.addcmul_(ga, xi, value=-1.0)
        return out

    return apply
