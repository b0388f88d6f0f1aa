"""Single-component Shan-Chen lattice Boltzmann (D3Q19) for liquid-vapour flow with wetting walls.

The kernel behind :func:`electromicro_dask.transport.wetting`, kept apart so its physics can
be checked on its own (Laplace law, contact angle, Jurin height, Lucas-Washburn rise).

Model: one population set on the D3Q19 lattice with BGK collision, ``tau = 1``. The
inter-particle force of Shan & Chen (Phys. Rev. E 47 (1993) 1815; 49 (1994) 2941),
``F(x) = -G psi(x) sum_i w_i psi(x + c_i) c_i`` with ``psi = 1 - exp(-rho)``, separates a
liquid and its vapour; it enters by the velocity shift ``u_eq = u + tau F / rho``. With the
equilibrium weights ``w_i`` the equation of state is ``p = rho / 3 + G psi^2 / 6``. At
``G = -5.5`` the liquid/vapour density ratio is about 22, so with one relaxation time the
dynamic viscosity ratio is 22 too (the vapour is the less viscous fluid, as a gas is).
Walls are half-way bounce-back; their wettability is set by the "virtual density" of the
solid nodes entering the force sum (Benzi et al., Phys. Rev. E 74 (2006) 021509): a solid
node with ``rho_w`` near the liquid density is wetted (contact angle near 0), near the
vapour density it is not (near 180 deg). The contact angle a given ``rho_w`` produces was
measured with sessile drops (:data:`ANGLE_TABLE`).

Everything here is in lattice units (voxel, step); :mod:`.wetting` converts.
"""

from __future__ import annotations

import functools

import numpy as np

from ._common import _torch
from ._d3q19 import C as _C
from ._d3q19 import OPP as _OPP
from ._d3q19 import W as _W

__all__ = []

#: Interaction strength (lattice units, equilibrium-weight convention).
G = -5.5
#: Relaxation time; kinematic viscosity ``(TAU - 1/2) / 3`` of both phases.
TAU = 1.0
#: Liquid-vapour surface tension in lattice units, from the Laplace law on 2D drops of
#: radius 10, 14 and 20 voxels in a periodic 64 x 64 box (0.0944, 0.0952, 0.0953);
#: tests/transport/test_transport_wetting.py measures it again.
SIGMA = 0.0951
#: Contact angle [deg] against the wall's virtual density, from 2D sessile drops (initial
#: radius 20 voxels, 12000 steps, circle fitted to the interface away from the wall):
#: ``python benchmarks/bench_wetting.py --angles`` measures the table again.
ANGLE_TABLE = (
    (0.4, 133.5), (0.8, 84.7), (1.0, 68.3), (1.2, 55.0), (1.4, 43.6), (1.6, 33.4),
    (1.8, 23.6),
)


def bytes_per_voxel(itemsize):
    """Bytes per voxel of a run: populations and post-collision copy (2 x 19 values), the
    streaming and neighbour index tables (37 int64) and a few fields."""
    return 2 * 19 * itemsize + 37 * 8 + 12 * itemsize


def pressure(rho):
    """Equation of state ``p = rho / 3 + G psi(rho)^2 / 6`` (lattice units)."""
    rho = np.asarray(rho, dtype=float)
    return rho / 3.0 + G * (1.0 - np.exp(-rho)) ** 2 / 6.0


def wall_density(contact_angle):
    """Virtual wall density giving ``contact_angle`` [deg], interpolated in :data:`ANGLE_TABLE`."""
    rw, th = np.array(ANGLE_TABLE, dtype=float).T
    order = np.argsort(th)
    return float(np.interp(contact_angle, th[order], rw[order]))


def angle_range():
    th = [a for _, a in ANGLE_TABLE]
    return min(th), max(th)


@functools.lru_cache(maxsize=None)
def coexistence():
    """Liquid and vapour densities of a flat interface at rest (1D run, lattice units)."""
    z = np.arange(64)
    rho = 0.1 + 2.2 * 0.5 * (np.tanh((z - 16) / 2.0) - np.tanh((z - 48) / 2.0))
    out = run(np.zeros((64, 1, 1), bool), rho[:, None, None], 0.0, steps=4000,
              device="cpu", dtype="float64")
    col = out[:, 0, 0]
    return float(col[32]), float(col[0])


