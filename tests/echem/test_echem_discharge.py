"""Galvanostatic discharge: the 1D limit against PyBaMM, low-rate capacity, conservation,
bad input and clean failure."""

import numpy as np
import pytest

from electromicro_dask.core import as_segmentation
from electromicro_dask.echem import chen2020, discharge, from_pybamm, one_c_current
from electromicro_dask.echem.parameters import FARADAY
from electromicro_dask.errors import InputError

torch = pytest.importorskip("torch")

PHASES = {0: "pore", 1: "cbd", 2: "am", 3: "crack"}


def _plates(nz, n_am, n_pore, h=2.0, hz=None):
    """AM plates along z in straight electrolyte channels (mirror sides): the 1D limit."""
    a = np.zeros((nz, 1, n_am + n_pore), "uint8")
    a[:, :, :n_am] = 2
    return as_segmentation(a, phases=PHASES, voxel_size=(hz or h, h, h))


def _layers(seg):
    # Each z-layer of a plate is its own particle, so lithium does not diffuse along z
    # (in the DFN every x holds its own particles).
    return np.broadcast_to(np.arange(seg.sizes["z"])[:, None, None], seg.shape).copy()


def _check_conservation(r):
    assert r.max_lithium_error < 1e-6
    assert r.max_plane_current_error < 1e-6
    assert r.salt_error < 1e-6


def test_chen2020_functions_equal_pybamm():
    pybamm = pytest.importorskip("pybamm")
    pv = pybamm.ParameterValues("Chen2020")
    p = chen2020()
    sto = np.linspace(0.05, 0.99, 50)
    ce = np.linspace(100.0, 3000.0, 50)
    ref = np.asarray(pv.evaluate(pv["Positive electrode OCP [V]"](pybamm.Vector(sto)))).ravel()
    np.testing.assert_allclose(p.ocv(sto), ref, rtol=1e-12)
    t = torch.as_tensor(ce, dtype=torch.float64)
    for key, fn in (("Electrolyte diffusivity [m2.s-1]", p.d_e),
                    ("Electrolyte conductivity [S.m-1]", p.kappa_e)):
        ref = np.asarray(pv.evaluate(pv[key](pybamm.Vector(ce), pybamm.Scalar(298.15)))).ravel()
        np.testing.assert_allclose(fn(t, 298.15).numpy(), ref, rtol=1e-12)
    cs = sto * p.c_s_max
    ref = np.asarray(pv.evaluate(pv["Positive electrode exchange-current density [A.m-2]"](
        pybamm.Vector(ce), pybamm.Vector(cs), pybamm.Scalar(p.c_s_max),
        pybamm.Scalar(298.15)))).ravel()
    got = p.exchange_current(t, torch.as_tensor(cs), p.c_s_max, 298.15).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # The converted set interpolates PyBaMM's functions.
    q = from_pybamm("Chen2020")
    np.testing.assert_allclose(q.ocv(sto), p.ocv(sto), atol=2e-4)
    assert q.c_s_max == p.c_s_max and q.t_plus == p.t_plus


@pytest.mark.slow
@pytest.mark.parametrize("rate", [0.5, 2.0])
def test_one_d_limit_matches_pybamm_dfn(rate):
    pytest.importorskip("pybamm")
    from electromicro_dask.echem.reference import pybamm_discharge

    seg = _plates(16, 3, 2)  # 32 um thick, eps_AM 0.6, one reactive face per row
    p = chen2020(d_s=1e-10)  # fast solid diffusion: particle shape does not matter
    r = discharge(seg, c_rate=rate, parameters=p, area_factor=1.0, separator=10.0,
                  particles=_layers(seg), device="cpu")
    assert r.status == "cutoff" and abs(r.curve.voltage[-1] - 3.5) <= 1e-4
    _check_conservation(r)
    ref = pybamm_discharge(32.0, 0.6, 0.4, 1 / (5 * 2.0), r.current, cutoff=3.5,
                           parameters=p, separator=10.0)
    assert abs(r.capacity / ref["capacity"] - 1) < 0.005
    t = r.curve.time.values
    sel = t <= 0.98 * min(t[-1], ref["time"][-1])
    diff = r.curve.voltage.values[sel] - np.interp(t[sel], ref["time"], ref["voltage"])
    assert np.sqrt(np.mean(diff ** 2)) < 2e-3


