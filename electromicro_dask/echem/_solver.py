"""Time integration of the microstructure-resolved half cell (Newman model on voxels).

Equations (notes/echem.md 1.3, the porous-electrode theory of Doyle, Fuller & Newman,
J. Electrochem. Soc. 140 (1993) 1526, written on the resolved structure as in seed 001's
"Modeling methodology" and seed 002 section 4): salt concentration ``c_e`` and potential
``phi_e`` in electrolyte-bearing voxels, ``phi_s`` in AM and CBD, lithium ``c_s`` in AM,
Butler-Volmer on every reactive AM face, lithium metal as a Butler-Volmer boundary, the cell
voltage as a global unknown under galvanostatic control.

Numerics (notes/echem.md 5): cell-centred finite volumes with harmonic face means, backward
Euler in time, and per step a segregated block Gauss-Seidel iteration (the scheme of the
segregated solvers in J. Sci. Comput. 89 (2021) 1 and NREL echemAMR): a Newton solve of the
potentials with the kinetics linearised per face (an SPD resistor network; the cell voltage
by superposition of two solves), then the linear SPD solves of ``c_s`` and ``c_e`` with the
face currents just found as sources. Using the same currents as sources makes lithium and
salt conservation exact up to the linear-solver tolerance. Each face's current is solved
with the exchange current at its own surface concentration (the voxel's uptake over the step
and the sub-voxel surface excess, both implicit in that current), so a surface that fills
stops reacting in the same step instead of overfilling.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ._cell import DIRECTIONS
from ._kinetics import butler_volmer, butler_volmer_surface
from ._linalg import GraphOperator, LinearSolver, grid_edges, harmonic, laplacian, shift
from .parameters import FARADAY, GAS_CONSTANT

__all__ = []


#: Largest potential system (unknowns) factorised directly on CPU by default: SuperLU's
#: fill-in on 3D grids grows as n^(4/3); at 4e5 unknowns a factorisation takes seconds.
DIRECT_MAX = 400_000


class StepFailed(Exception):
    pass


class BelowCutoff(StepFailed):
    """The cell voltage runs away below the cutoff within the step: no voltage delivers
    the applied current (the surfaces' solid-diffusion-limited currents add up to less,
    or the salt has run out), so the step crosses the cutoff."""


class Solver:
    """The half cell of a :class:`~._cell.Cell` under a constant applied current."""

    def __init__(self, cell, params, current, torch, device, tol=1e-9, lin_tol=1e-11,
                 surface_extrapolation=True, linear_solver="auto"):
        self.cell, self.p, self.torch, self.device = cell, params, torch, device
        self.current = float(current)  # A, > 0 on discharge (lithiation of the AM)
        self.tol, self.lin_tol = tol, lin_tol
        self.sweep_tol = (1e-7, 1e-6)
        self.loose_tol = 1e-6  # Newton residual / current while the sweeps move
        self.anderson = 4  # depth of the Anderson acceleration of the sweeps (0: off)
        self.extrapolate = surface_extrapolation
        n_unknowns = 2 * int(np.prod(cell.shape))
        if linear_solver == "auto":
            linear_solver = "direct" if device.type == "cpu" and n_unknowns <= DIRECT_MAX \
                else "cg"
        self.method = linear_solver
        self._dt = self._time = 0.0
        dt = torch.float64
        T = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)  # noqa: E731
        self.T = T
        sp = cell.spacing
        self.aoh = [cell.area(ax) / sp[ax] for ax in range(3)]
        self.vol = cell.volume
        self.f = FARADAY / (GAS_CONSTANT * params.temperature)
        self.nu = 2.0 / self.f * (1.0 - params.t_plus) * params.tdf
        self.am = torch.as_tensor(cell.am, device=device)
        self.solid = torch.as_tensor(cell.solid, device=device)
        self.elec = torch.as_tensor(cell.elec, device=device)
        self.eps = T(cell.eps)
        self.gk = T(cell.gamma_k)
        self.gd = T(cell.gamma_d)
        sig = T(cell.sigma)
        self.T_s = [harmonic(torch, sig, ax, self.aoh[ax]) for ax in range(3)]
        self.T_cs = [T(cell.ds_faces[ax]) * params.d_s * self.aoh[ax] for ax in range(3)]
        self.dirs = [d for d in DIRECTIONS if cell.faces[d].any()]
        self.w = {d: T(cell.faces[d]) for d in self.dirs}
        self.film = {d: T(cell.film[d]) for d in self.dirs} if cell.film else {}
        self.wmask = {d: self.w[d] > 0 for d in self.dirs}
        # The reactive faces of all directions as one flat list: index into the arrays
        # stacked over self.dirs (most voxels are not faces).
        self.face_idx = (torch.stack([self.wmask[d] for d in self.dirs]).reshape(-1)
                         .nonzero().reshape(-1) if self.dirs else None)
        self.film_all = (torch.stack([self.film[d] for d in self.dirs]).reshape(-1)[self.face_idx]
                         if self.film else None)
        self.h = sp
        self.pot_mask = torch.stack([self.solid, self.elec])
        # Boundaries: (kind, field, layer, area of one voxel face); bottom holds the cell
        # voltage V, top the reference 0 V.
        a0 = cell.area(0)
        self.bounds = {"bottom": (cell.bottom, 0, a0), "top": (cell.top, -1, a0)}
        self.sig_layers = {k: sig[v[1]] for k, v in self.bounds.items()}
        self.stats = {"pcg_iterations": 0, "pcg_solves": 0, "newton": 0}
        self._lin = {}  # the last solver of each system, whose factors the next may reuse
        self._j_guess = None  # the last face currents: the start of the next face solve
        self.cutoff = None  # set by the caller: a Newton running away below it ends a step
        self._build_operators()

    def _build_operators(self):
        """Sparsity patterns of the three operators (potentials, c_s, c_e), made once."""
        torch, dev = self.torch, self.device
        N = int(np.prod(self.cell.shape))
        self.N = N
        rows, cols, parts = [], [], []
        for ax in range(3):
            p, q, pi = grid_edges(torch, self.solid, self.solid, ax, 1)
            rows.append(p), cols.append(q), parts.append(("s", ax, pi))
        for ax in range(3):
            p, q, pi = grid_edges(torch, self.elec, self.elec, ax, 1, N, N)
            rows.append(p), cols.append(q), parts.append(("e", ax, pi))
        for d in self.dirs:
            p, q, pi = grid_edges(torch, self.wmask[d], self.elec, d[0], d[1], 0, N)
            rows.append(p), cols.append(q), parts.append(("i", d, pi))
        self.pot_parts = parts
        self.pot_op = GraphOperator(torch, torch.cat(rows), torch.cat(cols), 2 * N, dev)
        self.T_s_full = [_full(torch, t, ax) for ax, t in enumerate(self.T_s)]
        rows, cols, vals = [], [], []
        for ax in range(3):
            p, q, pi = grid_edges(torch, self.am, self.am, ax, 1)
            v = _full(torch, self.T_cs[ax], ax).reshape(-1)[pi]
            keep = v > 0
            rows.append(p[keep]), cols.append(q[keep]), vals.append(v[keep])
        self.cs_op = GraphOperator(torch, torch.cat(rows), torch.cat(cols), N, dev)
        self.cs_edges = torch.cat(vals)
        rows, cols, parts = [], [], []
        for ax in range(3):
            p, q, pi = grid_edges(torch, self.elec, self.elec, ax, 1)
            rows.append(p), cols.append(q), parts.append(pi)
        self.ce_parts = parts
        self.ce_op = GraphOperator(torch, torch.cat(rows), torch.cat(cols), N, dev)

    # -- state functions ---------------------------------------------------------------
    def _electrolyte(self, c_e):
        p, torch = self.p, self.torch
        c = c_e.clamp(min=1e-6)
        kap = torch.where(self.elec, self.gk * p.kappa_e(c, p.temperature), 0.0)
        dif = torch.where(self.elec, self.gd * p.d_e(c, p.temperature), 0.0)
        T_e = [harmonic(torch, kap, ax, self.aoh[ax]) for ax in range(3)]
        T_d = [harmonic(torch, dif, ax, self.aoh[ax]) for ax in range(3)]
        lnc = torch.where(self.elec, c.log(), 0.0)
        return kap, dif, T_e, T_d, lnc

    def _faces(self, c_s, c_e, j_ref=None):
        """Per reactive face, for fixed concentrations: the exchange current and the OCP as
        functions of the surface concentration, the film resistance, and the surface
        concentration's dependence on the face current. The faces of all directions form
        one flat list (``self.face_idx`` into arrays stacked over ``self.dirs``) solved in
        one call: on small grids the face solve is bound by the number of tensor
        operations, on large ones by the number of faces.

        The surface concentration is the voxel value plus the surface excess of the face
        flux, ``c_surf = c_P - k j`` (notes/echem.md 5; ``k`` from the diffusion layer
        grown since the current was switched on, :func:`_surface_depth`), and the voxel
        value itself moves with the face's own uptake over the step. Both are implicit in
        the face current, and the exchange current and the OCP are evaluated at that
        surface concentration exactly (``_kinetics.butler_volmer_surface``): lagging the
        surface OCP makes the iteration unstable wherever its resistance exceeds the
        charge-transfer resistance (fine voxels, slow solid diffusion), and linearising it
        about the voxel value made the voltage rise during diffusion-limited discharges."""
        torch, p = self.torch, self.p
        if not self.dirs:
            return None
        ce_all, c_as, slopes = [], [], []
        for d in self.dirs:
            ax, s = d
            m = self.wmask[d]
            ce_all.append(shift(c_e, ax, s).clamp(min=1e-6))
            # c_surf = c_a - slope * j: the face's own uptake over the step (one-voxel
            # Jacobian of the c_s block) and the sub-voxel surface excess
            slope = torch.zeros_like(c_s)
            c_a = c_s
            if self.extrapolate and self._time > 0:
                depth = _surface_depth(p.d_s * self._time, self.h[ax])
                slope = slope + self.w[d] / self.cell.area(ax) * depth / (FARADAY * p.d_s)
            if self._dt > 0:
                # The voxel's own lithium uptake over the step (a one-voxel Jacobian of the
                # c_s block): the fixed point is unchanged, but the block Gauss-Seidel
                # sweeps stay contractive for long steps, where the lagged OCP would
                # oscillate. c_a removes the uptake of the currents that made the iterate.
                uptake = self.w[d] * self._dt / (FARADAY * self.vol)
                slope = slope + uptake
                if j_ref is not None:
                    c_a = c_s + uptake * j_ref[d]
            c_as.append(c_a)
            slopes.append(torch.where(m, slope, 0.0))
        idx = self.face_idx
        ce_n = torch.stack(ce_all).reshape(-1)[idx]

        def i0_of(c, sel):
            return p.exchange_current(ce_n[sel].expand_as(c), c, p.c_s_max, p.temperature)

        return (i0_of, self.film_all, torch.stack(c_as).reshape(-1)[idx],
                torch.stack(slopes).reshape(-1)[idx])

    def _ocp(self, c):
        p = self.p
        return p.ocp((c / p.c_s_max).clamp(1e-6, 1 - 1e-6))

    # -- potentials ----------------------------------------------------------------------
    def _boundary(self, name, phi, V, ele, j_prev):
        """Current into the cell per boundary voxel (A) and its conductance (S)."""
        torch, p = self.torch, self.p
        kind, layer, area = self.bounds[name]
        ext = V if name == "bottom" else 0.0
        if kind == "collector":
            g = 2.0 * self.sig_layers[name] * self.aoh[0]
            g = torch.where(self.solid[layer], g, 0.0)
            return 0, g * (ext - phi[0][layer]), g, None
        kap, dif = ele[0], ele[1]
        k = kap[layer]
        m = self.elec[layer] & (k > 0)
        c_n = self._ce_used[layer].clamp(min=1e-6)
        d = dif[layer]
        jp = j_prev if j_prev is not None else torch.zeros_like(c_n)
        # Concentration on the face from the salt flux over half a voxel (Li+ enters there).
        c_f = c_n + torch.where(d > 0, (1 - p.t_plus) * jp * self.h[0] /
                                (2 * FARADAY * torch.where(d > 0, d, 1.0)), 0.0)
        c_f = c_f.clamp(min=1e-6)
        eta0 = ext - phi[1][layer] - self.nu * torch.log(c_f / c_n)
        res = torch.where(m, self.h[0] / (2.0 * torch.where(m, k, 1.0)), 0.0)
        i0 = p.lithium_exchange_current(c_f, p.temperature)
        j, g, _ = butler_volmer(i0, eta0, res, 0.5, self.f)
        j = torch.where(m, j, 0.0)
        g = torch.where(m, g, 0.0)
        return 1, j * area, g * area, j

    def _residual(self, phi, V, faces, ele):
        torch, p = self.torch, self.p
        kap, dif, T_e, T_d, lnc = ele
        ps, pe = phi[0], phi[1]
        Fs = laplacian(self.T_s, ps)
        Fe = laplacian(T_e, pe)
        Fe -= laplacian([t * self.nu for t in T_e], lnc)
        js, gs, etas = {}, {}, {}
        if self.dirs:
            i0_of, film, c_a, slope = faces
            idx = self.face_idx
            psi = torch.stack([ps - shift(pe, ax, s) for ax, s in self.dirs]).reshape(-1)[idx]
            jf, gf, etaf = butler_volmer_surface(i0_of, self._ocp, c_a, slope, p.c_s_max, psi,
                                                 film, p.alpha, self.f, guess=self._j_guess)
            self._j_guess = jf
            if film is not None:
                etaf = etaf + film * jf  # the film drop counts as overpotential
            shape = (len(self.dirs),) + tuple(ps.shape)
            j, g, eta = (ps.new_zeros(shape).reshape(-1).index_copy(0, idx, v).reshape(shape)
                         for v in (jf, gf, etaf))
            for i, d in enumerate(self.dirs):
                ax, s = d
                wj = self.w[d] * j[i]
                Fs += wj
                Fe -= shift(wj, ax, -s)
                js[d], gs[d], etas[d] = j[i], g[i], eta[i]
        bnd = {}
        for name in ("bottom", "top"):
            field, a_in, g, jface = self._boundary(name, phi, V, ele, self._jb_prev.get(name))
            layer = self.bounds[name][1]
            (Fs if field == 0 else Fe)[layer] -= a_in
            bnd[name] = (field, a_in, g, jface)
        F = torch.stack([Fs, Fe]) * self.pot_mask
        return F, js, gs, etas, bnd

    def _jacobian(self, gs, bnd, T_e):
        """The potentials' Jacobian (SPD resistor network) as CSR, with its diagonal."""
        torch = self.torch
        T_e_full = [_full(torch, t, ax) for ax, t in enumerate(T_e)]
        vals = []
        for kind, key, pi in self.pot_parts:
            if kind == "s":
                vals.append(self.T_s_full[key].reshape(-1)[pi])
            elif kind == "e":
                vals.append(T_e_full[key].reshape(-1)[pi])
            else:
                vals.append((self.w[key] * gs[key]).reshape(-1)[pi])
        # Unknowns outside a field get an identity row scaled like the active rows: SuperLU
        # loses conservation to 1e-5 when unit rows sit beside 1e-7 S conductances.
        scale = [max([float(t.max()) for t in T if t.numel()] + [1e-300]) for T in (self.T_s, T_e)]
        extra = torch.stack([(~self.solid).to(torch.float64) * scale[0],
                             (~self.elec).to(torch.float64) * scale[1]])
        for name, (field, _, g, _) in bnd.items():
            layer = self.bounds[name][1]
            extra[field, layer] += g
        return self.pot_op.assemble(torch.cat(vals), extra.reshape(-1))

    def potentials(self, phi, V, c_s, c_e, j_ref=None, tol=None):
        """Newton solve of the potentials at fixed concentrations; returns the new
        potentials, cell voltage, face currents, overpotentials and boundary currents.

        ``tol``: residual relative to the applied current (default ``self.tol``)."""
        torch = self.torch
        tol = self.tol if tol is None else tol
        self._ce_used = c_e
        ele = self._electrolyte(c_e)
        faces = self._faces(c_s, c_e, j_ref)
        prev = math.inf
        runaway = 0
        for it in range(40):
            F, js, gs, etas, bnd = self._residual(phi, V, faces, ele)
            ib = float(bnd["bottom"][1].sum())
            res = float(F.abs().sum()) + abs(ib + self.current)
            if res <= tol * abs(self.current):
                break
            if res > 0.5 * prev and res <= 1e3 * tol * abs(self.current):
                break  # stagnated at the round-off floor of the residual
            prev = res
            a, diag = self._jacobian(gs, bnd, ele[2])
            lin = LinearSolver(torch, a, diag, self.pot_mask, self.method, self.lin_tol,
                               reuse=self._lin.get("pot"))
            self._lin["pot"] = lin
            field, _, gb, _ = bnd["bottom"]
            ev = torch.zeros_like(F)
            ev[field, self.bounds["bottom"][1]] = gb
            (da, db), n = lin.solve_many([-F, ev])
            self.stats["pcg_iterations"] += n
            self.stats["pcg_solves"] += 2
            self.stats["newton"] += 1
            denom = float((ev * (1.0 - db)).sum())
            dV = (-self.current - ib + float((ev * da).sum())) / denom
            step = da + dV * db
            big = float(step.abs().max())
            lam = 1.0 if big <= 0.3 else 0.3 / big  # damp the first steps of a cold start
            phi = phi + lam * step
            V = V + lam * dV
            # damped steps that keep lowering V below the cutoff: no voltage delivers the
            # current (every face at its diffusion limit), the voltage collapses
            runaway = runaway + 1 if (lam < 1.0 and dV < 0 and self.cutoff is not None
                                      and V < self.cutoff - 0.1) else 0
            if runaway >= 3:
                raise BelowCutoff(f"the voltage runs below {self.cutoff} V")
        else:
            raise StepFailed(f"potential Newton did not converge (residual {res:.3g} of "
                             f"{tol * abs(self.current):.3g})")
        self._jb_prev = {k: v[3] for k, v in bnd.items()}
        return phi, V, js, etas, bnd, ele

    # -- concentrations --------------------------------------------------------------------
    def solve_cs(self, c_n, js, dt):
        torch = self.torch
        mass = self.vol / dt
        mask = self.am.unsqueeze(0)
        key = ("cs", dt)
        cache = self.__dict__.setdefault("_cs_cache", {})
        if key not in cache:
            cache.clear()
            extra = torch.full(self.cell.shape, mass, dtype=torch.float64).reshape(-1)
            a, d = self.cs_op.assemble(self.cs_edges, extra)
            cache[key] = LinearSolver(torch, a, d, mask, self.method, self.lin_tol)
        lin = cache[key]
        src = torch.zeros_like(c_n)
        for d in self.dirs:
            src -= self.w[d] * js[d] / FARADAY
        b = ((mass * c_n + src) * self.am).unsqueeze(0)
        x, n = lin.solve(b, c_n.unsqueeze(0) * mask)
        self.stats["pcg_iterations"] += n
        self.stats["pcg_solves"] += 1
        return x[0]

    def solve_ce(self, c_n, c_lag, js, bnd, dt, ele, damp=True):
        torch, p = self.torch, self.p
        mass = self.eps * self.vol / dt
        mask = self.elec.unsqueeze(0)
        T_d = ele[3]
        vals = torch.cat([_full(torch, T_d[ax], ax).reshape(-1)[pi]
                          for ax, pi in enumerate(self.ce_parts)])
        src = torch.zeros_like(c_n)
        sink = torch.zeros_like(c_n)
        for dd in self.dirs:
            ax, s = dd
            src += shift(self.w[dd] * js[dd], ax, -s)
            if damp:
                # One-voxel Jacobian of the reaction's salt sink: the exchange current goes
                # as c_e^(1/2) (notes/echem.md 1.3), so a consuming face's current changes by
                # j / (2 c_e) per unit c_e. Implicit in c_e, lagged at the iterate the
                # currents were made with, it leaves the fixed point unchanged but keeps the
                # sweeps from oscillating where the salt runs out (seed 002's high currents,
                # seed 001's clogged CBD). The step's last solve is made without it.
                ce_n = shift(c_lag, ax, s).clamp(min=1e-6)
                sink += shift(self.w[dd] * (-js[dd]).clamp(min=0.0) / (2.0 * ce_n), ax, -s)
        sink = (1.0 - p.t_plus) / FARADAY * sink * self.elec
        extra = torch.where(self.elec, mass + sink, self.vol / dt).to(torch.float64).reshape(-1)
        a, d = self.ce_op.assemble(vals, extra)
        for name, (field, a_in, _, _) in bnd.items():
            if field == 1:
                src[self.bounds[name][1]] += a_in
        b = ((mass * c_n + sink * c_lag + (1.0 - p.t_plus) / FARADAY * src) *
             self.elec).unsqueeze(0)
        lin = LinearSolver(torch, a, d, mask, self.method, self.lin_tol, reuse=self._lin.get("ce"))
        self._lin["ce"] = lin
        x, n = lin.solve(b, c_lag.unsqueeze(0) * mask)
        self.stats["pcg_iterations"] += n
        self.stats["pcg_solves"] += 1
        return x[0]

    # -- one time step -----------------------------------------------------------------------
    def step(self, state, dt, max_sweeps=40):
        """Advance ``state`` by ``dt`` seconds; raise StepFailed when it does not converge."""
        p = self.p
        c_s, c_e = state["c_s"], state["c_e"]
        phi, V, j = state["phi"], state["V"], state["j"]
        self._dt = dt
        self._time = state.get("t", 0.0) + dt
        self._jb_prev = dict(state["jb"])
        c_s_new, c_e_new = c_s, c_e
        tight = False
        hist = []
        for sweep in range(1, max_sweeps + 1):
            # j_ref: the currents that made the present c_s iterate (none before sweep 1).
            # The loop j -> c_surf -> i0 -> j is closed per face inside the potentials
            # (butler_volmer_surface): lagged by a step, it alternated from step to step
            # where the surface neared c_max; lagged by a sweep, it kept the sweeps cycling.
            # Inexact Newton while the sweeps still move the concentrations (Dembo,
            # Eisenstat & Steihaug, SIAM J. Numer. Anal. 19 (1982) 400): the next sweep
            # changes the potentials' equations by more than the looser residual. The
            # sweep that ends the step is always solved to full tolerance, so the face
            # currents that feed c_s and c_e conserve charge to ``tol``.
            ntol = self.tol if tight else max(self.tol, self.loose_tol)
            phi, V_new, js, etas, bnd, ele = self.potentials(phi, V, c_s_new, c_e_new,
                                                             j if sweep > 1 else None,
                                                             tol=ntol)
            cs2 = self.solve_cs(c_s, js, dt)
            ce2 = self.solve_ce(c_e, c_e_new, js, bnd, dt, ele)
            change = max(float((cs2 - c_s_new).abs().max()) / p.c_s_max,
                         float((ce2 - c_e_new).abs().max()) / p.c_e_init)
            dv = abs(V_new - V)
            used_cs, used_ce = c_s_new, c_e_new
            c_s_new, c_e_new, V, j = cs2, ce2, V_new, js
            if not (math.isfinite(change) and math.isfinite(V)):
                raise StepFailed("non-finite values")
            if change < self.sweep_tol[0] and dv < self.sweep_tol[1] and sweep > 1 and \
                    ntol == self.tol:
                break
            tight = change < 10 * self.sweep_tol[0] and dv < 10 * self.sweep_tol[1]
            if self.anderson and sweep > 1:
                c_s_new, c_e_new, j = self._accelerate(hist, used_cs, used_ce, cs2, ce2, js)
        else:
            raise StepFailed(f"block Gauss-Seidel did not converge in {max_sweeps} sweeps "
                             f"(change {change:.2g})")
        # The salt balance of the accepted step with exactly the currents that fed c_s.
        c_e_new = self.solve_ce(c_e, used_ce, js, bnd, dt, ele, damp=False)
        if float(c_e_new[self.elec].min()) <= 0:
            raise StepFailed("electrolyte depleted (c_e <= 0)")
        if bool(self.am.any()):
            cs_am = c_s_new[self.am]
            # a voxel may fill up (its exchange current is then zero); beyond c_max by
            # more than the sweeps' tolerance the step was too long
            slack = 10 * self.sweep_tol[0] * p.c_s_max
            if float(cs_am.min()) < -slack or float(cs_am.max()) > p.c_s_max + slack:
                raise StepFailed("active-material concentration left [0, c_max]")
        return {"c_s": c_s_new, "c_e": c_e_new, "phi": phi, "V": V, "j": js, "eta": etas,
                "t": self._time,
                "jb": {k: v[3] for k, v in bnd.items()}, "bnd": bnd, "ele": ele,
                "sweeps": sweep, "c_s_used": used_cs, "c_e_used": used_ce}

    def _accelerate(self, hist, cs_in, ce_in, cs_out, ce_out, js):
        """Anderson acceleration of the block Gauss-Seidel sweeps (Anderson, J. ACM 12
        (1965) 547; the form of Walker & Ni, SIAM J. Numer. Anal. 49 (2011) 1715).

        The sweep maps the concentration iterate (c_s, c_e) to the next; its last
        ``self.anderson`` input/output pairs give the affine combination of outputs
        whose residual is smallest. The face currents, which feed the next sweep's
        one-voxel Jacobian, are combined with the same weights: c_s is affine in them, so
        the combined c_s is the one those combined currents make. The sweep that ends the
        step is not combined: its outputs come from its own currents, which keeps the
        conservation exact.
        """
        torch, p = self.torch, self.p
        x = torch.cat([(cs_in / p.c_s_max).reshape(-1), (ce_in / p.c_e_init).reshape(-1)])
        g = torch.cat([(cs_out / p.c_s_max).reshape(-1), (ce_out / p.c_e_init).reshape(-1)])
        jv = torch.cat([js[d].reshape(-1) for d in self.dirs])
        hist.append((g - x, g, jv))
        del hist[:-(self.anderson + 1)]
        if len(hist) < 2:
            return cs_out, ce_out, js
        f = hist[-1][0]
        dF = torch.stack([b[0] - a[0] for a, b in zip(hist[:-1], hist[1:])], dim=1)
        dG = torch.stack([b[1] - a[1] for a, b in zip(hist[:-1], hist[1:])], dim=1)
        dJ = torch.stack([b[2] - a[2] for a, b in zip(hist[:-1], hist[1:])], dim=1)
        gamma = torch.linalg.lstsq(dF, f.unsqueeze(1), driver="gelsd").solution[:, 0]
        if not bool(torch.isfinite(gamma).all()):
            del hist[:-1]
            return cs_out, ce_out, js
        xn = g - dG @ gamma
        jn = jv - dJ @ gamma
        n = cs_out.numel()
        cs = (xn[:n] * p.c_s_max).reshape(cs_out.shape)
        ce = (xn[n:] * p.c_e_init).reshape(ce_out.shape)
        lo, hi = 1e-6 * p.c_s_max, (1 - 1e-6) * p.c_s_max
        if bool(((cs < lo) & self.am).any()) or bool(((cs > hi) & self.am).any()) or \
                bool(((ce <= 0) & self.elec).any()):
            del hist[:-1]  # extrapolated out of range: restart from the plain sweep
            return cs_out, ce_out, js
        out, k = {}, 0
        for d in self.dirs:
            m = js[d].numel()
            out[d] = jn[k:k + m].reshape(js[d].shape)
            k += m
        return cs, ce, out

    def initial(self, c_s, c_e):
        """Consistent potentials at t = 0+ (the current switched on)."""
        torch, p = self.torch, self.p
        u0 = float(p.ocp(torch.tensor(p.sto_init, dtype=torch.float64)))
        phi = torch.zeros((2,) + self.cell.shape, dtype=torch.float64, device=self.device)
        phi[0] = torch.where(self.solid, u0 if self.cell.top == "lithium" else 0.0, 0.0)
        V = u0 if self.cell.top == "lithium" and self.cell.bottom == "collector" else 0.0
        self._jb_prev = {}
        self._dt = 0.0
        self._time = 0.0
        phi, V, js, etas, bnd, ele = self.potentials(phi, V, c_s, c_e)
        return {"c_s": c_s, "c_e": c_e, "phi": phi, "V": V, "j": js, "eta": etas, "t": 0.0,
                "jb": {k: v[3] for k, v in bnd.items()}, "bnd": bnd, "ele": ele,
                "sweeps": 0, "c_s_used": c_s, "c_e_used": c_e}

    # -- diagnostics -------------------------------------------------------------------------
    def plane_currents(self, state):
        """Current in +z through the bottom face, every internal z-plane and the top face."""
        phi = state["phi"]
        kap, dif, T_e, T_d, lnc = state["ele"]
        ps, pe = phi[0], phi[1]
        z = (self.T_s[0] * (ps[:-1] - ps[1:]) + T_e[0] * (pe[:-1] - pe[1:])
             - self.nu * T_e[0] * (lnc[:-1] - lnc[1:])).sum(dim=(1, 2))
        for d in self.dirs:
            ax, s = d
            if ax != 0:
                continue
            wj = (self.w[d] * state["j"][d]).sum(dim=(1, 2))
            if s > 0:
                z = z + wj[:-1]
            else:
                z = z - wj[1:]
        bottom = float(state["bnd"]["bottom"][1].sum())
        top = float(state["bnd"]["top"][1].sum())
        return np.concatenate([[bottom], z.cpu().numpy(), [-top]])

    def reaction_density(self, state):
        """Reaction current per AM voxel volume [A/m^3] (anodic positive)."""
        out = self.torch.zeros(self.cell.shape, dtype=self.torch.float64, device=self.device)
        for d in self.dirs:
            out += self.w[d] * state["j"][d]
        return out / self.vol

    def mean_overpotential(self, state):
        """Current-weighted mean reaction overpotential [V] over the reactive faces."""
        num = den = 0.0
        for d in self.dirs:
            wj = (self.w[d] * state["j"][d]).abs()
            num += float((wj * state["eta"][d]).sum())
            den += float(wj.sum())
        return num / den if den > 0 else 0.0

    def lithium(self, c_s):
        return float((c_s * self.am).sum()) * self.vol

    def salt(self, c_e):
        return float((c_e * self.eps).sum()) * self.vol


