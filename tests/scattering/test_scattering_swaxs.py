"""Synthetic wound cell -> sinogram assembly -> reconstruction -> WAXS/SAXS maps, against
the cell's known truth (../shared/notes/swaxs.md, sections 6 and 7)."""

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

pytest.importorskip("skimage")

from electromicro_dask.errors import InputError  # noqa: E402
from electromicro_dask.scattering import (assemble, dominant_window, find_center,  # noqa: E402
                                          merge_subsets, normalize_i0, reconstruct,
                                          saxs_intensity, window_sums)
from electromicro_dask.synth.wound_cell import WOUND_CELL_PHASES, wound_cell  # noqa: E402

N, PX, BEAM = 96, 26.0, 20.0
KW = dict(size=N, pixel_um=PX, n_angles=90, n_saxs=40, n_waxs=400, beam_fwhm_um=BEAM)


@pytest.fixture(scope="module")
def cell():
    return wound_cell(center_offset_px=2.5, i0_drift=0.03, **KW)


@pytest.fixture(scope="module")
def clean():
    return wound_cell(**KW)


@pytest.fixture(scope="module")
def recon(cell):
    s = assemble(cell["sinogram"], cell["monitor"])
    return s, reconstruct(window_sums(s), method="sart", iterations=6,
                          library="scikit-image").compute()


def _interior(cell, margin_um=2 * BEAM):
    yy, xx = np.meshgrid(cell["y"].values, cell["x"].values, indexing="ij")
    cy, cx = cell.attrs["center_um"]
    r = np.hypot(yy - cy, xx - cx)
    return r < cell.attrs["radius_um"] - cell.attrs["wall_um"] - margin_um


def _truth_windows(cell, name):
    wp = window_sums(cell["profiles"])
    truth = np.tensordot(wp[name].values, cell["amount"].values, axes=1)
    # A Gaussian beam along t in every projection is an isotropic Gaussian blur of the image.
    return ndimage.gaussian_filter(truth, BEAM / 2.3548 / PX)


def test_wound_cell_truth(cell):
    amount = cell["amount"].values
    np.testing.assert_allclose(amount.sum(axis=0), 1.0, atol=1e-6)
    assert cell["sinogram"].dims == ("angle", "t", "q")
    assert list(cell["phase"].values) == list(WOUND_CELL_PHASES)
    # Archimedean pitch: about (1140 - 250) / 255 = 3 full turns.
    assert cell.attrs["n_turns"] == 3
    d = sorted(a["d_um"] for a in cell.attrs["agglomerates"])
    assert d == [20, 30, 40, 50, 60, 80, 100, 120]
    # The agglomerate disc is in the truth map where it was placed.
    big = max(cell.attrs["agglomerates"], key=lambda a: a["d_um"])
    iy, ix = round(big["y_um"] / PX), round(big["x_um"] / PX)
    assert cell["labels"].values[iy, ix] == WOUND_CELL_PHASES.index("si_agglomerate")
    # Interlaced subsets: acquisition order is not sorted; three subsets offset by step/3.
    ang = cell["angle"].values
    assert np.any(np.diff(ang) < 0)
    assert np.allclose(np.diff(np.sort(ang)), 2.0)


def test_wound_cell_chunk_invariant_noise():
    a = wound_cell(size=32, pixel_um=80.0, n_angles=12, n_saxs=10, n_waxs=20, noise=0.01,
                   radius_um=1100, chunks=5)["sinogram"].values
    b = wound_cell(size=32, pixel_um=80.0, n_angles=12, n_saxs=10, n_waxs=20, noise=0.01,
                   radius_um=1100, chunks=12)["sinogram"].values
    np.testing.assert_array_equal(a, b)


def test_merge_sorts_by_positioner_not_frame_order(cell):
    s = cell["sinogram"]
    subsets = [s.isel(angle=np.flatnonzero(cell["subset"].values == k)) for k in (2, 0, 1)]
    merged = merge_subsets(*subsets)
    ang = merged["angle"].values
    assert np.all(np.diff(ang) > 0) and ang.size == 90
    # Each row still holds the projection of its own angle.
    i = int(np.argmin(np.abs(cell["angle"].values - 62.0)))
    j = int(np.argmin(np.abs(ang - 62.0)))
    np.testing.assert_array_equal(s.isel(angle=i).values, merged.isel(angle=j).values)
    with pytest.raises(InputError, match="duplicates"):
        merge_subsets(subsets[0], subsets[0])
    with pytest.raises(InputError, match="positioner"):
        merge_subsets(s.drop_vars("angle"))


def test_center_of_rotation_found(cell, clean):
    assert abs(find_center(cell["sinogram"]) - 2.5) <= 0.5
    assert abs(find_center(clean["sinogram"])) <= 0.5