def test_low_rate_capacity_fills_the_active_material():
    # At C/100 to 3.6 V the AM fills to the stoichiometry whose OCP is 3.6 V.
    p = chen2020()
    seg = _plates(6, 2, 2, h=2.0)
    r = discharge(seg, c_rate="C/100", cutoff=3.6, parameters=p, area_factor=1.0,
                  separator=4.0, device="cpu")
    _check_conservation(r)
    sto_end = p.sto_at(3.6)
    theory = FARADAY * p.c_s_max * (sto_end - p.sto_init) / 3.6 / (p.am_density * 1e3)
    assert r.status == "cutoff"
    assert 0.99 * theory <= r.capacity <= theory * 1.0001


def test_random_structure_conserves_and_reports(tmp_path):
    rng = np.random.default_rng(5)
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.normal(size=(12, 8, 8)), 1.5, mode="wrap")
    q = np.quantile(field, [0.3, 0.4, 0.96])
    a = np.digitize(field, q).astype("uint8")  # pore / cbd / am / crack by level
    seg = as_segmentation(a, phases=PHASES, voxel_size=1.0)
    r = discharge(seg, c_rate=1.0, separator=4.0, device="cpu", snapshots=[200.0])
    _check_conservation(r)
    assert r.status == "cutoff" and 0 < r.capacity < 262
    assert r.current == pytest.approx(one_c_current(seg))
    snap = r.snapshots
    assert list(snap.snapshot.values)[0] == 200.0 and snap.sizes["z"] > seg.sizes["z"]
    sod = snap.sod.isel(snapshot=-1).values
    am = np.pad(a == 2, ((0, snap.sizes["z"] - 12), (0, 0), (0, 0)))
    assert np.isfinite(sod[am]).all() and np.isnan(sod[~am]).all()
    # Lithium in the AM at the end equals the charge passed.
    vol = 1e-18
    li = np.nansum(sod) * chen2020().c_s_max * vol - chen2020().sto_init * \
        chen2020().c_s_max * vol * am.sum()
    charge = r.current * 10 * seg.sizes["y"] * seg.sizes["x"] * 1e-12 * \
        float(r.curve.time[-1]) / FARADAY
    assert li == pytest.approx(charge, rel=1e-5)  # float32 snapshot
    assert r.profile.dims == ("distance",) and r.profile.sizes["distance"] == 12


def test_bad_input():
    ok = _plates(6, 2, 2)
    with pytest.raises(InputError, match="current"):
        discharge(ok, current=-1.0, device="cpu")
    with pytest.raises(InputError, match="exactly one"):
        discharge(ok, device="cpu")
    with pytest.raises(InputError, match="cutoff"):
        discharge(ok, c_rate=1, cutoff=4.4, device="cpu")
    with pytest.raises(InputError, match="c_rate"):
        discharge(ok, c_rate="fast", device="cpu")
    with pytest.raises(InputError, match="active material"):
        discharge(as_segmentation(np.zeros((4, 2, 2), "uint8"), phases=PHASES,
                                  voxel_size=1.0), c_rate=1, device="cpu")
    # AM only in the upper half, pores below: nothing wired to the collector.
    a = np.zeros((6, 2, 2), "uint8")
    a[3:] = 2
    with pytest.raises(InputError, match="collector"):
        discharge(as_segmentation(a, phases=PHASES, voxel_size=1.0), c_rate=1, device="cpu")
    # Dense AM with no electrolyte and the lithium on the last layer.
    with pytest.raises(InputError, match="electrolyte"):
        discharge(as_segmentation(np.full((4, 2, 2), 2, "uint8"), phases=PHASES,
                                  voxel_size=1.0), c_rate=1, separator=0, device="cpu")
    # Electrolyte pockets sealed from the separator by dense AM: only a separator face.
    a = np.full((6, 3, 3), 2, "uint8")
    a[1:4, 1, 1] = 0
    with pytest.raises(InputError, match="electrolyte"):
        discharge(as_segmentation(a, phases=PHASES, voxel_size=1.0), c_rate=1,
                  separator=0, device="cpu")
    with pytest.raises(InputError, match="phases"):
        discharge(as_segmentation(np.zeros((4, 2, 2), "uint8"), phases={0: "binder"},
                                  voxel_size=1.0), c_rate=1, device="cpu")


