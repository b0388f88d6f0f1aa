"""Parameter sets: the thickness-similar set of a thin slab."""

import numpy as np
import pytest

from electromicro_dask.core import as_segmentation
from electromicro_dask.echem import chen2020, discharge, thickness_similar
from electromicro_dask.echem.fitting import mean_voltage_penalty
from electromicro_dask.errors import InputError

torch = pytest.importorskip("torch")


def _columns(dz_um):
    # AM and CBD columns beside a pore column, uniform through the thickness: the same
    # structure per unit length at any z spacing.
    a = np.broadcast_to(np.array([2, 2, 1, 0], "uint8"), (16, 1, 4)).copy()
    return as_segmentation(a, phases={0: "pore", 1: "cbd", 2: "am"},
                           voxel_size=(dz_um, 2.0, 2.0))


def test_a_thinner_slab_discharges_like_the_electrode():
    # A slab half as thick, at half the current, with the transport coefficients scaled by
    # ratio^2, is the same dimensionless problem: the curves coincide (Newman & Tiedemann
    # 1975). Without the scaling the slab is far less transport-limited.
    p = chen2020(d_s=1e-13)
    kw = dict(cutoff=3.5, area_factor=1.0, device="cpu")
    full = discharge(_columns(4.0), current=8.0, parameters=p, separator=40.0, **kw)
    slab = discharge(_columns(2.0), current=4.0, parameters=thickness_similar(p, 0.5),
                     separator=20.0, **kw)
    assert slab.capacity == pytest.approx(full.capacity, rel=0.01)
    assert abs(mean_voltage_penalty(full, slab)) < 2e-3
    plain = discharge(_columns(2.0), current=4.0, parameters=p, separator=20.0, **kw)
    assert plain.capacity > 1.05 * full.capacity


def test_thickness_similar_scales_and_rejects():
    p = chen2020()
    s = thickness_similar(p, 0.25)
    c = torch.tensor([1000.0], dtype=torch.float64)
    assert float(s.kappa_e(c, 298.15)) == pytest.approx(float(p.kappa_e(c, 298.15)) / 16)
    assert float(s.d_e(c, 298.15)) == pytest.approx(float(p.d_e(c, 298.15)) / 16)
    assert s.separator_thickness == pytest.approx(p.separator_thickness / 4)
    assert s.summary()["d_e"].startswith("0.0625 x ")
    assert thickness_similar(p, 1.0) is p
    for bad in (0.0, 1.5, "half"):
        with pytest.raises(InputError, match="ratio"):
            thickness_similar(p, bad)
