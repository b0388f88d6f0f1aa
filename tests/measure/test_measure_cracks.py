"""Crack fraction and contact area on geometries with known answers."""
import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.measure.cracks import contact_area, crack_fraction


def _seg(im, phases, chunks="auto"):
    seg = emd.as_volume(np.asarray(im, "uint8"), voxel_size=0.2, chunks=chunks)
    seg.attrs["phases"] = phases
    return seg


def test_crack_fraction_counts_voxels():
    im = np.zeros((20, 20, 20), "uint8")
    im[2:18, 2:18, 2:18] = 2          # particle, 16^3 voxels
    im[9:11, 2:18, 2:18] = 3          # a 2-voxel crack through it
    seg = _seg(im, {0: "pore", 2: "am", 3: "crack"}, chunks=(7, 9, 11))
    assert crack_fraction(seg) == pytest.approx(2 / 16)


def test_contact_area_hemisphere_coating():
    # a ball of radius 16 voxels whose upper half (z > centre) is covered by CBD: half of
    # the particle surface touches CBD
    n = 48
    z, y, x = np.ogrid[:n, :n, :n]
    c = (23.6, 24.2, 23.9)
    r2 = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2
    im = np.zeros((n, n, n), "uint8")
    im[(r2 <= 20**2) & (z > c[0])] = 1
    im[r2 <= 16**2] = 2
    seg = _seg(im, {0: "pore", 1: "cbd", 2: "am"}, chunks=(13, 17, 11))
    assert contact_area(seg, "am", "cbd") == pytest.approx(0.5, abs=0.02)
    assert contact_area(seg, "am", "cbd") + contact_area(seg, "am", "pore") == pytest.approx(1)


def test_errors():
    seg = _seg(np.zeros((4, 4, 4)), {0: "pore", 2: "am"})
    with pytest.raises(InputError, match="crack"):
        crack_fraction(seg)
    with pytest.raises(InputError, match="b"):
        contact_area(seg, "am", "am")
