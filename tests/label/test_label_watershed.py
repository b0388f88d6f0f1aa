"""watershed: chunked against single-chunk runs, and against synth.electrode's true particles."""

import numpy as np
import pandas as pd
import pytest

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.label import regionprops, watershed

PHASES = {0: "pore", 1: "cbd", 2: "am"}


def _seg(values, chunks, voxel=0.5):
    return emd.as_segmentation(emd.as_volume(values, voxel_size=voxel, chunks=chunks),
                               phases=PHASES)


def matched_fraction(a, b):
    """Share of foreground voxels whose labels agree after a one-to-one id matching
    (each id of ``a`` paired greedily with the id of ``b`` it overlaps most)."""
    fg = (a > 0) | (b > 0)
    pairs, n = np.unique(np.stack([a[fg], b[fg]]), axis=1, return_counts=True)
    df = pd.DataFrame({"a": pairs[0], "b": pairs[1], "n": n})
    df = df[(df.a > 0) & (df.b > 0)].sort_values("n", ascending=False)
    best = df.drop_duplicates("a").drop_duplicates("b")
    return best.n.sum() / fg.sum()


@pytest.mark.parametrize("shape,chunks", [((48, 48, 48), (17, 19, 23)), ((160, 150), (37, 41))])
def test_chunked_equals_single_chunk(shape, chunks):
    ds = emd.synth.electrode(shape, voxel_size=0.5, particle_radius_um=(2.5, 0.4), seed=4)
    p = ds["phases"].values
    one = watershed(_seg(p, -1))
    many = watershed(_seg(p, chunks))  # defaults derived from the data, on its chunks
    assert many.data.chunks != one.data.chunks
    assert many.attrs["min_distance_um"] == pytest.approx(one.attrs["min_distance_um"])
    a, b = one.values, many.values
    assert one.attrs["n_labels"] == many.attrs["n_labels"] > 20
    assert set(np.unique(b)) == set(range(many.attrs["n_labels"] + 1))  # consecutive
    assert ((a > 0) == (p == 2)).all() and ((b > 0) == (p == 2)).all()
    assert matched_fraction(a, b) >= 0.99


@pytest.fixture(scope="module", params=[1, 2])
def electrode(request):
    # Defaults were tuned on seed 0; seeds 1 and 2 are held out.
    return emd.synth.electrode((96, 96, 96), voxel_size=0.5, particle_radius_um=(3.0, 0.5),
                               seed=request.param, chunks=(40, 40, 40)).compute()


@pytest.mark.slow
def test_recovers_true_particles(electrode):
    truth = regionprops(electrode["particles"].chunk(40))
    labels = watershed(electrode["phases"].chunk(40), phase="am")
    found = regionprops(labels)
    count_error = len(found) / len(truth) - 1
    diameter_error = (found["equivalent_diameter_um"].median()
                      / truth["equivalent_diameter_um"].median() - 1)
    print(f"particles {len(truth)} true, {len(found)} found ({count_error:+.1%}); median "
          f"equivalent diameter error {diameter_error:+.1%}")
    assert abs(count_error) <= 0.05
    assert abs(diameter_error) <= 0.05


def test_two_touching_disks_are_split():
    y, x = np.mgrid[0:40, 0:60]
    disks = ((y - 20) ** 2 + (x - 20) ** 2 <= 100) | ((y - 20) ** 2 + (x - 37) ** 2 <= 100)
    lab = watershed(_seg(np.where(disks, 2, 0).astype(np.uint8), (13, 17), voxel=1.0),
                    min_distance_um=3.0)
    v = lab.values
    assert lab.attrs["n_labels"] == 2
    assert v[20, 12] != v[20, 45] and v[20, 12] > 0 and v[20, 45] > 0
    # The split runs through the neck at x = 28.5.
    assert (v[:, :28][disks[:, :28]] == v[20, 12]).all()
    assert (v[:, 29:][disks[:, 29:]] == v[20, 45]).all()


def test_bad_parameters():
    seg = _seg(np.zeros((8, 8), np.uint8), 4)
    with pytest.raises(InputError, match="min_distance_um"):
        watershed(seg, min_distance_um=-1.0)
    with pytest.raises(InputError, match="phase"):
        watershed(seg, phase="silicon")
