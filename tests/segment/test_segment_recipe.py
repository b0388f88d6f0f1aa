"""Volume fractions from an electrode recipe against a hand calculation (seed 002, Table 1)."""

import pytest

from electromicro_dask.errors import InputError
from electromicro_dask.segment import fractions_from_recipe

# Seed 002 Table 1, suspensions A (single layer, 51 mg/cm^2) and D; densities of the test
SUSP_A = {"nmc622": 93.5, "carbon_black": 2.0, "graphite": 1.0, "pvdf": 3.5}
SUSP_D = {"nmc622": 93.0, "carbon_black": 2.0, "graphite": 1.0, "pvdf": 4.0}
RHO = {"nmc622": 4.7, "carbon_black": 2.0, "graphite": 2.2, "pvdf": 1.8}


def _hand(w, rho_el, p):
    am = w["nmc622"] / 100 * rho_el / 4.7
    cbd = rho_el * (w["carbon_black"] / 100 / 2.0 + w["graphite"] / 100 / 2.2
                    + w["pvdf"] / 100 / 1.8) / (1 - p)
    return {"am": am, "cbd": cbd, "pore": 1 - am - cbd}


@pytest.mark.parametrize("susp", [SUSP_A, SUSP_D])
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_equals_hand_calculation(susp, p):
    f = fractions_from_recipe(susp, densities=RHO, electrode_density_g_cm3=3.1,
                              cbd_inner_porosity=p)
    want = _hand(susp, 3.1, p)
    for k in ("am", "cbd", "pore"):
        assert f[k] == pytest.approx(want[k], rel=1e-12)
    assert sum(f.values()) == pytest.approx(1.0, abs=1e-12)
    if p == 0.5:  # the CBD domain is twice its solid volume; the AM is unchanged
        solid = fractions_from_recipe(susp, densities=RHO, electrode_density_g_cm3=3.1,
                                      cbd_inner_porosity=0.0)
        assert f["cbd"] == pytest.approx(2 * solid["cbd"])
        assert f["am"] == pytest.approx(solid["am"])


def test_loading_and_thickness_give_the_density():
    # 51 mg/cm^2 at 3.1 g/cm^3 is a 164.5 um thick electrode
    a = fractions_from_recipe(SUSP_A, densities=RHO, loading_mg_cm2=51.0,
                              thickness_um=10 * 51.0 / 3.1)
    b = fractions_from_recipe(SUSP_A, densities=RHO, electrode_density_g_cm3=3.1)
    assert a == pytest.approx(b)


def test_default_densities_near_the_seed_fractions():
    # Seed 002 prints 59.54 / 11.54 / 28.92 % (solid CBD) without stating the densities
    f = fractions_from_recipe(SUSP_A, electrode_density_g_cm3=3.1, cbd_inner_porosity=0.0)
    assert abs(f["am"] - 0.5954) < 0.02 and abs(f["cbd"] - 0.1154) < 0.01


def test_bad_input():
    with pytest.raises(InputError, match="solid_wt.*100"):
        fractions_from_recipe({"nmc622": 93.5, "pvdf": 3.5}, electrode_density_g_cm3=3.1)
    with pytest.raises(InputError, match="densities"):
        fractions_from_recipe({"lfp": 90.0, "pvdf": 10.0}, active="lfp",
                              electrode_density_g_cm3=2.0)
    with pytest.raises(InputError, match="active"):
        fractions_from_recipe(SUSP_A, active="nmc811", electrode_density_g_cm3=3.1)
    with pytest.raises(InputError, match="loading_mg_cm2"):
        fractions_from_recipe(SUSP_A)
    with pytest.raises(InputError, match="electrode_density_g_cm3"):
        fractions_from_recipe(SUSP_A, electrode_density_g_cm3=9.0)  # solids overfill
    with pytest.raises(InputError, match="cbd_inner_porosity"):
        fractions_from_recipe(SUSP_A, electrode_density_g_cm3=3.1, cbd_inner_porosity=1.0)
