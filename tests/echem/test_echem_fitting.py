"""Fitting the CBD parameter (seed 002) and the CEI resistivity (seed 001) to curves."""

import numpy as np
import pytest

from electromicro_dask.core import as_segmentation
from electromicro_dask.echem import (Scenario, calibrate_film_resistivity, chen2020,
                                     curve_distance, discharge, fit_gamma,
                                     mean_voltage_penalty, scenario)
from electromicro_dask.echem import _cell
from electromicro_dask.echem.scenarios import cei_thickness
from electromicro_dask.errors import InputError

torch = pytest.importorskip("torch")

PHASES = {0: "pore", 1: "cbd", 2: "am"}


def _rows(nz, row, h=2.0):
    a = np.broadcast_to(np.asarray(row, "uint8"), (nz, 1, len(row))).copy()
    return as_segmentation(a, phases=PHASES, voxel_size=h)


def test_curve_measures_on_analytic_curves():
    q = np.linspace(0, 100, 11)
    v = 4.0 - 0.004 * q
    assert mean_voltage_penalty((q, v), (q, v - 0.05)) == pytest.approx(0.05)
    # A curve shifted by 10 mAh/g along the capacity axis is 10 mAh/g away at equal voltage.
    assert curve_distance((q, v), (q + 10, v)) == pytest.approx(10.0, rel=1e-6)
    with pytest.raises(InputError, match="reference"):
        mean_voltage_penalty(([0, 1, 0.5], [4, 3.9, 3.8]), (q, v))


def test_uniform_film_penalty_is_its_series_resistance():
    # A film of uniform thickness on every reactive face adds rho * delta * j to the
    # overpotential; at a low rate the reaction is spread evenly, j = I / A_reactive.
    seg = _rows(8, [2, 2, 0])
    p = chen2020(d_s=1e-12)
    codes = np.asarray(seg.values)
    delta, rho = 10e-9, 2.0e6
    film = cei_thickness(codes, [2], mean_collector=delta, mean_separator=delta, sd=0.0)
    sc = Scenario(name="uniform film", film_thickness=film, film_resistivity=rho)
    kw = dict(c_rate=0.1, cutoff=3.6, parameters=p, area_factor=1.0, separator=4.0,
              device="cpu")
    ref, r = discharge(seg, **kw), discharge(seg, scenario=sc, **kw)
    cell = _cell.build(codes, {0: "pore", 1: "cbd", 2: "am"}, (2.0, 2.0, 2.0), p, Scenario(),
                       2, 1.0, None)
    area = sum(float(w.sum()) for w in cell.faces.values())
    j = r.current * 10.0 * cell.cross_section() / area  # A/m^2
    assert mean_voltage_penalty(ref, r) == pytest.approx(rho * delta * j, rel=0.05)


def test_calibrate_film_resistivity_reaches_the_target():
    seg = _rows(8, [2, 2, 0])
    cal = calibrate_film_resistivity(seg, target=0.02, c_rate=0.5, cutoff=3.5,
                                     parameters=chen2020(d_s=1e-12), area_factor=1.0,
                                     separator=4.0, device="cpu")
    assert cal.penalty == pytest.approx(0.02, rel=0.02)
    assert len(cal.evaluations) <= 8
    assert cal.cei.scenario["film_resistivity_ohm_m"] == cal.resistivity
    # A thicker film at the same resistivity costs more voltage and capacity.
    thick = discharge(seg, c_rate=0.5, cutoff=3.5, parameters=chen2020(d_s=1e-12),
                      area_factor=1.0, separator=4.0, device="cpu",
                      scenario=scenario("thick_cei", seg, film_resistivity=cal.resistivity))
    assert mean_voltage_penalty(cal.pristine, thick) > 1.6 * cal.penalty
    assert thick.capacity < cal.cei.capacity < cal.pristine.capacity


@pytest.mark.slow
def test_fit_gamma_recovers_a_known_gamma():
    # All electrolyte sits in the CBD, so its transport parameter limits the capacity at
    # 6 mA/cm^2 (2.8C here): seed 002's situation, where gamma is the one free parameter.
    seg = _rows(12, [2, 2, 1])
    p = chen2020(d_s=1e-13)
    kw = dict(parameters=p, separator=10.0, area_factor=1.0, device="cpu")
    truth = discharge(seg, current=6.0, cutoff=3.5, **kw,
                      scenario=scenario("homogenised_cbd", cbd_gamma=0.12))
    fit = fit_gamma(seg, truth.curve, current=6.0, bounds=(0.07, 0.4), rtol=0.02, **kw)
    assert fit.gamma == pytest.approx(0.12, rel=0.05)
    assert fit.tortuosity == pytest.approx(0.5 / fit.gamma)
    # Capacity rises monotonically with gamma over the trials of the search.
    trials = sorted((e["gamma"], e["capacity"]) for e in fit.evaluations)
    assert len(trials) >= 4 and trials[-1][0] / trials[0][0] > 1.5
    apart = [t for i, t in enumerate(trials) if i == 0 or t[0] > 1.02 * trials[i - 1][0]]
    assert np.all(np.diff([c for _, c in apart]) > 0)
    # Capacity falls with current at fixed gamma.
    low = discharge(seg, current=3.0, cutoff=3.5, **kw,
                    scenario=scenario("homogenised_cbd", cbd_gamma=0.12))
    assert low.capacity > truth.capacity
    with pytest.raises(InputError, match="bounds"):
        fit_gamma(seg, truth.curve, bounds=(0.5, 0.1), **kw)
