"""Surface and interface areas against analytical results (sphere, Boolean model of spheres)."""
import numpy as np
import pytest
from scipy.spatial import cKDTree

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.measure.correlation import two_point_correlation
from electromicro_dask.measure.surface import (interface_area, specific_interface_area,
                                               surface_area)


def _seg(im, phases, voxel=1.0, chunks="auto"):
    seg = emd.as_volume(np.asarray(im, "uint8"), voxel_size=voxel, chunks=chunks)
    seg.attrs["phases"] = phases
    return seg


def boolean_spheres(n, radius, porosity, seed):
    """Boolean model: Poisson germs in the window dilated by the radius, balls painted by
    point sampling. Returns the solid mask, the germs and the realised intensity."""
    rng = np.random.default_rng(seed)
    vol = 4 / 3 * np.pi * radius**3
    lam = -np.log(porosity) / vol
    lo, hi = -radius, n + radius
    k = rng.poisson(lam * (hi - lo) ** 3)
    centres = rng.uniform(lo, hi, (k, 3))
    im = np.zeros((n, n, n), bool)
    r = int(np.ceil(radius)) + 1
    for c in centres:
        i = np.floor(c).astype(int)
        ax = [np.arange(max(i[a] - r, 0), min(i[a] + r + 1, n)) for a in range(3)]
        if not all(len(a) for a in ax):
            continue
        d = ((ax[0][:, None, None] - c[0]) ** 2 + (ax[1][None, :, None] - c[1]) ** 2
             + (ax[2][None, None, :] - c[2]) ** 2)
        im[np.ix_(*ax)] |= d <= radius**2
    return im, centres, k / (hi - lo) ** 3


