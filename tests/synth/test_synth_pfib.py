"""Synthetic PFIB-SEM data: truth, chunk invariance, the pore-back artefact (issue 13)."""

import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.synth.pfib import pfib_electrode, pfib_stack

SHAPE = (24, 48, 48)
VOX = (0.1, 0.05, 0.05)
KW = dict(particle_radius_um=(0.8, 0.15), crack_width_um=0.15, crack_margin_um=0.2, seed=3)


@pytest.fixture(scope="module")
def pristine():
    return pfib_electrode(SHAPE, VOX, chunks=(24, 48, 48), **KW)


def _crack_share(ph):
    return (ph == 3).sum() / ((ph == 3).sum() + (ph == 2).sum())


def test_phases_and_crack_fraction(pristine):
    ph = pristine["phases"].values
    assert pristine["phases"].attrs["phases"] == {0: "pore", 1: "cbd", 2: "am", 3: "crack"}
    assert set(np.unique(ph)) == {0, 1, 2, 3}
    # Calibrated on a random sample of voxel centres: realised within 10 % of the target.
    assert abs(_crack_share(ph) - 0.04) < 0.004
    # Cracks lie inside particles (particle ids cover them) and away from pore/CBD.
    assert (pristine["particles"].values[ph == 3] > 0).all()


def test_chunk_invariance(pristine):
    odd = pfib_electrode(SHAPE, VOX, chunks=(7, 19, 23), **KW)
    ref = pristine["phases"].values
    np.testing.assert_array_equal(odd["phases"].values, ref)
    a = pfib_stack(pristine["phases"]).values
    b = pfib_stack(odd["phases"]).values
    np.testing.assert_array_equal(a, b)


def test_cycling_grows_cracks(pristine):
    cyc = pfib_electrode(SHAPE, VOX, cycling=0.5, chunks=(24, 48, 48), **KW)
    ratio = _crack_share(cyc["phases"].values) / _crack_share(pristine["phases"].values)
    assert 1.3 < ratio < 1.7


def test_pore_back_matches_column_model():
    # Independent per-column reference of the renderer's artefact on a hand-made stack:
    # pore voxels show gain * (solid - pore) * attenuation**(d - 1) above the pore level,
    # d = slices to the first solid voxel behind, up to the depth limit.
    ph = np.zeros((20, 4, 5), np.uint8)
    ph[12:, :, :2] = 2          # AM behind, from slice 12
    ph[5:7, :, 2:4] = 1         # CBD block at slices 5-6
    seg = emd.as_volume(ph, voxel_size=VOX, chunks=(6, 4, 5))
    seg.attrs["phases"] = {0: "pore", 1: "cbd", 2: "am"}
    img = pfib_stack(seg, texture=0, noise=0, curtaining=0, pore_back_depth_voxels=8,
                     pore_back_gain=0.5, pore_back_attenuation=0.9).values
    grey = {0: 0.10, 1: 0.45, 2: 0.80}
    exp = np.zeros(ph.shape)
    for y in range(4):
        for x in range(5):
            col = ph[:, y, x]
            for k in range(20):
                if col[k]:
                    exp[k, y, x] = grey[col[k]]
                    continue
                behind = np.nonzero(col[k + 1:])[0]
                d = behind[0] + 1 if len(behind) else 99
                exp[k, y, x] = 0.1 + (0.5 * (grey[col[k + d]] - 0.1) * 0.9 ** (d - 1)
                                      if d <= 8 else 0.0)
    np.testing.assert_allclose(img, exp, atol=1e-6)
    assert img[11, 0, 0] > img[3, 0, 0] == pytest.approx(0.1)


def test_bad_input(pristine):
    with pytest.raises(InputError, match="crack_fraction"):
        pfib_electrode(SHAPE, VOX, crack_fraction=0.6, **KW)
    with pytest.raises(InputError, match="pore_back_attenuation"):
        pfib_stack(pristine["phases"], pore_back_attenuation=0)


def test_detach_cbd_removes_the_requested_share_of_contact_chunk_invariantly():
    from electromicro_dask import measure
    from electromicro_dask.synth import detach_cbd, pfib_electrode

    seg = pfib_electrode((32, 96, 96), (0.1, 0.05, 0.05), particle_radius_um=(0.8, 0.15),
                         crack_width_um=0.15, crack_margin_um=0.2, seed=2,
                         chunks=(32, 48, 48))["phases"].persist()
    base = measure.contact_area(seg, "am", "cbd")
    for loss in (0.1, 0.2):
        cut = detach_cbd(seg, loss, gap_voxels=3, cell_voxels=8, seed=4)
        other = detach_cbd(seg.chunk({"z": 20, "y": 40, "x": 50}), loss, gap_voxels=3,
                           cell_voxels=8, seed=4)
        np.testing.assert_array_equal(cut.values, other.values)
        rel = measure.contact_area(cut, "am", "cbd") / base - 1
        assert rel == pytest.approx(-loss, abs=0.03), rel
        # only CBD next to the particles turned into pore; AM and cracks untouched
        changed = cut.values != seg.values
        assert (seg.values[changed] == 1).all() and (cut.values[changed] == 0).all()
    with pytest.raises(InputError, match="loss"):
        detach_cbd(seg, 1.5)