def _tables(solid):
    """Gather indices: populations after streaming with half-way bounce-back, and the
    18 neighbours of every node (periodic along every axis)."""
    shape, n = solid.shape, solid.size
    lin = np.arange(n).reshape(shape)
    sol = solid.ravel()
    src = np.empty((19, n), np.int64)
    nbr = np.empty((18, n), np.int64)
    for i in range(19):
        up = np.roll(lin, shift=tuple(_C[i]), axis=(0, 1, 2)).ravel()   # x - c_i
        # A population that would come from a solid node is the node's own opposite one,
        # reflected half-way (the wall lies midway between the fluid and solid nodes).
        src[i] = np.where(sol[up], _OPP[i] * n + lin.ravel(), i * n + up)
        if i:
            nbr[i - 1] = np.roll(lin, shift=tuple(-_C[i]), axis=(0, 1, 2)).ravel()
    return src.ravel(), nbr


def run(solid, rho, rho_wall, steps, gravity=0.0, fixed=(), device="cpu", dtype="float64",
        every=0, callback=None):
    """Run the model; returns the density field (numpy, shape of ``solid``).

    Parameters
    ----------
    solid : ndarray of bool, (n0, n1, n2)
    rho : ndarray
        Initial density (ignored at solid nodes).
    rho_wall : float or ndarray
        Virtual density of the solid nodes (one value, or one per node).
    steps : int
    gravity : float
        Body-force acceleration along ``-axis 0`` (lattice units).
    fixed : sequence of (int, float)
        Layers ``k`` along axis 0 held at rest at the given density (reservoirs).
    every, callback
        ``callback(step, rho_tensor)`` every ``every`` steps; a true return stops the run.
    """
    torch = _torch()
    dev = torch.device(device)
    dt = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    shape, n = solid.shape, solid.size
    src, nbr = _tables(solid)
    src = torch.as_tensor(src, device=dev)
    nbr = torch.as_tensor(nbr, device=dev)
    c = torch.as_tensor(_C, dtype=dt, device=dev)
    w = torch.as_tensor(_W, dtype=dt, device=dev).view(19, 1)
    wc = torch.as_tensor((_W[1:, None] * _C[1:]).T.copy(), dtype=dt, device=dev)   # (3, 18)
    sol = torch.as_tensor(solid.ravel(), device=dev)
    fluid = (~sol).to(dt)
    rw = torch.as_tensor(np.broadcast_to(np.asarray(rho_wall, float), shape).ravel().copy(),
                         dtype=dt, device=dev)
    psi_wall = 1.0 - torch.exp(-rw)
    body = torch.zeros(3, 1, dtype=dt, device=dev)
    body[0, 0] = -gravity
    layer = int(np.prod(shape[1:]))
    fixed_eq = [(int(k) * layer, (int(k) + 1) * layer,
                 w * float(r)) for k, r in fixed]

    def equilibrium(r, u):
        cu = c @ u
        return w * r * (1.0 + 3.0 * cu + 4.5 * cu * cu - 1.5 * (u * u).sum(0))

    r0 = torch.as_tensor(np.ascontiguousarray(rho).ravel(), dtype=dt, device=dev) * fluid
    f = equilibrium(r0, torch.zeros(3, n, dtype=dt, device=dev))
    inv_tau = 1.0 / TAU
    with torch.no_grad():
        for step in range(1, steps + 1):
            r = f.sum(0)
            # psi of a (transiently) negative density would push it further down
            psi = torch.where(sol, psi_wall, 1.0 - torch.exp(-r.clamp_min(0.0)))
            force = (wc @ psi[nbr]).mul_(-G * psi)
            if gravity:
                force.addcmul_(body, r.unsqueeze(0))
            u = (c.t() @ f).add_(force, alpha=TAU).div_(r.clamp_min(1e-12))
            f.add_(equilibrium(r, u).sub_(f), alpha=inv_tau).mul_(fluid)
            f = f.reshape(-1)[src].view(19, n)
            for a, b, feq in fixed_eq:
                f[:, a:b] = feq
            if every and step % every == 0 and callback is not None:
                if callback(step, f.sum(0)):
                    break
    return f.sum(0).to(torch.float64).cpu().numpy().reshape(shape)


# --- Set-ups with known answers (tests and benchmarks/bench_wetting.py) -------------------

def _interface_height(col, mid):
    """Height of the first liquid-to-gas crossing of ``mid`` going up a column."""
    k = np.nonzero((col[1:-1] >= mid) & (col[2:] < mid))[0]
    if k.size == 0:
        return np.nan
    k = k[0] + 1
    return k + (col[k] - mid) / (col[k] - col[k + 1])


