"""Phase connectivity against scipy.ndimage.label on the whole array."""
import numpy as np
import pytest
from scipy import ndimage as ndi

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.measure.connectivity import connectivity


def _seg(im, phases, chunks="auto"):
    seg = emd.as_volume(np.asarray(im, "uint8"), voxel_size=0.5, chunks=chunks)
    seg.attrs["phases"] = phases
    return seg


def _reference(mask, axis, conn):
    lab, n = ndi.label(mask, ndi.generate_binary_structure(mask.ndim, conn))
    sizes = np.bincount(lab.ravel())[1:].astype(float)
    f0 = set(np.unique(np.take(lab, 0, axis=axis))) - {0}
    f1 = set(np.unique(np.take(lab, -1, axis=axis))) - {0}
    ids = np.arange(1, n + 1)
    both = np.array([i in f0 and i in f1 for i in ids])
    one = np.array([(i in f0) != (i in f1) for i in ids])
    tot = sizes.sum()
    return (n, sizes.max() / tot, sizes[both].sum() / tot, sizes[one].sum() / tot,
            sizes[~both & ~one].sum() / tot)


@pytest.mark.parametrize("conn", [1, 3])
def test_matches_scipy_label(conn):
    rng = np.random.default_rng(conn)
    f = ndi.gaussian_filter(rng.random((30, 26, 22)), 1.2)
    im = np.digitize(f, np.quantile(f, [0.55, 0.75])).astype("uint8")  # cbd is sparse
    for chunks in [(7, 9, 5)]:
        for axis, ax in (("z", 0), ("x", 2)):
            c = connectivity(_seg(im, {0: "pore", 1: "cbd", 2: "am"}, chunks=chunks), "cbd",
                             axis=axis, connectivity=conn)
            ref = _reference(im == 1, ax, conn)
            got = (c.n_clusters, c.largest_cluster_fraction, c.percolating_fraction,
                   c.dead_end_fraction, c.isolated_fraction)
            assert got[0] == ref[0]
            np.testing.assert_allclose(got[1:], ref[1:], rtol=1e-12)
            assert sum(got[2:]) == pytest.approx(1.0)


def test_empty_phase_and_errors():
    seg = _seg(np.zeros((5, 5, 5)), {0: "pore", 1: "cbd"})
    c = connectivity(seg, "cbd")
    assert c.n_clusters == 0 and np.isnan(c.largest_cluster_fraction)
    with pytest.raises(InputError, match="connectivity"):
        connectivity(seg, "pore", connectivity=4)
    with pytest.raises(InputError, match="axis"):
        connectivity(seg, "pore", axis="t")