@pytest.mark.parametrize("use_monitor", [True, False])
def test_i0_drift_normalised(cell, clean, use_monitor):
    drifted = merge_subsets(cell["sinogram"].isel(t=slice(None)))
    ref = merge_subsets(clean["sinogram"])
    out = normalize_i0(drifted, cell["monitor"] if use_monitor else None)
    ws, wr = window_sums(out), window_sums(ref)
    for k in ("lic6", "nmc_delithiated"):
        # Per-projection window totals (the t shift of the axis moves no signal out).
        a, b = ws[k].sum("t").values, wr[k].sum("t").values
        raw = window_sums(drifted)[k].sum("t").values
        assert np.max(np.abs(raw / b - 1)) > 0.02  # the drift was there
        assert np.max(np.abs(a / b - 1)) <= 0.005


def test_reconstructed_channels_match_truth(cell, recon):
    _, rec = recon
    inside = _interior(cell)
    for k in ("lic6", "lic12", "graphite", "nmc_lithiated", "nmc_delithiated"):
        truth = _truth_windows(cell, k)
        r = rec[k].values
        assert np.abs(r - truth)[inside].mean() <= 0.05 * truth.max(), k
        assert np.corrcoef(r[inside], truth[inside])[0, 1] >= 0.95, k


def test_astra_and_scikit_image_sart_agree(cell, recon):
    # the seed's own SART (astra-toolbox, optional GPL extra) on the same geometry
    pytest.importorskip("astra")
    s, rec = recon
    ast = reconstruct(window_sums(s), method="sart", iterations=6, library="astra").compute()
    assert ast["lic6"].attrs["reconstruction"]["library"] == "astra"
    inside = _interior(cell)
    for k in ("lic6", "lic12", "graphite", "nmc_lithiated", "nmc_delithiated"):
        a, b = ast[k].values, rec[k].values
        assert np.abs(a - b)[inside].mean() <= 0.05 * b[inside].max(), k
        truth = _truth_windows(cell, k)
        assert np.corrcoef(a[inside], truth[inside])[0, 1] >= 0.95, k


def test_astra_geometry_matches_radon_for_odd_and_even_sizes():
    pytest.importorskip("astra")
    from skimage.transform import radon

    for n in (40, 41):
        img = np.zeros((n, n))
        img[6:18, 9:14] = 1.0
        img[25:31, 20:33] = 0.5
        ang = np.linspace(0, 180, 60, endpoint=False)
        s = xr.DataArray(radon(img, ang, circle=True).T, dims=("angle", "t"),
                         coords={"angle": ang, "t": np.arange(float(n))})
        rec = reconstruct(s, iterations=10, library="astra").compute().values
        # a half-pixel misplacement of the axis would cost far more than this
        assert np.abs(rec - img).mean() <= 0.01, n


def test_fbp_close_to_sart(cell, recon):
    s, rec = recon
    fbp = reconstruct(window_sums(s, {"lic6": (1.67, 1.73)}), method="fbp").compute()
    inside = _interior(cell)
    truth = _truth_windows(cell, "lic6")
    assert np.corrcoef(fbp["lic6"].values[inside], truth[inside])[0, 1] >= 0.95
    assert fbp["lic6"].dims == ("y", "x")


def test_waxs_labels_match_truth(cell, recon):
    _, rec = recon
    amount = cell["amount"]
    groups = {"anode": ("lic6", "lic12", "graphite"),
              "cathode": ("nmc_lithiated", "nmc_delithiated")}
    inside = _interior(cell)
    for names in groups.values():
        a = np.stack([amount.sel(phase=n).values for n in names])
        total = a.sum(axis=0)
        # Voxels of one phase whose 5x5 neighbourhood holds a single state (away from state
        # boundaries by two beam widths) and enough material to be labelled.
        pure = [ndimage.uniform_filter(a[i], 5) >= 0.95 * ndimage.uniform_filter(total, 5)
                for i in range(len(names))]
        truth = np.zeros(total.shape, int)
        for i, p in enumerate(pure):
            truth[p & (total >= 0.5)] = i + 1
        sel = inside & (truth > 0)
        lab = dominant_window(rec, names).values
        assert sel.sum() > 50
        assert (lab[sel] == truth[sel]).mean() >= 0.95, names