def test_failure_stops_with_curve_and_reason():
    # A salt diffusivity 100 x below any real electrolyte at 5C: the sweeps between the
    # potentials and the salt balance stop converging within the first hundredth of a
    # second, however short the step. The run must stop at the minimum step, saying why,
    # with the curve so far.
    seg = _plates(12, 2, 2, h=2.0)
    p = chen2020(d_s=1e-12, d_e=lambda c, T: c * 0 + 1e-12)
    r = discharge(seg, c_rate=5, cutoff=2.5, parameters=p, area_factor=1.0, min_step=1e-3,
                  device="cpu")
    assert r.status == "failed"
    assert "minimum step" in r.reason and "did not converge" in r.reason
    assert r.curve.sizes["time"] > 2 and r.capacity > 0
    _check_conservation(r)


def test_voltage_collapse_at_the_diffusion_limit_is_the_cutoff():
    # At 20C the surfaces fill within seconds: no voltage delivers the current any more,
    # the Newton's voltage runs away, and that is the cutoff, found to the nanosecond
    # (it used to end as a solver failure at the minimum step).
    seg = _plates(12, 2, 2, h=2.0)
    r = discharge(seg, c_rate=20, cutoff=0.5, area_factor=1.0, min_step=0.1, device="cpu")
    assert r.status == "cutoff" and "collapsed" in r.reason, r.reason
    sod = r.snapshots["sod"].isel(snapshot=-1).values
    assert np.nanmax(sod) <= 1.0 and r.capacity > 0
    _check_conservation(r)


def test_filling_surfaces_end_at_the_cutoff_without_chatter():
    # Slow solid diffusion at 5C: the surfaces near the separator reach c_max long before
    # the voxels do. The exchange current vanishes there (i0 ~ (c_max - c)^(1/2)), so the
    # current moves deeper and the voltage falls to the cutoff. With the surface
    # concentration of the exchange current lagged by a step, the voltage alternated by
    # ~0.2 V from step to step at the minimum step until max_steps (5000) ran out.
    seg = _plates(12, 2, 2, h=2.0)
    r = discharge(seg, c_rate=5, cutoff=3.0, parameters=chen2020(d_s=1e-15), area_factor=1.0,
                  separator=10.0, max_steps=1000, device="cpu")
    assert r.status == "cutoff", r.reason
    assert r.steps < 300
    # no alternation: the voltage only falls (it drops steeply at the end, where the
    # surfaces fill and the current runs out of places to go)
    dv = np.diff(r.curve.voltage.values)
    assert dv.max() < 1e-6
    assert r.curve.voltage.values[-1] == pytest.approx(3.0, abs=1e-4)
    sod = r.snapshots["sod"].isel(snapshot=-1).values
    assert np.nanmax(sod) <= 1.0 and np.nanmin(sod) >= 0.0
    _check_conservation(r)


@pytest.mark.parametrize("capped", [False, True])
def test_pores_reached_only_through_clogged_cbd_are_fed_by_migration(capped):
    # AM plate | CBD | pore channel; with ``capped`` two CBD layers close the channel at the
    # separator. Clogged for diffusion only (the CBD still conducts ions), the capped electrode's electrolyte exchanges no salt with the
    # separator by diffusion, so all of it together loses exactly (1 - t+) Q / F (seed 001's
    # depleted regions, Fig. 5C), and the result says that all its pores are such a pocket.
    from electromicro_dask.echem import scenario

    a = np.ones((8, 1, 3), "uint8")
    a[:7, :, 0] = 2
    a[:, :, 2] = 0
    if capped:
        a[6:, :, 2] = 1
    seg = as_segmentation(a, phases=PHASES, voxel_size=2.0)
    p = chen2020()
    r = discharge(seg, c_rate=1, cutoff=3.0, parameters=p, area_factor=1.0, separator=10.0,
                  scenario=scenario("cbd_clogging", seg, film_resistivity=0.0,
                                    cbd_conduction=True),
                  snapshots=(20.0,), t_max=20.0, device="cpu")
    _check_conservation(r)
    assert r.migration_only_share == (1.0 if capped else 0.0)
    eps = np.select([a == 0, a == 1], [1.0, p.cbd_porosity], 0.0)
    c = np.nan_to_num(r.snapshots["c_e"].isel(snapshot=-1).values[:8])
    salt = (c * eps).sum() * (2e-6) ** 3
    lost = p.c_e_init * eps.sum() * (2e-6) ** 3 - salt                 # mol
    q = r.current * 10.0 * 3 * (2e-6) ** 2 * 20.0                      # C through 3 columns
    expected = (1 - p.t_plus) * q / FARADAY
    if capped:
        assert lost == pytest.approx(expected, rel=1e-5)
    else:
        assert lost < 0.9 * expected  # the open channel is fed by diffusion as well


