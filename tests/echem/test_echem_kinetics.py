"""The per-face kinetics with the surface concentration implicit in the face current."""

import numpy as np
import pytest
from scipy.optimize import brentq

torch = pytest.importorskip("torch")

from electromicro_dask.echem import chen2020  # noqa: E402
from electromicro_dask.echem._kinetics import butler_volmer_surface  # noqa: E402


@pytest.mark.parametrize("near_full", [False, True])
def test_surface_kinetics_match_a_scalar_root_finder(near_full):
    # j = i0(c) B(psi - U(c) - R j) with c = c_a - m j per face, against scipy's brentq on
    # each face; the surface stays in [0, c_max] even where the root sits at the
    # square-root singularity of a filling surface (near_full: m up to 3000, the
    # half-voxel extrapolation of 2 um voxels at D_s = 4e-15 m^2/s), and the OCP is taken
    # at the surface, however far it is from the voxel value.
    p = chen2020()
    f = 96485.33212 / (8.314462618 * 298.15)
    rng = np.random.default_rng(3)
    n = 300
    if near_full:
        c_a = p.c_s_max * (1 - rng.random(n) ** 4 * 0.1)
        m, eta0 = rng.random(n) * 3000, -rng.random(n) * 0.4
    else:
        c_a = p.c_s_max * (0.05 + 0.9 * rng.random(n))
        m, eta0 = rng.random(n) * 50, rng.uniform(-0.1, 0.1, n)
    res = rng.random(n) * 1e-3
    ce = np.full(n, 1000.0)

    def ocp(c):
        return p.ocp(torch.as_tensor(c / p.c_s_max, dtype=torch.float64).clamp(1e-6, 1 - 1e-6))

    psi = eta0 + ocp(c_a).numpy()  # eta0: the overpotential at zero current
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in
         dict(c_a=c_a, m=m, psi=psi, res=res, ce=ce).items()}

    def i0_of(c, sel):
        return p.exchange_current(t["ce"][sel].expand_as(c), c, p.c_s_max, 298.15)

    j, g, eta = butler_volmer_surface(i0_of, ocp, t["c_a"], t["m"], p.c_s_max, t["psi"],
                                      t["res"], p.alpha, f)
    j = j.numpy()

    def i0(c):
        return 3.42e-6 * np.sqrt(max(1000.0 * c * (p.c_s_max - c), 0.0))

    scale = np.abs(j).max()
    for k in range(n):
        def r(x):
            c = min(max(c_a[k] - m[k] * x, 0.0), p.c_s_max)
            e = psi[k] - float(ocp(c)) - res[k] * x
            return x - i0(c) * (np.exp(0.5 * f * e) - np.exp(-0.5 * f * e))

        lo, hi = (-(p.c_s_max - c_a[k]) / m[k], 0.0) if eta0[k] < 0 else (0.0, c_a[k] / m[k])
        lo, hi = max(lo, -abs(eta0[k]) / res[k]), min(hi, abs(eta0[k]) / res[k])
        ref = brentq(r, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=500)
        assert j[k] == pytest.approx(ref, abs=1e-6 * scale)
    c = c_a - m * j
    assert c.min() >= 0.0 and c.max() <= p.c_s_max
    assert np.allclose(eta.numpy(), psi - ocp(c).numpy() - res * j)
    # dj/dpsi against a finite difference where the root is not at the singularity
    j2 = butler_volmer_surface(i0_of, ocp, t["c_a"], t["m"], p.c_s_max, t["psi"] + 1e-7,
                               t["res"], p.alpha, f)[0].numpy()
    fd = (j2 - j) / 1e-7
    smooth = (p.c_s_max - c) > 1e-3 * p.c_s_max
    assert smooth.sum() >= 40
    np.testing.assert_allclose(g.numpy()[smooth], fd[smooth], rtol=1e-3,
                               atol=1e-6 * np.abs(fd).max())
