"""Phase size distribution, porosimetry and constrictivity against PoreSpy and geometry."""
import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.measure.sizes import (constrictivity, phase_size_distribution,
                                             porosimetry)


def _seg(im, phases, voxel=1.0, chunks="auto"):
    seg = emd.as_volume(np.asarray(im, "uint8"), voxel_size=voxel, chunks=chunks)
    seg.attrs["phases"] = phases
    return seg


@pytest.fixture(scope="module")
def pores():
    # pores as a union of balls of radius 3..7 voxels: sizes well above one voxel
    rng = np.random.default_rng(7)
    shape = (40, 36, 34)
    im = np.zeros(shape, bool)
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    for _ in range(28):
        c = rng.uniform(0, shape)
        r = rng.uniform(3, 7)
        im |= (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r
    return im


def test_local_thickness_equals_porespy(pores):
    # Same convention as porespy.filters.local_thickness(method="dt"): centres dt >= r,
    # covered at distance < r, largest radius wins; outer faces are not walls.
    ps = pytest.importorskip("porespy")
    seg = _seg(pores, {0: "am", 1: "pore"}, chunks=(19, 17, 23))
    psd = phase_size_distribution(seg, "pore")
    radii = psd.curve.radius_um.to_numpy()
    assert radii.max() >= 5
    ref = ps.filters.local_thickness(pores, sizes=radii.astype(int), method="dt")
    np.testing.assert_array_equal(psd.local_thickness.values, ref)
    frac = [(ref >= r).sum() / pores.sum() for r in radii]
    np.testing.assert_allclose(psd.curve.fraction.to_numpy(), frac)


def _porespy_intrusion(im, radii):
    """PoreSpy's intrusion map from the first slice, at our radii (integer voxels)."""
    ps = pytest.importorskip("porespy")
    inlets = np.zeros_like(im)
    inlets[0] = True
    return ps.filters.porosimetry(im, inlets=inlets, sizes=radii.astype(int), method="dt")


def test_porosimetry_equals_porespy(pores):
    seg = _seg(pores, {0: "am", 1: "pore"}, chunks=(19, 17, 23))
    mip = porosimetry(seg, "pore", inlet="z0")
    ref = _porespy_intrusion(pores, mip.curve.radius_um.to_numpy())
    np.testing.assert_array_equal(mip.intrusion.values, ref)


def test_chunk_invariance(pores):
    seg = _seg(pores, {0: "am", 1: "pore"}, voxel=(0.4, 0.3, 0.3))
    whole_psd = phase_size_distribution(seg.chunk({"z": 40, "y": 36, "x": 34}), "pore")
    whole_mip = porosimetry(seg.chunk({"z": 40, "y": 36, "x": 34}), "pore", inlet="x1")
    part = seg.chunk({"z": 9, "y": 17, "x": 13})
    psd = phase_size_distribution(part, "pore")
    np.testing.assert_array_equal(psd.local_thickness.values,
                                  whole_psd.local_thickness.values)
    assert psd.r_max == whole_psd.r_max
    for chunks in [(21, 13, 34)]:
        part = seg.chunk(dict(zip(seg.dims, chunks)))
        mip = porosimetry(part, "pore", inlet="x1")
        np.testing.assert_array_equal(mip.intrusion.values, whole_mip.intrusion.values)
        np.testing.assert_equal(mip.r_min, whole_mip.r_min)
        np.testing.assert_array_equal(mip.curve.to_numpy(), whole_mip.curve.to_numpy())


def test_porosimetry_path_winding_back_across_blocks():
    # A U-shaped pore: up a wide column from the inlet, over, and down a second column to
    # a chamber next to the inlet (walled off from it). The chamber is reached only through
    # the narrow down-leg, so the widest path crosses every z block border twice.
    im = np.zeros((48, 40, 16), bool)
    im[:44, 2:14, 2:14] = True          # up-leg, half-width 6, open at the inlet z = 0
    im[36:44, 2:38, 4:12] = True        # bridge at the top
    im[6:44, 30:36, 4:10] = True        # down-leg, half-width 3
    im[2:14, 22:38, 1:15] = True        # chamber, reached only from the down-leg
    im[:2, 22:38] = False
    seg = _seg(im, {0: "am", 1: "pore"}, chunks=(7, 13, 16))
    mip = porosimetry(seg, "pore", inlet="z0")
    ref = _porespy_intrusion(im, mip.curve.radius_um.to_numpy())
    np.testing.assert_array_equal(mip.intrusion.values, ref)
    # the chamber admits balls of radius 6 but fills only at the down-leg's radius
    chamber = mip.intrusion.values[4:12, 24:36, 3:13]
    assert 0 < chamber.max() <= 3.0
    # the same structure upside down, intruded from the last slice
    flipped = porosimetry(_seg(im[::-1], {0: "am", 1: "pore"}, chunks=(9, 13, 16)), "pore",
                          inlet="z1")
    np.testing.assert_array_equal(flipped.intrusion.values[::-1], ref)


def test_slab_and_bottleneck_geometry():
    # a pore slab 10 voxels thick: every pore voxel is covered by balls of radius 5
    im = np.zeros((30, 20, 20), "uint8")
    im[10:20] = 1
    psd = phase_size_distribution(_seg(im, {0: "am", 1: "pore"}, voxel=(0.5, 0.25, 0.25)),
                                  "pore")
    assert psd.r_max == pytest.approx(2.5)
    assert psd.curve.fraction.iloc[-1] == 1.0
    # channel of half-width 6 along z with a 2-voxel-half-width neck in the middle:
    # the neck stops balls wider than it, so r_min < r_max and beta < 1
    ch = np.zeros((40, 20, 20), "uint8")
    ch[:, 4:16, 4:16] = 1
    ch[19:21] = 0
    ch[19:21, 8:12, 8:12] = 1
    seg = _seg(ch, {0: "am", 1: "pore"}, chunks=(11, 20, 20))
    c = constrictivity(seg, "pore", inlet="z0")
    assert c.r_max == pytest.approx(6.0, abs=0.5)
    assert c.r_min < c.r_max
    assert c.beta == pytest.approx((c.r_min / c.r_max) ** 2)
    assert 0 < c.beta < 1
    straight = np.zeros((40, 20, 20), "uint8")
    straight[:, 4:16, 4:16] = 1
    assert constrictivity(_seg(straight, {0: "am", 1: "pore"}), "pore").beta == 1.0


def test_errors():
    seg = _seg(np.zeros((6, 6, 6)), {0: "pore", 1: "am"})
    with pytest.raises(InputError, match="phase"):
        phase_size_distribution(seg, "cbd")
    with pytest.raises(InputError, match="inlet"):
        porosimetry(seg, "pore", inlet="q0")
    with pytest.raises(InputError, match="radii_um"):
        phase_size_distribution(seg, "pore", radii_um=[-1.0])
