"""Matrix-free stencil operators and a two-level preconditioned CG in torch.

The operators act on stacked fields of shape ``(n_fields, nz, ny, nx)``. The preconditioner
adds to Jacobi a coarse correction on one aggregate per (field, z-layer)
(additive two-level Schwarz with a piecewise-constant coarse space, Toselli & Widlund,
Domain Decomposition Methods, 2005, ch. 3; the aggregation idea of algebraic multigrid,
Vanek, Mandel & Brezina 1996): battery electrodes vary fastest through the thickness, and
the slab aggregates capture exactly that 1D mode, including the level of each potential,
which is otherwise fixed only by weak interface and Butler-Volmer couplings.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = []


def _sl(ax, lo):
    s = [slice(None)] * 3
    s[ax] = slice(0, -1) if lo else slice(1, None)
    return tuple(s)


def harmonic(torch, a, ax, area_over_h):
    """Face transmissibilities ``2ab/(a+b) * A/h`` between neighbours along ``ax``."""
    x, y = a[_sl(ax, True)], a[_sl(ax, False)]
    s = x + y
    return torch.where(s > 0, 2.0 * x * y / torch.where(s > 0, s, 1.0), 0.0) * area_over_h


def laplacian(t, x, out=None):
    """``out += sum over faces T (x_P - x_N)`` for face transmissibility list ``t``."""
    if out is None:
        out = x.new_zeros(x.shape)
    for ax, T in enumerate(t):
        if T is None:
            continue
        d = T * (x[_sl(ax, True)] - x[_sl(ax, False)])
        out[_sl(ax, True)] += d
        out[_sl(ax, False)] -= d
    return out


def laplacian_diag(t, shape, like):
    d = like.new_zeros(shape)
    for ax, T in enumerate(t):
        if T is None:
            continue
        d[_sl(ax, True)] += T
        d[_sl(ax, False)] += T
    return d


def shift(x, ax, s):
    """``y[P] = x[P + s e_ax]`` (zeros beyond the grid); ``ax`` counts spatial axes."""
    y = x.new_zeros(x.shape)
    n = x.dim()
    off = n - 3
    src = [slice(None)] * n
    dst = [slice(None)] * n
    if s > 0:
        src[off + ax], dst[off + ax] = slice(s, None), slice(0, -s)
    else:
        src[off + ax], dst[off + ax] = slice(0, s), slice(-s, None)
    y[tuple(dst)] = x[tuple(src)]
    return y


class TwoLevel:
    """Jacobi plus a (field, z-layer) coarse correction for an SPD operator ``apply``."""

    def __init__(self, torch, apply, diag, masks):
        self.torch = torch
        self.masks = masks.to(diag.dtype)  # (nf, nz, ny, nx) 1 on unknowns
        self.inv_diag = torch.where(masks, 1.0 / torch.where(diag > 0, diag, 1.0), 0.0)
        nf, nz = masks.shape[:2]
        self.nf, self.nz = nf, nz
        n = nf * nz
        ac = torch.zeros((n, n), dtype=diag.dtype, device=diag.device)
        layer = torch.arange(nz, device=diag.device)
        for f in range(nf):
            for m in range(3):
                v = torch.zeros_like(self.masks)
                sel = (layer % 3) == m
                v[f, sel] = self.masks[f, sel]
                r = apply(v) * self.masks
                sums = r.sum(dim=(2, 3))  # (nf, nz): row aggregates
                # Row layer k2 sees exactly one probed layer k within k2 - 1 .. k2 + 1.
                k = layer + ((m - layer + 1) % 3) - 1
                ok = (k >= 0) & (k < nz)
                for fp in range(nf):
                    ac[fp * nz + layer[ok], f * nz + k[ok]] = sums[fp, ok]
        ac = 0.5 * (ac + ac.T)
        empty = self.masks.sum(dim=(2, 3)).reshape(-1) == 0
        ac[empty, :] = 0.0
        ac[:, empty] = 0.0
        ac[empty, empty] = 1.0
        self.factor = torch.linalg.cholesky(ac)

    def __call__(self, r):
        torch = self.torch
        z = r * self.inv_diag
        rc = (r * self.masks).sum(dim=(2, 3)).reshape(-1, 1)
        yc = torch.cholesky_solve(rc, self.factor).reshape(self.nf, self.nz, 1, 1)
        return z + yc * self.masks


def pcg(apply, b, x0, prec, tol, max_iter):
    """Preconditioned conjugate gradients (Hestenes & Stiefel 1952).

    Stops when ``||r|| <= tol * ||b||`` (2-norms). Returns ``(x, iterations, relative
    residual)``."""
    x = x0.clone()
    r = b - apply(x)
    bnorm = float(b.norm())
    if bnorm == 0.0:
        return x.zero_(), 0, 0.0
    z = prec(r)
    p = z.clone()
    rz = float((r * z).sum())
    rel = float(r.norm()) / bnorm
    it = 0
    while rel > tol and it < max_iter:
        ap = apply(p)
        pap = float((p * ap).sum())
        if not pap > 0:
            break
        alpha = rz / pap
        x.add_(p, alpha=alpha)
        r.add_(ap, alpha=-alpha)
        it += 1
        rel = float(r.norm()) / bnorm
        if rel <= tol:
            break
        z = prec(r)
        rz_new = float((r * z).sum())
        p.mul_(rz_new / rz).add_(z)
        rz = rz_new
    return x, it, rel if math.isfinite(rel) else float("inf")


class GraphOperator:
    """``A = diag(d) + sum over edges c_ij (e_i - e_j)(e_i - e_j)^T`` as a torch CSR matrix.

    The sparsity pattern (the edges) is fixed when the operator is made; :meth:`assemble`
    only scatters new edge and diagonal values into it, so a Newton iteration re-assembles
    its Jacobian with one ``index_add`` and multiplies with one sparse kernel (cuSPARSE on
    CUDA, MKL or native on CPU)."""

    def __init__(self, torch, rows, cols, n, device):
        self.torch, self.n = torch, n
        self.rows, self.cols = rows, cols
        diag = torch.arange(n, device=device)
        r = torch.cat([diag, rows, cols, rows, cols])
        c = torch.cat([diag, rows, cols, cols, rows])
        key = r * n + c
        uniq, inverse = torch.unique(key, sorted=True, return_inverse=True)
        self.inverse = inverse
        self.col = (uniq % n)
        counts = torch.bincount(uniq // n, minlength=n)
        self.crow = torch.zeros(n + 1, dtype=torch.int64, device=device)
        self.crow[1:] = torch.cumsum(counts, 0)
        self.nnz = uniq.numel()

    def assemble(self, edge_values, diag_values):
        """CSR matrix and its diagonal for edge conductances and extra diagonal terms."""
        torch = self.torch
        raw = torch.cat([diag_values, edge_values, edge_values, -edge_values, -edge_values])
        vals = torch.zeros(self.nnz, dtype=raw.dtype, device=raw.device)
        vals.index_add_(0, self.inverse, raw)
        d = diag_values.clone()
        d.index_add_(0, self.rows, edge_values)
        d.index_add_(0, self.cols, edge_values)
        if vals.device.type == "cpu":
            # torch's CPU CSR kernel is ~100x slower than scipy's for these sizes.
            import scipy.sparse as sp

            if not hasattr(self, "_crow_np"):
                self._crow_np, self._col_np = self.crow.numpy(), self.col.numpy()
            return _ScipyMatrix(sp.csr_matrix((vals.numpy(), self._col_np, self._crow_np),
                                              shape=(self.n, self.n))), d
        a = torch.sparse_csr_tensor(self.crow, self.col, vals, (self.n, self.n),
                                    check_invariants=False)
        return a, d


class _ScipyMatrix:
    """A scipy CSR matrix that multiplies torch CPU vectors (``a @ x``)."""

    def __init__(self, m):
        self.m = m

    def __matmul__(self, x):
        import torch

        return torch.from_numpy(self.m @ x.numpy())


def grid_edges(torch, mask_a, mask_b, ax, s, offset_a=0, offset_b=0):
    """Flat index pairs (P in field a, P + s e_ax in field b) where both masks hold; also
    returns the flat index of P (for gathering per-voxel face values)."""
    n = mask_a.numel()
    idx = torch.arange(n, device=mask_a.device).reshape(mask_a.shape)
    nb_ok = shift(mask_b, ax, s) & mask_a
    p = idx[nb_ok]
    q = shift(idx, ax, s)[nb_ok]
    return p + offset_a, q + offset_b, p


class LinearSolver:
    """Solve ``A x = b`` for an assembled SPD operator: a sparse LU factorisation
    (SuperLU, Li 2005, through scipy) or two-level preconditioned CG.

    A direct factorisation wins on CPU for the sizes that fit there (and needs no
    iteration at all for the several right-hand sides of one Newton step); CG runs on any
    device in a few vectors of memory.

    ``reuse``, an earlier direct solver, lends its factors as the preconditioner of CG on
    the new matrix instead of factorising again. Newton and block Gauss-Seidel iterations
    change the matrices only a little from one iterate (and one time step) to the next, so
    CG converges in a few triangular solves (the frozen-Jacobian preconditioner of
    Jacobian-free Newton-Krylov, Knoll & Keyes, J. Comput. Phys. 193 (2004) 357, 3.1.3).
    When it needs more than ``REUSE_MAX`` iterations the matrix is factorised afresh.
    """

    #: CG iterations allowed on borrowed factors before a fresh factorisation.
    REUSE_MAX = 6

    def __init__(self, torch, a, diag, mask, method, tol, reuse=None):
        self.torch, self.tol, self.method = torch, tol, method
        self.shape = mask.shape
        self.a = a
        if method == "direct":
            if reuse is not None and reuse.method == "direct" and reuse.healthy \
                    and reuse.shape == self.shape:
                self.lu, self.borrowed = reuse.lu, True
            else:
                self._factorise()
            self.healthy = True
        else:
            self.apply = _shaped(a, mask.shape)
            self.prec = TwoLevel(torch, self.apply, diag.reshape(mask.shape), mask)

    def _factorise(self):
        from scipy.sparse.linalg import splu

        # The operators are SPD: diagonal pivots in symmetric mode keep the fill-reducing
        # ordering and cut a factorisation ~10x against partial pivoting.
        self.lu = splu(self.a.m.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})
        self.borrowed = False

    def solve(self, b, x0=None):
        """Return ``(x, iterations)``."""
        if self.method == "direct":
            (x,), n = self.solve_many([b])
            return x, n
        x0 = self.torch.zeros_like(b) if x0 is None else x0
        x, n, _ = pcg(self.apply, b, x0, self.prec, self.tol, 20000)
        return x, n

    def solve_many(self, bs):
        """Solve for several right-hand sides at once; returns ``([x, ...], iterations)``
        (CG iterations summed over the right-hand sides).

        With factors, the right-hand sides go through each triangular solve together
        (one pass over the factors for all of them)."""
        if self.method != "direct":
            out = [self.solve(b) for b in bs]
            return [x for x, _ in out], sum(n for _, n in out)
        torch = self.torch
        b = np.stack([v.reshape(-1).numpy() for v in bs], axis=1)
        x = None
        n = 0
        if self.borrowed:
            # A diverging Newton (a failing step, retried shorter) may overflow here;
            # the non-finite residual then sends it to a fresh factorisation.
            with np.errstate(over="ignore", invalid="ignore"):
                x, n, rel = _pcg_columns(self.a.m, b, self.lu.solve, self.tol,
                                         self.REUSE_MAX)
            if rel <= self.tol:
                self.healthy = n < self.REUSE_MAX
            else:
                self._factorise()
                x, n = None, 0
        if x is None:
            x = self.lu.solve(b)
        return [torch.from_numpy(np.ascontiguousarray(x[:, i])).reshape(v.shape)
                for i, v in enumerate(bs)], n * len(bs)


def _pcg_columns(a, b, prec, tol, max_iter):
    """Preconditioned CG on the columns of ``b`` (n, k) in lockstep, from x = 0.

    Each column keeps its own step lengths; a converged column stops moving. Returns
    ``(x, iterations, largest relative residual)``."""
    x = np.zeros_like(b)
    r = b.copy()
    bnorm = np.linalg.norm(b, axis=0)
    bnorm = np.where(bnorm > 0, bnorm, 1.0)
    rel = np.linalg.norm(r, axis=0) / bnorm
    z = prec(r)
    p = z.copy()
    rz = (r * z).sum(axis=0)
    it = 0
    while (rel > tol).any() and it < max_iter:
        ap = a @ p
        pap = (p * ap).sum(axis=0)
        active = (rel > tol) & (pap > 0)
        if not active.any():
            break
        alpha = np.where(active, rz / np.where(pap > 0, pap, 1.0), 0.0)
        x += alpha * p
        r -= alpha * ap
        it += 1
        rel = np.linalg.norm(r, axis=0) / bnorm
        if (rel <= tol).all():
            break
        z = prec(r)
        rz_new = (r * z).sum(axis=0)
        beta = np.where(active, rz_new / np.where(rz != 0, rz, 1.0), 0.0)
        p = z + beta * p
        rz = rz_new
    worst = float(rel.max()) if rel.size else 0.0
    return x, it, worst if math.isfinite(worst) else float("inf")


def _shaped(a, shape):
    def apply(x):
        return (a @ x.reshape(-1)).reshape(shape)

    return apply