def _fit_circle(points):
    z, x = points[:, 0], points[:, 1]
    a = np.c_[2 * z, 2 * x, np.ones_like(z)]
    (zc, xc, c), *_ = np.linalg.lstsq(a, z * z + x * x, rcond=None)
    return zc, xc, float(np.sqrt(c + zc * zc + xc * xc))


def laplace_drop(radius, box=64, steps=6000, dtype="float64"):
    """A 2D drop in a periodic box: returns (equimolar radius, pressure jump)."""
    rho_l, rho_v = coexistence()
    z, x = np.mgrid[:box, :box]
    d = np.hypot(z - box / 2, x - box / 2)
    rho = rho_v + (rho_l - rho_v) * 0.5 * (1 - np.tanh((d - radius) / 2.0))
    out = run(np.zeros((box, 1, box), bool), rho[:, None, :], 0.0, steps, dtype=dtype)[:, 0]
    inside, outside = out[box // 2, box // 2], out[0, 0]
    area = (out - outside).sum() / (inside - outside)
    return float(np.sqrt(area / np.pi)), float(pressure(inside) - pressure(outside))


def sessile_angle(rho_wall, radius=20, height=60, width=240, steps=12000):
    """Contact angle [deg] of a 2D drop resting on a wall of virtual density ``rho_wall``:
    a circle fitted to the interface more than 3 voxels above the wall (the wall plane lies
    half a voxel above the wall nodes, half-way bounce-back)."""
    from skimage.measure import find_contours

    rho_l, rho_v = coexistence()
    solid = np.zeros((height, 1, width), bool)
    solid[0] = solid[-1] = True
    z, x = np.mgrid[:height, :width]
    d = np.hypot(z - 1, x - width / 2)
    rho = rho_v + (rho_l - rho_v) * 0.5 * (1 - np.tanh((d - radius) / 2.0))
    out = run(solid, rho[:, None, :], rho_wall, steps)[:, 0]
    pts = np.concatenate(find_contours(out, 0.5 * (rho_l + rho_v)))
    zc, _, r = _fit_circle(pts[pts[:, 0] >= 4])
    return float(np.degrees(np.arccos(np.clip((0.5 - zc) / r, -1, 1))))


def capillary_rise(width, reservoir, rho_wall, gravity, steps, length=None, height=80,
                   every=100, stop_below_top=None):
    """Liquid rising between two plates dipped into a reservoir (2D, periodic sideways).

    The plates (2 voxels thick, ``width`` fluid voxels apart) hang from ``height - 10``
    down to 15 voxels above the bottom; the reservoir is ``reservoir`` voxels wide between
    the plates' outer faces; the liquid starts level at 25 voxels. Returns
    ``(steps, slit_height, reservoir_height, density)``: the interface heights [voxels] at
    the slit's and the reservoir's centre lines, every ``every`` steps.
    """
    rho_l, rho_v = coexistence()
    mid = 0.5 * (rho_l + rho_v)
    nx = width + reservoir + 4
    solid = np.zeros((height, 1, nx), bool)
    solid[0] = solid[-1] = True
    p = reservoir // 2
    top = height - 10 if length is None else 15 + length
    solid[15:top, 0, p:p + 2] = True
    solid[15:top, 0, p + 2 + width:p + 4 + width] = True
    c = p + 2 + width // 2
    slit_cols = [c - 1, c] if width % 2 == 0 else [c]
    res_cols = [0, nx - 1] if reservoir % 2 == 0 else [0]
    z = np.arange(height)
    rho = (rho_v + (rho_l - rho_v) * 0.5 * (1 - np.tanh((z - 25) / 2.0)))[:, None, None]
    rho = rho * np.ones((1, 1, nx))
    rec = []

    def record(step, r):
        r = r.reshape(height, nx).cpu().numpy()
        hs = _interface_height(r[:, slit_cols].mean(1), mid)
        rec.append((step, hs, _interface_height(r[:, res_cols].mean(1), mid)))
        return stop_below_top is not None and hs > top - stop_below_top

    out = run(solid, rho, rho_wall, steps, gravity=gravity, every=every, callback=record)
    t, hs, hr = (np.asarray(v) for v in zip(*rec))
    return t, hs, hr, out[:, 0]
