"""synth.correlative_fibsem: the FIB-SEM view of correlative()'s fine truth through a known
similarity transform."""

import numpy as np
import pytest

from electromicro_dask import register as reg
from electromicro_dask import synth
from electromicro_dask.errors import InputError

KW = dict(factor=4, voxel_size=0.5, particle_radius_um=(2.0, 0.5))


def test_fibsem_view_averages_to_the_tomogram_composition_through_its_transform():
    co = synth.correlative((16, 16, 24), seed=3, **KW).compute()
    fib = synth.correlative_fibsem((16, 16, 24), seed=3, edge_voxels=40, scale=0.97,
                                   rotation_deg=(4.0, 1.0, -2.0), offset_um=(0.3, 0.5, -0.4),
                                   **KW).compute()
    assert fib["grey"].shape == (40, 40, 40)
    assert float(fib["z"][1] - fib["z"][0]) == pytest.approx(0.97 * 0.125)   # stated size
    M = np.array(fib.attrs["fixed_to_moving"])
    assert np.linalg.det(M[:3, :3]) ** (1 / 3) == pytest.approx(0.97)
    # the cube's centre maps to the tomogram's centre plus the offset
    c = np.array(fib.attrs["center_um"])
    centre_q = np.array([float(fib[d].mean()) for d in "zyx"])
    np.testing.assert_allclose(np.linalg.solve(M[:3, :3], centre_q - M[:3, 3]),
                               c + [0.3, 0.5, -0.4], atol=1e-9)
    truth_reg = reg.Registration(matrix=M, translation_um=(0, 0, 0), center_um=tuple(c),
                                 converged=True, reason="", shared_information=1.0,
                                 overlap=1.0, metric=0.0, iterations=0)
    comp = reg.composition(fib["truth"], truth_reg, like=co["grey"], samples=4)
    cov = comp["coverage"].values == 1
    assert cov.sum() > 200
    err = np.abs(comp["composition"].values
                 - co["composition"].sel(phase=list(comp["phase"].values)).values)[:, cov]
    assert err.mean() < 0.005     # the same structure, seen through the stated transform
    # grey values follow the FIB-SEM contrast per phase
    g, t = fib["grey"].values, fib["truth"].values
    for code, name in fib["truth"].attrs["phases"].items():
        assert abs(g[t == code].mean() - synth.FIBSEM_CONTRAST[name]) < 0.01


def test_fibsem_view_bad_input():
    with pytest.raises(InputError, match="edge_voxels"):
        synth.correlative_fibsem((16, 16, 16), edge_voxels=100, **KW)
    with pytest.raises(InputError, match="scale"):
        synth.correlative_fibsem((16, 16, 16), scale=0, **KW)


def test_surface_scan_shows_the_fine_truth_plane_and_its_site():
    from electromicro_dask.synth.correlative import _centre

    shape = (16, 24, 48)
    # unturned and noise-free: the scan is the fine truth's plane in FIB-SEM contrast
    scan = synth.correlative_surface(shape, seed=2, rotation_deg=0.0, noise=0.0,
                                     offset_um=(0.5, 0.0, 0.0), extent_um=(6.0, 10.0), **KW)
    assert scan.dims == ("y", "x") and scan.shape == (48, 80)
    assert float(scan["x"][1] - scan["x"][0]) == pytest.approx(0.125)
    fine = synth.electrode(tuple(4 * s for s in shape), 0.125, seed=2,
                           particle_radius_um=(2.0, 0.5))["phases"]
    plane = fine.sel(z=scan.attrs["z_um"]).values
    assert scan.attrs["z_um"] == pytest.approx(_centre(shape, 4, 0.5)[0] + 0.5, abs=0.07)
    lut = np.array([synth.FIBSEM_CONTRAST[n] for _, n in sorted(fine.attrs["phases"].items())])
    y0, x0 = (int(np.argmin(np.abs(fine[d].values - (c - e / 2 + 0.0625))))
              for d, c, e in zip("yx", _centre(shape, 4, 0.5)[1:], (6.0, 10.0)))
    np.testing.assert_allclose(scan.values, lut[plane[y0:y0 + 48, x0:x0 + 80]], atol=1e-6)
    # turned and noisy: the site, read off the scan and located by SIFT in the tomogram
    # slice, lands on the true site (two seeds, two offsets)
    shape = (16, 32, 64)   # SIFT needs a few tens of particles in view
    for seed, off in ((0, (0.4, -0.3, 0.2)), (4, (-1.0, 1.5, -3.0))):
        co = synth.correlative(shape, seed=seed, **KW)
        scan = synth.correlative_surface(shape, seed=seed, offset_um=off, rotation_deg=-4.0,
                                         extent_um=(13.0, 28.0), **KW)
        site = np.array(scan.attrs["site_um"])
        np.testing.assert_allclose(site, _centre(shape, 4, 0.5) + off)
        loc = reg.locate(scan, co["grey"].sel(z=scan.attrs["z_um"], method="nearest").compute())
        found = loc.matrix @ np.r_[scan.attrs["site_in_scan_um"], 1.0]
        assert np.hypot(*(found[:2] - site[1:])) < 2 * 0.5, (seed, found, site)
        assert loc.angle_deg == pytest.approx(-4.0, abs=1.5)
    with pytest.raises(InputError, match="extent_um"):
        synth.correlative_surface(shape, extent_um=(20.0, 10.0), **KW)
    with pytest.raises(InputError, match="offset_um"):
        synth.correlative_surface(shape, offset_um=(9.0, 0.0, 0.0), **KW)
