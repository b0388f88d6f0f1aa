"""Fragmented (slurry) and fibrillar (dry-coated) CBD of seed 001 Fig. 6: the largest
aggregate's share against scipy.ndimage.label on the whole array, and the two kinds apart."""

import numpy as np
import pytest
from scipy import ndimage

from electromicro_dask import measure, synth
from electromicro_dask.core.errors import InputError


@pytest.fixture(scope="module")
def electrode():
    return synth.electrode((48, 48, 48), 0.25, particle_radius_um=(1.5, 0.3), seed=1)["phases"]


def _largest_scipy(v):
    lab, _ = ndimage.label(v == 1)  # 6-connectivity, as measure.connectivity(connectivity=1)
    sizes = np.bincount(lab.ravel())[1:]
    return sizes.max() / sizes.sum()


def test_fragmented_and_fibrillar_told_apart_and_equal_scipy(electrode):
    share, amount = {}, {}
    for kind in ("fragmented", "fibrillar"):
        s = synth.cbd_morphology(electrode.chunk(24), kind, seed=2)
        v = s.values
        amount[kind] = float((v == 1).mean())
        share[kind] = measure.connectivity(s, "cbd").largest_cluster_fraction
        assert share[kind] == pytest.approx(_largest_scipy(v), abs=1e-12)
        # the rest of the electrode is untouched; the CBD lies in the old pore space
        old = electrode.values
        assert np.array_equal(v == 2, old == 2)
        other = synth.cbd_morphology(electrode.chunk({"z": 20, "x": 17}), kind, seed=2).values
        np.testing.assert_array_equal(v, other)
    assert abs(amount["fragmented"] - amount["fibrillar"]) <= 0.03
    assert share["fibrillar"] >= 0.5 and share["fragmented"] <= 0.25, share


def test_bad_input(electrode):
    with pytest.raises(InputError, match="kind"):
        synth.cbd_morphology(electrode, "woven")
    with pytest.raises(InputError, match="cbd_fraction"):
        synth.cbd_morphology(electrode, cbd_fraction=0.9)
