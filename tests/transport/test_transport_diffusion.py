"""Tortuosity factor and effective conductivity: analytical cases and TauFactor."""

import math

import numpy as np
import pytest

from electromicro_dask.core import as_segmentation
from electromicro_dask.errors import InputError
from electromicro_dask.transport import effective_conductivity, tortuosity_factor

PORE_AM = {0: "am", 1: "pore"}


def _spheres(shape, porosity, radii, seed):
    """Overlapping solid ellipsoids placed at random until the porosity is reached."""
    rng = np.random.default_rng(seed)
    solid = np.zeros(shape, bool)
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    while 1 - solid.mean() > porosity:
        c = rng.uniform(0, 1, 3) * np.array(shape)
        solid |= sum(((g - ci) / r) ** 2 for g, ci, r in zip(grids, c, radii)) <= 1.0
    return (~solid).astype(np.uint8)


def _taufactor(img, spacing=None, periodic=False):
    tf = pytest.importorskip("taufactor")
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # small volumes: a thread pool only adds sync cost
    try:
        return _taufactor_solve(tf, img, spacing, periodic)
    finally:
        torch.set_num_threads(threads)


def _taufactor_solve(tf, img, spacing, periodic):
    if spacing is not None:
        s = tf.AnisotropicSolver(img, spacing=spacing, device="cpu")
    elif periodic:
        s = tf.PeriodicSolver(img, device="cpu")
    else:
        s = tf.Solver(img, device="cpu")
    # Tighter than TauFactor's default (1e-2 flux spread) so the reference is within 0.1 %.
    s.solve(verbose=False, conv_crit=1e-3, iter_limit=40000)
    return float(np.ravel(s.tau)[0])


@pytest.mark.parametrize("axis", ["z", "y", "x"])
def test_straight_channels_have_tau_one(axis):
    a = np.zeros((12, 10, 14), "uint8")
    sl = [slice(3, 7), slice(2, 6), slice(4, 9)]
    sl[("z", "y", "x").index(axis)] = slice(None)
    a[tuple(sl)] = 1
    seg = as_segmentation(a, phases=PORE_AM, voxel_size=(0.3, 0.5, 0.7))
    r = tortuosity_factor(seg, axis=axis, device="cpu", tol=1e-10, dtype="float64")
    assert r.converged and r.message == ""
    assert r.tau == pytest.approx(1.0, abs=1e-6)
    assert r.eps == pytest.approx(a.mean())
    assert r.d_eff == pytest.approx(a.mean(), rel=1e-6)
    assert r.flux_spread < 1e-8
    assert r.device == "cpu" and r.axis == axis


def test_layered_medium_arithmetic_parallel_harmonic_across():
    # Layers normal to z: thickness (in voxels) and conductivity per phase.
    a = np.zeros((12, 6, 5), "uint8")
    a[3:5] = 1
    a[5:10] = 2
    table = {0: "pore", 1: "cbd", 2: "am"}
    seg = as_segmentation(a, phases=table, voxel_size=(0.25, 0.4, 0.4))
    cond = {"pore": 1.0, "cbd": 0.1, "am": 3.0}
    frac = np.array([5 / 12, 2 / 12, 5 / 12])
    s = np.array([1.0, 0.1, 3.0])
    across = effective_conductivity(seg, cond, axis="z", device="cpu", tol=1e-9,
                                    dtype="float64")
    assert across.sigma_eff == pytest.approx(1.0 / (frac / s).sum(), rel=1e-6)
    assert across.sigma_mean == pytest.approx((frac * s).sum())
    assert across.tau == pytest.approx((frac * s).sum() * (frac / s).sum(), rel=1e-6)
    for axis in ("y", "x"):
        along = effective_conductivity(seg, cond, axis=axis, device="cpu", tol=1e-9,
                                       dtype="float64")
        assert along.sigma_eff == pytest.approx((frac * s).sum(), rel=1e-6)
        assert along.tau == pytest.approx(1.0, rel=1e-6)


def test_phase_list_and_unnamed_phases_do_not_conduct():
    a = np.zeros((10, 8, 8), "uint8")
    a[:, :, :3] = 1
    a[:, :, 3:5] = 2
    seg = as_segmentation(a, phases={0: "am", 1: "pore", 2: "cbd"}, voxel_size=1.0)
    r = tortuosity_factor(seg, phase=["pore", "cbd"], axis="z", device="cpu")
    assert r.tau == pytest.approx(1.0, abs=1e-5) and r.eps == pytest.approx(5 / 8)
    c = effective_conductivity(seg, {"pore": 2.0}, axis="z", device="cpu")
    assert c.sigma_eff == pytest.approx(2.0 * 3 / 8, rel=1e-5)


@pytest.mark.parametrize("porosity,seed", [(0.3, 1), (0.45, 2), (0.6, 3)])
def test_sphere_packs_agree_with_taufactor(porosity, seed):
    img = _spheres((48, 48, 48), porosity, (4.0, 4.0, 4.0), seed)
    seg = as_segmentation(img, phases=PORE_AM, voxel_size=0.5)
    r = tortuosity_factor(seg, axis="z", device="cpu")
    ref = _taufactor(img)
    assert r.converged
    assert r.tau == pytest.approx(ref, rel=0.01)
    assert r.flux_spread < 1e-3
    assert r.eps == pytest.approx(img.mean())


