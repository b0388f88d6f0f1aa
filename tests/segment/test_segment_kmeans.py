"""k-means trinarization of seed 002 section 3.2."""

import numpy as np
import pytest

from electromicro_dask import as_volume, measure, segment
from electromicro_dask.core.errors import InputError
from electromicro_dask.synth.correlative import correlative


@pytest.fixture(scope="module")
def sample():
    ds = correlative((20, 20, 20), factor=3, seed=0).compute()
    f = dict(zip(["pore", "cbd", "am"], ds["composition"].mean(("z", "y", "x")).values.tolist()))
    return ds, f


def test_features_match_sorted_neighbour_groups(rng):
    img = rng.random((5, 6, 7)).astype(np.float32)
    F = segment.kmeans_features(as_volume(img, voxel_size=1.0)).values
    z, y, x = 2, 3, 4
    groups = {1: [], 2: [], 3: []}
    for dz, dy, dx in np.ndindex(3, 3, 3):
        d = np.array([dz, dy, dx]) - 1
        n = int(np.abs(d).sum())
        if n:
            groups[n].append(img[z + d[0], y + d[1], x + d[2]])
    expect = [img[z, y, x]] + sorted(groups[1]) + sorted(groups[2]) + sorted(groups[3])
    np.testing.assert_allclose(F[:, z, y, x], expect)
    # mirrored faces, as numpy's "symmetric" padding
    padded = np.pad(img, 1, mode="symmetric")
    assert F[0, 0, 0, 0] == img[0, 0, 0]
    assert F[1:7, 0, 0, 0].min() == min(padded[0, 1, 1], padded[1, 0, 1], padded[1, 1, 0],
                                        padded[2, 1, 1], padded[1, 2, 1], padded[1, 1, 2])


def test_fractions_and_chunk_invariance(sample):
    ds, f = sample
    a = segment.kmeans(ds["grey"].chunk({"z": 7, "y": 9, "x": 20}), f, sample_voxels=4000)
    b = segment.kmeans(ds["grey"].chunk({"z": 20, "y": 20, "x": 20}), f, sample_voxels=4000)
    va, vb = a.values, b.values
    assert np.array_equal(va, vb)
    vf = measure.volume_fractions(a)
    for p in f:
        assert abs(vf[p] - f[p]) < 0.005
    # better than chance against the truth, and AM (high contrast) well recovered
    j = measure.compare(a, ds["truth"])["jaccard"]
    assert j["am"] > 0.7 and j["pore"] > 0.7
    assert set(a.attrs["weights"]) == {"w_am", "w_cbd", "w_pore", "x_own", "x_face",
                                       "x_edge", "x_corner"}


def test_bad_fractions(sample):
    ds, _ = sample
    with pytest.raises(InputError, match="fractions"):
        segment.kmeans(ds["grey"], {"pore": 0.3, "cbd": 0.3, "am": 0.3})
    with pytest.raises(InputError, match="image"):
        segment.kmeans(ds["grey"].isel(z=0), {"pore": 0.3, "cbd": 0.2, "am": 0.5})
