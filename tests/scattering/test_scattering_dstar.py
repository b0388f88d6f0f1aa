"""d* against synthetic profiles with a known knee (../shared/notes/swaxs.md, 2.6)."""

import numpy as np
import pytest
import xarray as xr

from electromicro_dask.errors import InputError
from electromicro_dask.scattering import d_star, d_star_profile

Q = np.linspace(0.01, 0.6, 1000)  # 1/A, linear bins


def profile(d_nm, slope=3.5, b=1e-3):
    """Power law B q^-P plus a Guinier term placed so the 3 % departure is at 2 pi / d."""
    qs = 2 * np.pi / (d_nm * 10.0)
    rg = 3.5 / qs  # q* Rg > 2.29 keeps the Guinier/power ratio falling with q (notes 2.6)
    g = 0.03 * b * qs ** -slope * np.exp(qs ** 2 * rg ** 2 / 3.0)
    return b * Q ** -slope + g * np.exp(-Q ** 2 * rg ** 2 / 3.0)


def one_bin_nm(d_nm):
    qs = 2 * np.pi / (d_nm * 10)
    dq = Q[1] - Q[0]
    return (2 * np.pi / (qs - dq) - 2 * np.pi / qs) / 10.0


@pytest.mark.parametrize("d_nm", [10.0, 12.0, 15.0])
def test_noise_free_within_one_bin(d_nm):
    ds, slope, qs = d_star_profile(Q, profile(d_nm))
    assert abs(ds / 10 - d_nm) <= one_bin_nm(d_nm)
    assert slope == pytest.approx(3.5, abs=0.01)


@pytest.mark.parametrize("d_nm", [10.0, 12.0, 15.0])
def test_noisy_median_within_two_percent(d_nm):
    rng = np.random.default_rng(int(d_nm))
    clean = profile(d_nm)
    prof = clean * (1 + 0.003 * rng.standard_normal((200, Q.size)))
    arr = xr.DataArray(prof, dims=("y", "q"), coords={"q": Q}).chunk({"y": 37})
    out = d_star(arr)["d_star_nm"].values
    assert np.isfinite(out).mean() > 0.95
    assert np.nanmedian(out) == pytest.approx(d_nm, rel=0.02)


def test_consecutive_option_robust_at_one_percent():
    rng = np.random.default_rng(3)
    prof = profile(12.0) * (1 + 0.01 * rng.standard_normal((200, Q.size)))
    arr = xr.DataArray(prof, dims=("y", "q"), coords={"q": Q})
    med = np.nanmedian(d_star(arr, consecutive=3)["d_star_nm"].values)
    assert med == pytest.approx(12.0, rel=0.06)


def test_nan_cases():
    assert np.isnan(d_star_profile(Q, 1e-3 * Q ** -3.5)[0])        # no departure
    assert np.isnan(d_star_profile(Q, 1e-3 * Q ** -4.6)[0])        # slope too steep
    assert np.isnan(d_star_profile(Q, 1e-3 * Q ** -2.0)[0])        # slope too shallow
    short = profile(12.0)
    short[:900] = 1e-12                                             # only 100 points left
    assert np.isnan(d_star_profile(Q, short)[0])
    # Gaps: the longest high-q segment is used.
    gap = profile(12.0)
    gap[30] = 0.0  # below the knee (index ~72 for 12 nm)
    assert abs(d_star_profile(Q, gap)[0] / 10 - 12.0) <= one_bin_nm(12.0)


def test_map_dims_and_bad_input():
    prof = np.stack([profile(10.0), profile(15.0), 1e-3 * Q ** -3.5])
    arr = xr.DataArray(prof.reshape(1, 3, -1), dims=("y", "x", "q"),
                       coords={"q": Q, "x": [0.0, 1.0, 2.0], "y": [0.0]})
    out = d_star(arr)
    assert out["d_star_nm"].dims == ("y", "x")
    v = out["d_star_nm"].values[0]
    assert abs(v[0] - 10) < 0.2 and abs(v[1] - 15) < 0.3 and np.isnan(v[2])
    logq = xr.DataArray(profile(10.0)[None], dims=("y", "q"),
                        coords={"q": np.geomspace(0.01, 0.6, 1000)})
    with pytest.raises(InputError, match="linearly spaced"):
        d_star(logq)
    with pytest.raises(InputError, match="profiles"):
        d_star(xr.DataArray(np.zeros(5), dims="t"))
