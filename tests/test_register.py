"""Multimodal rigid registration against known transforms (notes/swaxs.md 2.7, checks 29-32).

The truth is analytic: a field of smooth balls evaluated at the fixed grid's points and, for
the moving volume, at the points a known rigid transform maps them from, so the moving volume
(other voxel size, inverted contrast, its own noise) is not an interpolated copy.
"""

import numpy as np
import pytest
import xarray as xr

import electromicro_dask as emd
from electromicro_dask.errors import InputError

reg = pytest.importorskip("electromicro_dask.register")
pytest.importorskip("SimpleITK")

CENTER = np.array([23.5, 23.5, 23.5])


def _field(p, seed=0):
    rng = np.random.default_rng(seed)
    cent = rng.uniform(-4, 52, size=(60, 3))
    rad = rng.uniform(3, 7, 60)
    f = np.zeros(p.shape[:-1])
    for c, r in zip(cent, rad):
        d = np.sqrt(((p - c) ** 2).sum(-1))
        f = np.maximum(f, 0.5 * (1 - np.tanh((d - r) / 0.5)))
    return f


def _grid(n, h):
    ax = h * np.arange(n)
    return np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1)


def _pair(angles_deg, t_um, noise=(3.0, 4.0)):
    """X-ray-like fixed volume (1 um voxels, bright balls) and a neutron-like moving one
    (1.5 um voxels, dark balls) related by p_moving = R (p_fixed - c) + c + t."""
    rng = np.random.default_rng(1)
    pf = _grid(48, 1.0)
    fixed = 100 + 50 * _field(pf) + rng.normal(0, noise[0], pf.shape[:-1])
    R = reg._rotation_zyx(*np.radians(angles_deg))
    pm = _grid(32, 1.5)
    src = (pm - CENTER - np.asarray(t_um)) @ R + CENTER  # R^T (q - c - t) + c
    moving = 200 - 80 * _field(src) + rng.normal(0, noise[1], pm.shape[:-1])
    return (emd.as_volume(fixed.astype("float32"), voxel_size=1.0),
            emd.as_volume(moving.astype("float32"), voxel_size=1.5), R)


def _angle_error(r, R):
    return np.degrees(np.arccos(np.clip((np.trace(r.rotation.T @ R) - 1) / 2, -1, 1)))


@pytest.mark.parametrize("angles, t", [((1.5, 0.7, -1.0), (0.6, 1.7, -2.3)),
                                       ((14.0, -8.0, 6.0), (6.0, -9.0, 5.0))])
def test_recovers_known_transform_of_inverted_contrast_volume(angles, t):
    fixed, moving, R = _pair(angles, t)
    r = reg.register(fixed, moving)
    assert r.converged, r.reason
    # within 0.2 voxel of the fixed volume (1 um) and 0.3 degrees
    np.testing.assert_allclose(r.translation_um, t, atol=0.2)
    assert _angle_error(r, R) < 0.3
    assert r.shared_information > 0.15


@pytest.mark.parametrize("angles, t", [((14.0, -8.0, 6.0), (6.0, -9.0, 5.0)),
                                       ((18.0, 0.0, 0.0), (0.0, 12.0, -10.0))])
def test_far_start_without_prealignment_is_flagged(angles, t):
    fixed, moving, R = _pair(angles, t)
    r = reg.register(fixed, moving, prealign=False)
    assert _angle_error(r, R) > 5  # the optimiser alone stops in a wrong optimum ...
    assert not r.converged  # ... and says so
    assert "share" in r.reason
    # a rough start (1 degree, 1 um off per axis) does without the search
    rough = (np.asarray(angles) - 1.0, np.asarray(t) - 1.0)
    r2 = reg.register(fixed, moving, prealign=False, initial=rough)
    assert r2.converged, r2.reason
    np.testing.assert_allclose(r2.translation_um, t, atol=0.2)
    assert _angle_error(r2, R) < 0.3


def test_resample_matches_truth_and_is_chunk_invariant():
    fixed, moving, R = _pair((3.0, -2.0, 1.0), (1.0, -2.0, 1.5))
    r = reg.register(fixed, moving)
    a = reg.resample(moving, r, like=fixed.chunk({"z": 16, "y": 48, "x": 48})).values
    b = reg.resample(moving, r, like=fixed.chunk({"z": 13, "y": 20, "x": 48})).values
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-6)
    truth = 200 - 80 * _field(_grid(48, 1.0))
    ok = ~np.isnan(a)
    assert ok.mean() > 0.6
    # the neutron-like volume, brought onto the X-ray grid, shows the true (inverted) balls
    err = np.abs(a[ok] - truth[ok])
    assert np.median(err) < 6.0  # noise sigma 4 plus interpolation of 1.5 um voxels
    assert np.corrcoef(a[ok], truth[ok])[0, 1] > 0.95