def test_saxs_intensity_linear_in_amplitude():
    kw = dict(size=64, pixel_um=40.0, n_angles=45, n_saxs=60, n_waxs=20)
    maps = []
    for amp in (1.0, 3.0):
        c = wound_cell(saxs_amplitude=amp, **kw)
        s = assemble(c["sinogram"], c["monitor"], center=0.0)
        maps.append(reconstruct(saxs_intensity(s), method="sart", iterations=3).compute())
    inside = _interior(c)
    ratio = maps[1].values[inside].sum() / maps[0].values[inside].sum()
    assert abs(ratio / 3.0 - 1) <= 0.10
    # Agglomerates (3x amplitude) are brighter than the regular anode.
    assert maps[0].values.max() > 0


def test_window_outside_range_raises(cell):
    with pytest.raises(InputError, match="windows"):
        window_sums(cell["sinogram"], {"far": (8.0, 9.0)})


def test_reconstruct_rejects_unsorted_and_bad_method(cell):
    with pytest.raises(InputError, match="sorted"):
        reconstruct(cell["sinogram"].isel(q=0))
    s = merge_subsets(cell["sinogram"]).isel(q=0)
    with pytest.raises(InputError, match="method"):
        reconstruct(s, method="art")
    with pytest.raises(InputError, match="library"):
        reconstruct(s, library="tomopy")
    assert isinstance(reconstruct(s, method="fbp"), xr.DataArray)


def test_d_star_map_region_medians():
    # Notes 7, item 18: region medians 14 +- 0.5 nm (lithiated anode), 11 +- 0.5 nm
    # (agglomerates), from per-q FBP reconstructions of linear SAXS bins.
    from electromicro_dask.scattering import d_star

    c = wound_cell(size=96, pixel_um=26.0, n_angles=90, n_saxs=300, n_waxs=10)
    s = assemble(c["sinogram"], c["monitor"]).sel(q=slice(0, 0.7))
    rec = reconstruct(s, method="fbp", q_chunk=50)
    d = d_star(rec)["d_star_nm"].values
    am = c["amount"]
    regular = (am.sel(phase="lic6") + am.sel(phase="lic12")).values > 0.6
    agglomerate = am.sel(phase="si_agglomerate").values > 0.8
    poor = am.sel(phase="graphite").values > 0.6
    assert agglomerate.sum() >= 10
    assert abs(np.nanmedian(d[regular]) - 14.0) <= 0.5
    assert abs(np.nanmedian(d[agglomerate]) - 11.0) <= 0.5
    # The poorly lithiated anode is a pure power law: mostly no d*.
    assert np.isnan(d[poor]).mean() >= 0.5


def test_unrolling_casing_and_pitch():
    from electromicro_dask.scattering import find_casing, polar_unroll, winding_pitch

    # The scan must cover the casing with a margin (here 9 pixels each side).
    cell = wound_cell(size=96, pixel_um=26.0, n_angles=90, n_saxs=10, n_waxs=400,
                      radius_um=1000.0, mandrel_um=200.0, agglomerates=(), i0_drift=0.03)
    s = assemble(cell["sinogram"], cell["monitor"])
    ws = window_sums(s, {"casing": (3.07, 3.13), "cu": (2.98, 3.04)})
    rec = reconstruct(ws, method="sart", iterations=3).compute()
    cas = find_casing(rec["casing"], (800, 1100))
    cy, cx = cell.attrs["center_um"]
    assert np.hypot(cas["center_y_um"] - cy, cas["center_x_um"] - cx) <= PX
    # "ridge" gives the mid-line of the wall (a 60 um wall is 2.3 pixels here).
    mid = cell.attrs["radius_um"] - cell.attrs["wall_um"] / 2
    assert abs(cas["radius_um"] / mid - 1) <= 0.01
    u = polar_unroll(rec["cu"], (cas["center_y_um"], cas["center_x_um"]),
                     r_max_um=cell.attrs["radius_um"] - cell.attrs["wall_um"],
                     r_min_um=cell.attrs["mandrel_um"], n_angles=360, dr_um=2.0)
    assert u.dims == ("angle", "r") and u["r"].attrs["units"] == "um"
    assert abs(winding_pitch(u) - cell.attrs["pitch_um"]) <= 5.0


