"""Electrolyte wetting (two-phase lattice Boltzmann): the model's physics against analytical
laws, and the public function on a synthetic electrode.

Jurin's equilibrium height and the contact-angle table are measured by
``benchmarks/bench_wetting.py`` (runs of minutes); here the cheaper checks run.
"""

import numpy as np
import pytest

from electromicro_dask import synth
from electromicro_dask.core import as_segmentation
from electromicro_dask.core.errors import ConvergenceError, InputError
from electromicro_dask.transport import _shan_chen as sc
from electromicro_dask.transport import wetting

pytest.importorskip("torch")


def test_laplace_law_gives_the_models_surface_tension():
    # 2D Laplace law dp = sigma / R: two drop sizes, one surface tension, the one the
    # time conversion uses.
    r1, dp1 = sc.laplace_drop(10, box=48, steps=4000)
    r2, dp2 = sc.laplace_drop(15, box=48, steps=4000)
    assert dp1 > dp2 > 0
    s1, s2 = dp1 * r1, dp2 * r2
    assert abs(s1 - s2) / s2 < 0.02
    assert abs(s2 - sc.SIGMA) / sc.SIGMA < 0.02


def test_coexistence_densities_have_equal_pressure():
    rho_l, rho_v = sc.coexistence()
    assert 15 < rho_l / rho_v < 30
    # a flat interface carries no pressure jump (mechanical equilibrium)
    assert abs(sc.pressure(rho_l) - sc.pressure(rho_v)) < 1e-4


def test_capillary_rise_follows_lucas_washburn():
    # Without gravity the liquid column L in a slit of width w grows as
    #   (mu_l - mu_g) L^2 / 2 + mu_g H L = (w sigma cos(theta) / 6) t + const
    # (Washburn's law for one fluid displacing another through a slit of length H; with
    # the gas 22 times less viscous it is the square-root law L^2 ~ t). Checked without the
    # prefactor: the time to go from 40 to 80 voxels against the time from 40 to 60, which
    # Washburn's law puts at 2.36 and a constant speed at 2. (Below 40 voxels the column
    # moves fast enough, capillary number ~0.04, for the dynamic contact angle to slow it
    # measurably; the prefactor is about 15 % above w sigma cos(theta) / 6, see
    # benchmarks/results/wetting.md.)
    rho_l, rho_v = sc.coexistence()
    nu = (sc.TAU - 0.5) / 3.0
    mu_l, mu_g = rho_l * nu, rho_v * nu
    height, length = 130, 105
    t, hs, _, _ = sc.capillary_rise(10, 40, sc.wall_density(45.0), gravity=0.0, steps=20000,
                                    height=height, every=50, stop_below_top=18)
    col = hs - 14.5                      # the plates' lower edges lie at 14.5
    assert np.all(np.diff(col) > -0.05)  # it only rises

    def phi(L):
        return (mu_l - mu_g) * L ** 2 / 2 + mu_g * length * L

    assert col.max() > 82
    t40, t60, t80 = (np.interp(L, col, t) for L in (40.0, 60.0, 80.0))
    expected = (phi(80) - phi(40)) / (phi(60) - phi(40))
    assert abs((t80 - t40) / (t60 - t40) - expected) / expected < 0.05
    # and Washburn's form fits the whole early stage
    m = (col > 40) & (col < 80)
    fit = np.polyfit(t[m], phi(col[m]), 1)
    resid = phi(col[m]) - np.polyval(fit, t[m])
    assert 1 - resid.var() / phi(col[m]).var() > 0.999


def _electrode(shape=(16, 24, 24), seed=2):
    ds = synth.pfib_electrode(shape, (0.1, 0.1, 0.1), particle_radius_um=(0.8, 0.15),
                              seed=seed, chunks=shape)
    return ds["phases"]