def test_clogged_cbd_gives_up_exactly_its_share_of_salt():
    # Seed 001's "CBD clogging" read as diffusion blocked, conduction kept: the CBD's
    # electrolyte exchanges no salt by diffusion. With
    # the AM touching only CBD, all the reaction goes through it, so the CBD's salt falls
    # by (1 - t+) Q / F (the migrated share t+ is replaced) while the separator's rises by
    # as much: the stagnant voxels' balance that the sweeps' secant step must keep.
    from electromicro_dask.echem import scenario

    a = np.ones((8, 1, 2), "uint8")   # CBD, with an AM plate that it covers on top
    a[:7, :, 0] = 2
    seg = as_segmentation(a, phases=PHASES, voxel_size=2.0)
    p = chen2020()
    times = (10.0, 25.0)
    r = discharge(seg, c_rate=1, cutoff=3.0, parameters=p, area_factor=1.0, separator=10.0,
                  scenario=scenario("cbd_clogging", seg, film_resistivity=0.0,
                                    cbd_conduction=True),
                  snapshots=times, t_max=30.0, device="cpu")
    _check_conservation(r)
    assert r.status == "time limit" and r.steps > 3
    cbd = np.zeros(r.snapshots["c_e"].shape[1:], bool)
    cbd[:8] = a == 1
    v = (2e-6) ** 3 * p.cbd_porosity * cbd.sum()           # m^3 of CBD electrolyte
    amps = r.current * 10.0 * 2 * (2e-6) ** 2               # mA/cm^2 -> A/m^2, two columns
    for t in times:
        c = r.snapshots["c_e"].sel(snapshot=t).values[cbd].astype(float)
        lost = (p.c_e_init - c).mean()
        assert lost == pytest.approx((1 - p.t_plus) * amps * t / (FARADAY * v), rel=1e-5)
        assert c.std() > 1e-3 * lost                        # the depletion is not uniform


def test_clogged_cbd_is_electrochemically_inert_where_it_does_not_wire_the_am():
    # Seed 001's "CBD clogging" as notes/echem.md 1.4 reads it (the default): no Li+
    # transport through the CBD at all. An AM plate wired to the collector by itself, an
    # open pore channel, a CBD wall and a pore pocket behind it: clogged, the CBD and the
    # pocket take no part, so the discharge is that of the electrode with the CBD replaced
    # by an inert phase (cracks="inert"), and the pocket is reported as cut off.
    from electromicro_dask.echem import scenario

    a = np.zeros((8, 1, 4), "uint8")
    a[:7, :, 0] = 2          # AM plate, capped by CBD at the separator
    a[7, :, 0] = 1
    a[:, :, 2] = 1           # CBD wall
    a[6:, :, 3] = 1          # ... closing the pocket a[:6, :, 3] at the separator
    seg = as_segmentation(a, phases=PHASES, voxel_size=2.0)
    inert = as_segmentation(np.where(a == 1, 3, a).astype("uint8"), phases=PHASES,
                            voxel_size=2.0)
    kw = dict(c_rate=2, cutoff=3.0, parameters=chen2020(), area_factor=1.0, separator=10.0,
              snapshots=(20.0,), t_max=20.0, device="cpu")
    r = discharge(seg, scenario=scenario("cbd_clogging", seg, film_resistivity=0.0), **kw)
    ref = discharge(inert, scenario=scenario("pristine", cracks="inert"), **kw)
    _check_conservation(r)
    assert r.excluded["electrolyte not connected to the separator"] == 6
    assert r.migration_only_share == 0.0
    ce = r.snapshots["c_e"].isel(snapshot=-1).values[:8]
    assert np.isnan(ce[a == 1]).all() and np.isnan(ce[:6, :, 3]).all()
    assert np.isfinite(ce[:, :, 1]).all()
    np.testing.assert_allclose(r.curve.voltage.values, ref.curve.voltage.values, atol=1e-9)
    # the one-C current counts the same AM in both, so the capacities agree exactly
    assert r.capacity == pytest.approx(ref.capacity, rel=1e-12)