def test_find_slice_finds_the_height_of_a_2d_map():
    rng = np.random.default_rng(2)
    vol = emd.as_volume((100 + 50 * _field(_grid(48, 1.0))
                         + rng.normal(0, 3, (48, 48, 48))).astype("float32"),
                        voxel_size=1.0, chunks=(10, 48, 48))
    for k in (7, 30):
        ax = np.arange(48.0)
        yx = np.stack(np.meshgrid(ax, ax, indexing="ij"), -1)
        p = np.concatenate([np.full(yx.shape[:-1] + (1,), k + 0.3), yx], axis=-1)
        image = 10 - 4 * _field(p) + rng.normal(0, 0.3, p.shape[:-1])  # other modality
        idx, scores = reg.find_slice(vol, image)
        assert abs(idx - k) <= 1
        assert scores.index.name == "z_um" and len(scores) == 48


def test_composite_is_red_xray_cyan_neutron():
    x = np.array([[0.0, 1.0], [0.0, 1.0]])
    n = np.array([[0.0, 0.0], [1.0, 1.0]])
    rgb = reg.composite(x, n, percentiles=(0, 100))
    np.testing.assert_allclose(rgb[0, 1], [1, 0, 0])  # X-ray only: red
    np.testing.assert_allclose(rgb[1, 0], [0, 1, 1])  # neutron only: cyan
    np.testing.assert_allclose(rgb[1, 1], [1, 1, 1])  # both: white


def test_bad_input():
    fixed, moving, _ = _pair((0, 0, 0), (0, 0, 0))
    with pytest.raises(InputError, match="fixed"):
        reg.register(np.zeros((8, 8, 8)), moving)
    bare = xr.DataArray(np.zeros((8, 8, 8), "float32"), dims=("z", "y", "x"))
    with pytest.raises(InputError, match="moving.*coordinates"):
        reg.register(fixed, bare)
    with pytest.raises(InputError, match="initial"):
        reg.register(fixed, moving, initial=((1, 2), (0, 0, 0)))
    with pytest.raises(InputError, match="image"):
        reg.find_slice(fixed, np.zeros((5, 5)))
    with pytest.raises(InputError, match="neutron"):
        reg.composite(np.zeros((2, 2)), np.zeros((3, 3)))


def _phase_of(p):
    """Analytic three-phase structure: balls (am 2) in shells (cbd 1) in pore (0)."""
    rng = np.random.default_rng(5)
    cent = rng.uniform(-1, 11, size=(25, 3))
    rad = rng.uniform(1.0, 2.2, 25)
    d = np.min(np.sqrt(((p[..., None, :] - cent) ** 2).sum(-1)) - rad, axis=-1)
    return np.where(d < 0, 2, np.where(d < 0.4, 1, 0)).astype(np.uint8)


def test_composition_from_a_registered_fine_volume():
    """FIB-SEM-like 0.1 um labels averaged into 0.73 um voxels (non-integer ratio) through
    a rotated, shifted registration, against the analytic composition."""
    ax = 0.05 + 0.1 * np.arange(100)
    fine = emd.as_volume(_phase_of(np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1)),
                         voxel_size=0.1, origin=0.05, chunks=50)
    fine.attrs["phases"] = {0: "pore", 1: "cbd", 2: "am"}
    coarse = emd.as_volume(np.zeros((10, 10, 10), "float32"), voxel_size=0.73, origin=1.0,
                           chunks=(4, 5, 10))
    R = reg._rotation_zyx(*np.radians([3.0, -2.0, 1.5]))
    c = np.array([4.3, 4.3, 4.3])
    t = np.array([0.3, -0.2, 0.25])
    r = reg.Registration(matrix=reg._homogeneous(R, t, c), translation_um=tuple(t),
                         center_um=tuple(c), converged=True, reason="", shared_information=1.0,
                         overlap=1.0, metric=0.0, iterations=0)
    comp = reg.composition(fine, r, like=coarse, samples=8)
    got = comp.composition.values
    assert comp.composition.dims == ("phase", "z", "y", "x")
    assert list(comp.phase.values) == ["pore", "cbd", "am"]
    np.testing.assert_allclose(got.sum(0), 1.0, atol=1e-6)
    assert float(comp.coverage.min()) == 1.0
    # truth: the analytic structure at 12^3 points per coarse voxel (not the 8^3 sub-grid
    # of the method), mapped the same way
    k = 12
    sub = (np.arange(k) + 0.5) / k - 0.5
    zc = coarse.z.values
    fz = (zc[:, None] + 0.73 * sub[None, :]).ravel()
    pts = np.stack(np.meshgrid(fz, fz, fz, indexing="ij"), -1)
    pts = r.apply(pts.reshape(-1, 3)).reshape(pts.shape)
    lab = _phase_of(pts).reshape(10, k, 10, k, 10, k)
    truth = np.stack([(lab == code).mean(axis=(1, 3, 5)) for code in (0, 1, 2)])
    mae = np.abs(got - truth).mean()
    assert mae < 0.02, mae
    other = reg.composition(fine.chunk(40), r, like=coarse.chunk(7), samples=8)
    np.testing.assert_array_equal(other.composition.values, got)