def _surface_depth(dt_diff, h):
    """Surface excess over the voxel mean, as a depth: ``c_surf - c_P = q delta / (F D)``.

    Exact for a constant flux ``q`` into a semi-infinite solid from t = 0 averaged over
    the first voxel (width ``h``): with ``c - c0 = (2 q / F) sqrt(t / D)
    ierfc(x / (2 sqrt(D t)))`` (Carslaw & Jaeger, Conduction of Heat in Solids, 2nd ed.,
    section 2.9) and the integral of ierfc (their Appendix II),
    ``delta = 2 sqrt(D t / pi) - (D t / h) (1 - 4 i2erfc(h / (2 sqrt(D t))))``. It rises as
    ``2 sqrt(D t / pi) - D t / h`` while the diffusion layer is inside the voxel (the mean
    has taken up all the lithium) and tends to ``h / 2``, the half-voxel extrapolation of
    the finite-volume scheme, once the layer has crossed it. ``dt_diff`` is ``D t`` [m^2].
    Extrapolating the surface slope from the voxel mean instead overestimates the surface
    concentration while the layer is thinner than the voxel, by up to a tenth of c_max on
    slow-diffusing NMC at 0.25 um voxels.
    """
    z = h / (2.0 * math.sqrt(dt_diff))
    if z > 30.0:  # i2erfc underflows; the layer is deep inside the voxel
        return 2.0 * math.sqrt(dt_diff / math.pi) - dt_diff / h
    i2erfc = ((1.0 + 2.0 * z * z) * math.erfc(z)
              - 2.0 * z * math.exp(-z * z) / math.sqrt(math.pi)) / 4.0
    return 2.0 * math.sqrt(dt_diff / math.pi) - dt_diff / h * (1.0 - 4.0 * i2erfc)


def _full(torch, t, ax):
    """A face array (n - 1 along ``ax``) padded to the grid: the value sits on the lower voxel."""
    pad = [0, 0, 0, 0, 0, 0]
    pad[2 * (2 - ax) + 1] = 1
    return torch.nn.functional.pad(t, pad)




def clock():
    return time.perf_counter()