def test_clogging_that_leaves_no_reactive_face_is_bad_input():
    # AM covered by CBD on every side that is not AM: clogged, no face reacts.
    from electromicro_dask.echem import scenario

    a = np.zeros((6, 1, 3), "uint8")
    a[:5, :, 0] = 2
    a[5, :, 0] = 1
    a[:, :, 1] = 1
    seg = as_segmentation(a, phases=PHASES, voxel_size=2.0)
    with pytest.raises(InputError, match="no such face"):
        discharge(seg, c_rate=1, cutoff=3.0, separator=10.0, device="cpu",
                  scenario=scenario("cbd_clogging", seg, film_resistivity=0.0))


@pytest.mark.parametrize("h", [2.0, 1.0, 0.25])
def test_solid_diffusion_limited_slab_follows_the_analytic_surface(h):
    # AM slabs 4 um thick, one reactive face each, with fast kinetics and electrolyte:
    # the voltage is the OCP of the surface concentration of a plane sheet filled at a
    # constant flux through one face (Carslaw & Jaeger, Conduction of Heat in Solids, 2nd
    # ed., section 3.3; Crank, The Mathematics of Diffusion, 2nd ed., section 4.3.3). At
    # D_s = 5e-16 m^2/s (seed 001's set) the diffusion layer is thinner than the voxel for
    # most of the run: the voxel's surface model, not the grid, carries the answer. With
    # the surface slope extrapolated from the voxel mean the capacity came out 9-46 %
    # low and the voltage rose during the discharge.
    from electromicro_dask.echem import scenario
    from electromicro_dask.echem.parameters import _i0_chen2020
    from electromicro_dask.echem.reference import plane_sheet_surface

    d_s, thick, nz = 5e-16, 4e-6, 6
    p = chen2020(d_s=d_s, sigma_am=5.0,
                 exchange_current=lambda ce, cs, cm, T: 1e3 * _i0_chen2020(ce, cs, cm, T),
                 lithium_exchange_current=lambda ce, T: ce * 0 + 100.0,
                 kappa_e=lambda c, T: c * 0 + 5.0, d_e=lambda c, T: c * 0 + 1e-8)
    n_am = int(round(thick * 1e6 / h))
    a = np.zeros((nz, 1, n_am + 1), "uint8")
    a[:, :, :n_am] = 2
    a[-1, :, :n_am] = 3  # an inert cap: the slabs react only through their side face
    seg = as_segmentation(a, phases=PHASES, voxel_size=(2.0, h, h))
    layers = np.broadcast_to(np.arange(nz)[:, None, None], seg.shape).copy()
    r = discharge(seg, c_rate=0.5, cutoff=3.6, parameters=p, area_factor=1.0, separator=2.0,
                  particles=layers, scenario=scenario("pristine", cracks="inert"),
                  device="cpu")
    _check_conservation(r)
    # the molar flux through each face: the applied current over the nz - 1 side faces
    i_app = r.current * 10.0 * (n_am + 1) * (h * 1e-6) ** 2
    flux = i_app / ((nz - 1) * 2e-6 * h * 1e-6) / FARADAY

    def surface(t):
        c = plane_sheet_surface(np.atleast_1d(t), flux, thick, d_s, p.sto_init * p.c_s_max)
        return np.minimum(c / p.c_s_max, 1 - 1e-9)

    def ocv(t):
        return p.ocv(surface(t))

    from scipy.optimize import brentq

    t_cut = brentq(lambda t: float(ocv(t)[0]) - 3.6, 1.0, 1e5)
    assert r.status == "cutoff"
    assert float(r.curve.time[-1]) == pytest.approx(t_cut, rel=0.05)
    t = r.curve.time.values
    sel = (t > 0) & (t < t_cut) & (surface(t) < 0.97)
    err = r.curve.voltage.values[sel] - ocv(t[sel])
    assert np.sqrt(np.mean(err ** 2)) < 8e-3
    assert np.abs(err).max() < 15e-3
    assert np.all(np.diff(r.curve.voltage.values) <= 1e-6)  # never rises on discharge