def test_unwind_spiral_straightens_the_layers():
    from electromicro_dask.scattering import unwind_spiral

    c = wound_cell(size=192, pixel_um=12.0, n_angles=12, n_saxs=5, n_waxs=5, radius_um=1100.0,
                   mandrel_um=200.0, agglomerates=())
    cu = c["amount"].sel(phase="cu", drop=True)
    r0, pitch = c.attrs["mandrel_um"], c.attrs["pitch_um"]
    r1 = c.attrs["radius_um"] - c.attrs["wall_um"]
    strip = unwind_spiral(cu, c.attrs["center_um"], pitch, (r0, r1))
    assert strip.dims == ("u", "s") and strip.attrs["sense"] == 1
    # the Cu foil lies 65-75 um into every turn of the synthetic stack: one straight band
    u = strip["u"].values
    valid = strip.notnull().all("u").values & (strip.sum("u").values > 0)
    peak = u[np.nanargmax(strip.values[:, valid], axis=0)]
    assert abs(np.median(peak) - 70.0) <= 6.0  # half a pixel
    assert np.mean(np.abs(peak - 70.0) <= 12.0) >= 0.95
    # arc length of r = r0 + b theta, analytically (b/2)[phi sqrt(1 + phi^2) + asinh phi]
    b = pitch / (2 * np.pi)
    th1 = 2 * np.pi * strip.attrs["n_turns"]

    def primitive(phi):
        return 0.5 * b * (phi * np.sqrt(1 + phi**2) + np.arcsinh(phi))

    exact = primitive((r0 + b * th1) / b) - primitive(r0 / b)
    assert abs(strip.attrs["length_um"] / exact - 1) <= 1e-4
    # the mirror image winds the other way, and is found to
    mirrored = cu.copy(data=cu.values[:, ::-1])
    cy, cx = c.attrs["center_um"]
    xs = cu["x"].values
    m = unwind_spiral(mirrored, (cy, xs[0] + xs[-1] - cx), pitch, (r0, r1))
    assert m.attrs["sense"] == -1
    with pytest.raises(InputError, match="pitch_um"):
        unwind_spiral(cu, c.attrs["center_um"], -1.0, (r0, r1))
    with pytest.raises(InputError, match="r_range_um"):
        unwind_spiral(cu, c.attrs["center_um"], pitch, (r1, r0))


def test_find_casing_refines_hough_on_offcentre_ring():
    from electromicro_dask.scattering import find_casing

    yy, xx = np.mgrid[:160, :160]
    r = np.hypot(yy - 77.3, xx - 83.6)
    coords = {"y": np.arange(160) * 5.0, "x": np.arange(160) * 5.0}
    thin = xr.DataArray(((r > 60) & (r < 63)).astype(float), dims=("y", "x"), coords=coords)
    c = find_casing(thin, (250, 350))  # "ridge": the wall's mid-line, 61.5 pixels
    assert abs(c["center_y_um"] - 77.3 * 5) <= 5 and abs(c["center_x_um"] - 83.6 * 5) <= 5
    assert abs(c["radius_um"] / (61.5 * 5) - 1) <= 0.01
    img = xr.DataArray(((r > 50) & (r < 65)).astype(float), dims=("y", "x"), coords=coords)
    e = find_casing(img, (200, 350), feature="edge")  # a thick wall: its outer surface
    assert abs(e["center_y_um"] - 77.3 * 5) <= 5 and abs(e["center_x_um"] - 83.6 * 5) <= 5
    assert abs(e["radius_um"] / (65 * 5) - 1) <= 0.01
    with pytest.raises(InputError, match="image"):
        find_casing(img.rename(y="t"), (250, 350))


def test_agglomerates_sized_and_classified():
    from electromicro_dask.scattering import agglomerates, size_distribution

    c = wound_cell(size=256, pixel_um=10.0, n_angles=120, n_saxs=40, n_waxs=5,
                   beam_fwhm_um=10.0, n_lognormal=25, seed=3)
    s = assemble(c["sinogram"], c["monitor"], center=0.0)
    m = reconstruct(saxs_intensity(s), method="sart", iterations=6).compute()
    lab, table = agglomerates(m)
    assert table.attrs["threshold_quantity"] == "d_eq_um"
    assert lab.max() == len(table)
    known = [a for a in c.attrs["agglomerates"] if a["population"] == "known"]
    assert len(known) == 8
    for a in known:
        dist = np.hypot(table["y_um"] - a["y_um"], table["x_um"] - a["x_um"])
        i = int(np.argmin(dist))
        if a["d_um"] >= 40:
            assert dist[i] <= 10
            assert abs(table["d_eq_um"][i] - a["d_um"]) <= max(7.0, 0.12 * a["d_um"])
        if a["d_um"] >= 60:
            assert table["above_threshold"][i]
        if a["d_um"] <= 40 and dist[i] <= a["d_um"] / 2:
            assert not table["above_threshold"][i]
    logn = [a for a in c.attrs["agglomerates"] if a["population"] == "lognormal"]
    found = []
    for a in logn:
        dist = np.hypot(table["y_um"] - a["y_um"], table["x_um"] - a["x_um"])
        i = int(np.argmin(dist))
        if dist[i] <= a["d_um"] / 2:
            found.append(i)
    assert len(found) >= 0.8 * len(logn)
    dist = size_distribution(table.iloc[found], quantity="r_eq_um")
    assert abs(dist["median"] - 20.0) <= 3.0