def test_wetting_fills_an_electrode_from_the_separator():
    seg = _electrode()
    r = wetting(seg, phase=["pore", "crack"], contact_angle=30, device="cpu", max_steps=3000,
                record_every=25)
    h = r.history
    frac = h["wetted_fraction"].values
    assert frac[0] == 0 and r.wetted_fraction > 0.8
    assert np.all(np.diff(frac) > -0.01)
    assert np.all(np.diff(h["time"].values) > 0)
    # the front comes from the separator side (largest z)
    early = h["profile"].values[np.argmax(frac > 0.2)]
    assert early[-3:].mean() > early[:3].mean() + 0.3
    # fields on the input's grid: saturation in the pore space only, trapped pockets in gas
    pore = np.isin(seg.values, [0, 3]) if False else np.isin(
        seg.values, [c for c, n in seg.attrs["phases"].items() if n in ("pore", "crack")])
    sat = r.saturation.values
    assert r.saturation.dims == seg.dims and r.saturation.shape == seg.shape
    np.testing.assert_array_equal(np.isnan(sat), ~pore)
    wet_now = np.nansum(sat > 0.5) / pore.sum()
    assert abs(wet_now - r.wetted_fraction) < 0.02
    tr = r.trapped.values
    assert tr.max() == r.n_trapped and set(np.unique(tr)) == set(range(r.n_trapped + 1))
    assert np.all(pore[tr > 0]) and np.all(sat[tr > 0] < 0.6)
    assert r.trapped_fraction == pytest.approx((tr > 0).sum() / pore.sum())
    # viscous-capillary time scale mu dx / sigma: a step is longer for a more viscous liquid
    assert r.step_s > 0 and r.duration_s == pytest.approx(r.steps * r.step_s)


def test_inlet_face_is_a_mirror():
    seg = _electrode((10, 12, 12), seed=3)
    a = wetting(seg, contact_angle=40, device="cpu", max_steps=200, record_every=50,
                inlet="min", dtype="float64")
    flipped = seg[::-1].assign_coords(z=seg.z.values)
    b = wetting(flipped, contact_angle=40, device="cpu", max_steps=200, record_every=50,
                inlet="max", dtype="float64")
    np.testing.assert_allclose(a.saturation.values, b.saturation.values[::-1], atol=1e-9)
    np.testing.assert_allclose(a.history["wetted_fraction"], b.history["wetted_fraction"])


def test_time_scales_with_viscosity_over_surface_tension_and_voxel_size():
    seg = _electrode((8, 8, 8))
    kw = dict(device="cpu", max_steps=20, record_every=10)
    base = wetting(seg, **kw).step_s
    assert wetting(seg, viscosity=5e-3, **kw).step_s == pytest.approx(2 * base)
    assert wetting(seg, surface_tension=0.07, **kw).step_s == pytest.approx(base / 2)
    coarse = seg.assign_coords({d: seg[d].values * 2 for d in seg.dims})
    assert wetting(coarse, **kw).step_s == pytest.approx(2 * base)


def test_anisotropic_voxels_are_resampled_with_a_warning():
    a = np.zeros((6, 12, 12), "uint8")
    a[:, ::3, :] = 1
    seg = as_segmentation(a, phases={0: "pore", 1: "am"}, voxel_size=(0.2, 0.1, 0.1))
    with pytest.warns(UserWarning, match="cubic voxels"):
        r = wetting(seg, device="cpu", max_steps=20, record_every=10)
    assert r.saturation.shape == (12, 12, 12)


def test_a_pore_space_cut_off_from_the_inlet_stays_dry():
    a = np.zeros((8, 8, 8), "uint8")
    a[-1] = 1                                   # a solid layer at the separator face
    seg = as_segmentation(a, phases={0: "pore", 1: "am"}, voxel_size=0.1)
    r = wetting(seg, device="cpu", max_steps=500, record_every=10)
    assert r.steps == 0 and r.wetted_fraction == 0 and "connected to the inlet" in r.message
    # the gas below it is connected to the outlet: not trapped
    assert r.n_trapped == 0 and np.nanmax(r.saturation.values) == 0


@pytest.mark.parametrize("kwargs, argument", [
    (dict(inlet="side"), "inlet"),
    (dict(axis="t"), "axis"),
    (dict(phase="sei"), "phase"),
    (dict(contact_angle=5.0), "contact_angle"),
    (dict(contact_angle={"graphite": 30.0}), "contact_angle"),
    (dict(surface_tension=0.0), "surface_tension"),
    (dict(viscosity=-1.0), "viscosity"),
    (dict(max_steps=0), "max_steps"),
    (dict(duration=0.0), "duration"),
])
def test_bad_input_names_the_argument(kwargs, argument):
    seg = _electrode((8, 8, 8))
    with pytest.raises(InputError, match=argument):
        wetting(seg, device="cpu", **kwargs)


def test_an_unstable_run_stops_with_the_reason():
    # 30 deg around the one- and two-voxel pores of this electrode pulls the liquid past
    # its spinodal within ~100 steps: the run must stop and say so, not return zeros.
    seg = _electrode((32, 64, 64), seed=1)
    with pytest.raises(ConvergenceError, match="unstable"):
        wetting(seg, phase=["pore", "crack"], contact_angle=30, device="cpu", max_steps=300,
                record_every=25)