def test_anisotropic_structure_and_voxels_agree_with_taufactor():
    # Solid ellipsoids elongated along x, non-cubic (FIB-SEM-like) voxels. TauFactor's
    # AnisotropicSolver drops the flux of voxels whose weighted neighbour count exceeds 8
    # (its non-conducting marker), so its answer is right only when the flow axis has the
    # smallest voxel size: each direction is compared on such a grid.
    img = _spheres((32, 40, 40), 0.45, (3.0, 3.0, 8.0), seed=4)
    taus = {}
    for axis, spacing in (("z", (0.2, 0.25, 0.25)), ("x", (0.25, 0.25, 0.2))):
        seg = as_segmentation(img, phases=PORE_AM, voxel_size=spacing)
        r = tortuosity_factor(seg, axis=axis, device="cpu")
        k = ("z", "y", "x").index(axis)
        order = [k] + [i for i in range(3) if i != k]
        ref = _taufactor(np.ascontiguousarray(img.transpose(order)),
                         spacing=tuple(spacing[i] for i in order))
        assert r.tau == pytest.approx(ref, rel=0.01), axis
        taus[axis] = r.tau
    # Flow across the elongated grains is more tortuous than along them.
    assert taus["z"] > 1.5 * taus["x"]


def test_periodic_side_faces_agree_with_taufactor():
    img = _spheres((32, 32, 32), 0.4, (4.0, 4.0, 4.0), seed=5)
    seg = as_segmentation(img, phases=PORE_AM, voxel_size=1.0)
    r = tortuosity_factor(seg, axis="z", device="cpu", periodic=True)
    assert r.tau == pytest.approx(_taufactor(img, periodic=True), rel=0.01)