def test_similarity_recovers_scale_between_fine_and_coarse_volumes():
    """A FIB-SEM-like fine volume (0.3 um voxels, stated 2 % too small, rotated and shifted)
    inside a coarse tomogram-like volume (1 um voxels, other contrast)."""
    rng = np.random.default_rng(4)
    fixed = 100 + 50 * _field(_grid(48, 1.0)) + rng.normal(0, 3, (48, 48, 48))
    s_true, t_true = 0.98, np.array([1.3, -0.8, 2.1])
    R = reg._rotation_zyx(*np.radians([4.0, -1.5, 2.0]))
    q = _grid(100, 0.3) + 9.0  # the fine volume's stated coordinates: 9 to 38.7 um
    # q = s R (p - c) + c + t  =>  p = R^T (q - c - t) / s + c
    p = ((q - CENTER - t_true) @ R) / s_true + CENTER
    moving = 30 - 12 * _field(p) + rng.normal(0, 1.0, p.shape[:-1])
    fx = emd.as_volume(fixed.astype("float32"), voxel_size=1.0)
    mv = emd.as_volume(moving.astype("float32"), voxel_size=0.3, origin=9.0)
    r = reg.register(fx, mv, scale=True)
    assert r.converged, r.reason
    assert r.scale == pytest.approx(s_true, rel=0.004)
    assert _angle_error(r, R) < 0.5
    # within one coarse voxel where the two volumes overlap
    pts = _grid(8, 3.0) + 12.0
    truth = (pts - CENTER) @ (s_true * R).T + CENTER + t_true
    assert np.abs(r.apply(pts) - truth).max() < 1.0
    rigid = reg.register(fx, mv)  # without the scale the fit cannot be as close
    assert np.abs(rigid.apply(pts) - truth).max() > np.abs(r.apply(pts) - truth).max()


def _discs(p, seed=6):
    rng = np.random.default_rng(seed)
    cent = rng.uniform(0, 200, size=(400, 2))
    rad = rng.uniform(1.5, 5.0, 400)
    f = np.zeros(p.shape[:-1])
    for c, r in zip(cent, rad):
        d = np.sqrt(((p - c) ** 2).sum(-1))
        f = np.maximum(f, 0.5 * (1 - np.tanh((d - r) / 0.3)))
    return f


def test_locate_surface_scan_in_a_slice():
    """An SEM-like scan (0.1 um pixels, 40 x 40 um, rotated 3 degrees) located in a
    tomogram-like slice (0.64 um pixels) within two coarse pixels."""
    rng = np.random.default_rng(7)
    ax = 0.64 * np.arange(300)
    ref = _discs(np.stack(np.meshgrid(ax, ax, indexing="ij"), -1))
    ref = emd.as_volume(ref + rng.normal(0, 0.05, ref.shape), voxel_size=0.64)
    ai = 0.1 * np.arange(400)
    p = np.stack(np.meshgrid(ai, ai, indexing="ij"), -1)
    a = np.radians(3.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c_img, c_true = np.array([19.95, 19.95]), np.array([80.3, 105.7])
    img = _discs((p - c_img) @ rot.T + c_true)
    sem = emd.as_volume(2.0 * img + rng.normal(0, 0.1, img.shape), voxel_size=0.1)
    loc = reg.locate(sem, ref)
    assert np.hypot(*(np.array(loc.center_um) - c_true)) < 2 * 0.64
    assert abs(loc.angle_deg - 3.0) < 1.0
    assert loc.inliers >= 8 and loc.residual_um < 1.0
    from electromicro_dask.core.errors import ConvergenceError

    noise = emd.as_volume(rng.normal(size=(200, 200)), voxel_size=0.1)
    with pytest.raises(ConvergenceError, match="locate"):
        reg.locate(noise, ref)
    with pytest.raises(InputError, match="image"):
        reg.locate(np.zeros((5, 5)), ref)