def visible_surface_density(centres, radius, n, m=3000, seed=0):
    """Exact-in-expectation S_V of the realised germs: Monte Carlo on each sphere surface,
    keeping points inside the window [0, n-1]^3 and outside every other ball."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(m, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    tree = cKDTree(centres)
    total = 0.0
    for i, c in enumerate(centres):
        pts = c + radius * u
        pts = pts[np.all((pts >= 0) & (pts <= n - 1), axis=1)]
        if not len(pts):
            continue
        vis = np.ones(len(pts), bool)
        for j in tree.query_ball_point(c, 2 * radius):
            if j != i:
                vis &= ((pts - centres[j]) ** 2).sum(1) > radius**2
        total += 4 * np.pi * radius**2 * vis.sum() / m
    return total / (n - 1) ** 3


@pytest.fixture(scope="module")
def boolean_model():
    n, radius, porosity = 192, 12.0, 0.75
    im, centres, lam = boolean_spheres(n, radius, porosity, seed=0)
    return _seg(im, {0: "pore", 1: "am"}, chunks=(96, 96, 96)), centres, lam, radius, n


def test_single_sphere_area_within_2_percent():
    z, y, x = np.ogrid[:50, :50, :50]
    ball = (z - 24.3) ** 2 + (y - 25.1) ** 2 + (x - 24.7) ** 2 <= 20**2
    s = surface_area(_seg(ball, {0: "pore", 1: "am"}), absolute=True)
    for name in ("am", "pore"):
        assert s[name] == pytest.approx(4 * np.pi * 20**2, rel=0.02)


def test_anisotropic_voxels_sphere():
    # a sphere of radius 10 um sampled with voxels 0.5 x 0.25 x 0.25 um
    z, y, x = np.ogrid[:50, :96, :96]
    ball = ((z * 0.5 - 12.1) ** 2 + (y * 0.25 - 11.9) ** 2 + (x * 0.25 - 12.05) ** 2
            <= 10.0**2)
    s = surface_area(_seg(ball, {0: "pore", 1: "am"}, voxel=(0.5, 0.25, 0.25)),
                     absolute=True)
    assert s["am"] == pytest.approx(4 * np.pi * 10.0**2, rel=0.02)


def test_disc_perimeter_2d():
    y, x = np.ogrid[:80, :80]
    disc = (y - 40.2) ** 2 + (x - 39.7) ** 2 <= 25**2
    s = surface_area(_seg(disc, {0: "pore", 1: "am"}), absolute=True)
    assert s["am"] == pytest.approx(2 * np.pi * 25, rel=0.02)


def test_boolean_model_porosity_and_surface(boolean_model):
    # Boolean model (Ohser and Muecklich 2000, sec. 5.2): p = exp(-lam V),
    # S_V = lam S exp(-lam V), with lam the realised germ intensity.
    seg, centres, lam, radius, n = boolean_model
    vol = 4 / 3 * np.pi * radius**3
    p = np.exp(-lam * vol)
    frac = emd.measure.volume_fractions(seg)
    assert frac["pore"] == pytest.approx(p, rel=0.03)
    s = surface_area(seg)
    analytic = lam * 4 * np.pi * radius**2 * p
    assert s["pore"] == pytest.approx(analytic, rel=0.03)
    assert s["am"] == pytest.approx(s["pore"], rel=1e-12)
    # against the exact surface of the same germs (no sampling noise): the remaining
    # difference is the digitisation of the concave sphere-sphere edges (~1.4 % at R = 12)
    truth = visible_surface_density(centres, radius, n)
    assert s["pore"] == pytest.approx(truth, rel=0.02)


def test_boolean_model_two_point_correlation(boolean_model):
    # P(x and x + h both pore) = exp(-lam |B_R(0) u B_R(h)|)
    seg, centres, lam, radius, n = boolean_model
    # half of the volume keeps the test fast; S2 is a stationary average
    tpc = two_point_correlation(seg.isel(z=slice(0, 96)), "pore", r_max_um=24)
    h = tpc.radial.r_um.to_numpy()
    hh = np.minimum(h, 2 * radius)
    vol = 4 / 3 * np.pi * radius**3
    union = 2 * vol - np.pi * (4 * radius + hh) * (2 * radius - hh) ** 2 / 12
    np.testing.assert_allclose(tpc.radial.s2.to_numpy(), np.exp(-lam * union), rtol=0.03)
    ax = tpc.axes[tpc.axes.axis == "x"]
    hx = ax.r_um.to_numpy()
    union = 2 * vol - np.pi * (4 * radius + np.minimum(hx, 2 * radius)) * (
        2 * radius - np.minimum(hx, 2 * radius)) ** 2 / 12
    np.testing.assert_allclose(ax.s2.to_numpy(), np.exp(-lam * union), rtol=0.03)


def _three_phase(shape=(23, 29, 31), seed=3):
    from scipy import ndimage as ndi
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.random(shape), 2.0)
    im = np.digitize(f, np.quantile(f, [0.35, 0.6])).astype("uint8")
    return im


def test_chunk_invariance_odd_chunks():
    im = _three_phase()
    phases = {0: "pore", 1: "cbd", 2: "am"}
    whole = interface_area(_seg(im, phases, voxel=(0.3, 0.2, 0.2), chunks=im.shape))
    for chunks in [(7, 11, 13), (5, 29, 4), (23, 3, 31)]:
        part = interface_area(_seg(im, phases, voxel=(0.3, 0.2, 0.2), chunks=chunks))
        np.testing.assert_array_equal(part.to_numpy(), whole.to_numpy())


def test_interface_rows_sum_to_surface_and_s_int():
    im = _three_phase()
    seg = _seg(im, {0: "pore", 1: "cbd", 2: "am"}, chunks=(9, 10, 11))
    inter = interface_area(seg)
    s = surface_area(seg, s_int=True)
    for name in ("pore", "cbd", "am"):
        assert inter.loc[name].sum() == pytest.approx(s[name], rel=1e-12)
    assert s["s_int"] == pytest.approx(inter.loc["am", "pore"] + 0.5 * inter.loc["am", "cbd"])
    assert specific_interface_area(seg) == pytest.approx(s["s_int"])
    np.testing.assert_allclose(inter.to_numpy(), inter.to_numpy().T)


def test_plane_orientation_bias_matches_crofton_weights():
    # A plane normal to z seen through 13 directions: sum over directions of the weight
    # times |cos| (Crofton), known in closed form -> 0.9266 for the cubic-lattice weights
    # (the worst case; isotropic structures are unbiased). S_V of a plane z = const in an
    # n_z window: crossings on direction d, divided by the lines' length N_d |d|.
    from electromicro_dask.measure.surface import _crofton_weights
    dirs, w, length = _crofton_weights((1.0, 1.0, 1.0))
    bias = 2 * sum(wi * abs(d[0]) / li for d, wi, li in zip(dirs, w, length))
    assert bias == pytest.approx(0.9266, abs=1e-3)
    im = np.zeros((40, 30, 30), "uint8")
    im[20:] = 1
    s = surface_area(_seg(im, {0: "pore", 1: "am"}, chunks=(7, 9, 11)))
    expected = 2 * sum(wi * abs(d[0]) / li / (40 - abs(d[0])) for d, wi, li in zip(dirs, w, length))
    assert s["am"] == pytest.approx(expected, rel=1e-12)


def test_errors():
    im = np.zeros((4, 4, 4), "uint8")
    seg = _seg(im, {0: "pore", 1: "am"})
    with pytest.raises(InputError, match="s_int"):
        surface_area(seg, s_int="yes")
    with pytest.raises(InputError, match="s_int"):
        surface_area(seg, s_int=True)  # no cbd phase
    with pytest.raises(InputError, match="phases"):
        surface_area(np.zeros((4, 4, 4), "uint8"))