def test_multiphase_matches_direct_sparse_solve():
    """Same finite-volume equations assembled as a sparse matrix, solved by SuperLU."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    rng = np.random.default_rng(7)
    a = rng.integers(0, 3, (10, 9, 8)).astype("uint8")
    cond = {"pore": 1.0, "cbd": 0.25, "am": 0.0}
    seg = as_segmentation(a, phases={0: "pore", 1: "cbd", 2: "am"}, voxel_size=(0.5, 0.4, 0.3))
    r = effective_conductivity(seg, cond, axis="y", device="cpu", tol=1e-10, dtype="float64")
    s = np.array([1.0, 0.25, 0.0])[a].transpose(1, 0, 2)       # flow axis first
    h = (0.4, 0.5, 0.3)
    n = s.size
    idx = np.arange(n).reshape(s.shape)
    rows, cols, vals = [], [], []
    diag = np.zeros(n)
    rhs = np.zeros(n)
    for ax in range(3):
        aoh = np.prod([h[i] for i in range(3) if i != ax]) / h[ax]
        lo = np.take(s, range(s.shape[ax] - 1), axis=ax)
        hi = np.take(s, range(1, s.shape[ax]), axis=ax)
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.nan_to_num(2 * lo * hi / (lo + hi)) * aoh
        i = np.take(idx, range(s.shape[ax] - 1), axis=ax).ravel()
        j = np.take(idx, range(1, s.shape[ax]), axis=ax).ravel()
        rows += [i, j]
        cols += [j, i]
        vals += [-g.ravel(), -g.ravel()]
        np.add.at(diag, i, g.ravel())
        np.add.at(diag, j, g.ravel())
    aoh0 = h[1] * h[2] / h[0]
    np.add.at(diag, idx[0].ravel(), 2 * s[0].ravel() * aoh0)
    np.add.at(diag, idx[-1].ravel(), 2 * s[-1].ravel() * aoh0)
    rhs[idx[0].ravel()] = 2 * s[0].ravel() * aoh0
    diag[diag == 0] = 1.0
    m = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, n)).tocsr() + sp.diags(diag)
    x = spsolve(m.tocsc(), rhs).reshape(s.shape)
    current = (2 * s[0] * aoh0 * (1 - x[0])).sum()
    sigma_eff = current * s.shape[0] * h[0] / (s.shape[1] * h[1] * s.shape[2] * h[2])
    # Isolated cells are floating in the direct solve but carry no current either way.
    assert r.sigma_eff == pytest.approx(sigma_eff, rel=1e-6)


def test_float32_and_float64_agree():
    img = _spheres((32, 32, 32), 0.4, (3.0, 3.0, 3.0), seed=8)
    seg = as_segmentation(img, phases=PORE_AM, voxel_size=1.0)
    r32 = tortuosity_factor(seg, axis="y", device="cpu", dtype="float32")
    r64 = tortuosity_factor(seg, axis="y", device="cpu", dtype="float64", tol=1e-9)
    assert r32.tau == pytest.approx(r64.tau, rel=1e-4)


def test_pockets_excluded_and_reported():
    a = np.zeros((10, 10, 10), "uint8")
    a[:, 0:3, 0:3] = 1          # through channel
    a[4:6, 6:8, 6:8] = 1        # isolated pocket
    a[0:3, 6:8, 0:2] = 1        # dead end touching the inlet only
    seg = as_segmentation(a, phases=PORE_AM, voxel_size=1.0)
    r = tortuosity_factor(seg, axis="z", device="cpu", return_field=True)
    assert r.n_pockets_excluded == 2
    assert r.eps == pytest.approx(a.mean())
    assert r.eps_percolating == pytest.approx(0.09)
    assert r.d_eff == pytest.approx(0.09, rel=1e-5)
    assert r.tau == pytest.approx(a.mean() / 0.09, rel=1e-5)
    assert "2 cluster(s)" in r.message
    assert r.field.dims == seg.dims and float(r.field[5, 5, 5]) == 0.0
    np.testing.assert_allclose(r.field.values[:, 1, 1], 1 - (np.arange(10) + 0.5) / 10,
                               atol=1e-5)


def test_non_percolating_phase_gives_inf_with_message():
    a = np.zeros((12, 8, 8), "uint8")
    a[:5] = 1
    a[7:] = 1
    seg = as_segmentation(a, phases=PORE_AM, voxel_size=1.0)
    r = tortuosity_factor(seg, axis="z", device="cpu")
    assert math.isinf(r.tau) and r.d_eff == 0.0
    assert "does not percolate" in r.message
    assert r.converged and r.iterations == 0
    # Along y the same layers do percolate.
    assert tortuosity_factor(seg, axis="y", device="cpu").tau == pytest.approx(1.0, abs=1e-5)
    c = effective_conductivity(seg, {"pore": 1.0}, axis="z", device="cpu")
    assert c.sigma_eff == 0.0 and math.isinf(c.tau) and "no conducting path" in c.message


def test_max_iter_reached_reports_not_converged():
    img = _spheres((24, 24, 24), 0.4, (3.0, 3.0, 3.0), seed=9)
    seg = as_segmentation(img, phases=PORE_AM, voxel_size=1.0)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        r = tortuosity_factor(seg, axis="z", device="cpu", max_iter=3)
    assert not r.converged and r.iterations == 3
    assert "did not converge in 3 iterations" in r.message
    assert np.isfinite(r.tau)


def test_two_dimensional_segmentation():
    a = np.zeros((20, 10), "uint8")
    a[:, 3:6] = 1
    seg = as_segmentation(a, phases=PORE_AM, voxel_size=(0.5, 0.25))
    assert tortuosity_factor(seg, axis="y", device="cpu").tau == pytest.approx(1.0, abs=1e-6)


def test_bad_input_is_rejected():
    a = np.zeros((8, 8, 8), "uint8")
    a[:, :, :4] = 1
    seg = as_segmentation(a, phases={0: "am", 1: "pore", 2: "cbd"}, voxel_size=1.0)
    with pytest.raises(InputError, match="phase"):
        tortuosity_factor(seg, phase="cbd", device="cpu")          # empty phase
    with pytest.raises(InputError, match="phase"):
        tortuosity_factor(seg, phase="graphite", device="cpu")
    with pytest.raises(InputError, match="axis"):
        tortuosity_factor(seg, axis="t", device="cpu")
    with pytest.raises(InputError, match="device"):
        tortuosity_factor(seg, device="tpu")
    with pytest.raises(InputError, match="max_memory_gib"):
        tortuosity_factor(seg, device="cpu", max_memory_gib=1e-6)
    with pytest.raises(InputError, match="conductivities"):
        effective_conductivity(seg, {"pore": 1.0, "am": -0.5}, device="cpu")
    with pytest.raises(InputError, match="conductivities"):
        effective_conductivity(seg, {"pore": 0.0}, device="cpu")
    with pytest.raises(InputError, match="conductivities"):
        effective_conductivity(seg, {"sei": 1.0}, device="cpu")
    with pytest.raises(InputError, match="tol"):
        tortuosity_factor(seg, tol=0, device="cpu")


def test_multigrid_and_jacobi_preconditioners_agree():
    img = _spheres((40, 36, 44), 0.35, (3.0, 3.0, 3.0), seed=10)
    seg = as_segmentation(img, phases=PORE_AM, voxel_size=(0.4, 0.5, 0.5))
    mg = tortuosity_factor(seg, axis="x", device="cpu", periodic=True)
    jac = tortuosity_factor(seg, axis="x", device="cpu", periodic=True,
                            preconditioner="jacobi")
    assert mg.converged and jac.converged
    assert mg.tau == pytest.approx(jac.tau, rel=1e-4)
    assert mg.iterations < jac.iterations / 5
    with pytest.raises(InputError, match="preconditioner"):
        tortuosity_factor(seg, device="cpu", preconditioner="ilu")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU path")
def test_cuda_request_without_gpu_is_a_clear_error():
    seg = as_segmentation(np.ones((4, 4, 4), "uint8"), phases=PORE_AM, voxel_size=1.0)
    with pytest.raises(InputError, match="device"):
        tortuosity_factor(seg, device="cuda")
    assert tortuosity_factor(seg, device="auto").device == "cpu"
