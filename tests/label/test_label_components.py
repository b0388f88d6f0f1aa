"""connected_components against scipy.ndimage.label (the peer) on chunked 2D/3D data."""

import os

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import electromicro_dask as emd
from electromicro_dask.errors import InputError
from electromicro_dask.label import connected_components


def assert_same_partition(labels, reference):
    """Equal up to a permutation of ids: a bijection between the ids of the two labelings."""
    labels = np.asarray(labels)
    reference = np.asarray(reference)
    assert ((labels == 0) == (reference == 0)).all()
    fg = reference != 0
    pairs = np.unique(np.stack([labels[fg], reference[fg]]), axis=1)
    assert len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def _blobs(shape, sigma, level, seed):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape), sigma) > level


@pytest.mark.parametrize("shape,chunks", [((31, 29, 27), (7, 10, 9)), ((61, 53), (9, 14))])
def test_equals_scipy_for_every_connectivity(shape, chunks):
    # Fine noise thresholded near its median: many components winding across chunk
    # borders, touching each other diagonally (so connectivity changes the answer).
    mask = _blobs(shape, 0.7, 0.5, seed=1)
    m = emd.as_volume(mask, voxel_size=0.5, chunks=chunks)
    counts = []
    for c in range(1, len(shape) + 1):
        lab = connected_components(m, connectivity=c)
        ref, n = ndi.label(mask, ndi.generate_binary_structure(mask.ndim, c))
        assert lab.attrs["n_labels"] == n
        values = lab.values
        assert values.dtype == np.uint32 and values.max() == n
        assert set(np.unique(values)) == set(range(n + 1))  # consecutive 1..N
        assert_same_partition(values, ref)
        counts.append(n)
    assert len(set(counts)) == len(counts), "connectivities give different answers here"


def test_lazy_grid_and_chunks_kept():
    mask = _blobs((20, 21, 22), 1.0, 0.5, seed=2)
    m = emd.as_volume(da.from_array(mask, chunks=(6, 7, 8)), voxel_size=(1.0, 0.5, 0.5))
    lab = connected_components(m)
    assert isinstance(lab.data, da.Array)
    assert lab.chunks == m.chunks
    assert float(lab.x[1]) == 0.5 and lab.dims == ("z", "y", "x")


def test_phase_of_a_segmentation():
    ds = emd.synth.electrode((24, 24, 24), voxel_size=0.5, seed=3, chunks=(10, 9, 11))
    lab = connected_components(ds["phases"], connectivity=3, phase="cbd")
    cbd = ds["phases"].values == 1
    ref, n = ndi.label(cbd, np.ones((3, 3, 3)))
    assert lab.attrs["n_labels"] == n
    assert_same_partition(lab.values, ref)
    with pytest.raises(InputError, match="phase"):
        connected_components(ds["phases"], phase="graphite")


def test_bad_connectivity():
    m = emd.as_volume(np.ones((4, 4), bool), voxel_size=1.0)
    with pytest.raises(InputError, match="connectivity"):
        connected_components(m, connectivity=3)


def test_single_voxel_chunks_and_empty_mask():
    mask = _blobs((6, 5, 4), 0.6, 0.5, seed=4)
    lab = connected_components(emd.as_volume(mask, voxel_size=1.0, chunks=1), connectivity=3)
    ref, n = ndi.label(mask, np.ones((3, 3, 3)))
    assert_same_partition(lab.values, ref)
    empty = connected_components(emd.as_volume(np.zeros((5, 6), bool), voxel_size=1.0,
                                               chunks=2))
    assert empty.attrs["n_labels"] == 0 and not empty.values.any()


@settings(max_examples=int(os.environ.get("LABEL_EXAMPLES", 40)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_random_masks_and_chunkings(data):
    ndim = data.draw(st.sampled_from([2, 3]))
    shape = tuple(data.draw(st.integers(1, 12 if ndim == 3 else 24)) for _ in range(ndim))
    chunks = tuple(data.draw(st.integers(1, s)) for s in shape)
    density = data.draw(st.floats(0.1, 0.9))
    seed = data.draw(st.integers(0, 2**31))
    connectivity = data.draw(st.integers(1, ndim))
    mask = np.random.default_rng(seed).random(shape) < density
    lab = connected_components(emd.as_volume(mask, voxel_size=1.0, chunks=chunks),
                               connectivity=connectivity)
    ref, n = ndi.label(mask, ndi.generate_binary_structure(ndim, connectivity))
    assert lab.attrs["n_labels"] == n
    values = lab.values
    assert values.max(initial=0) == n
    assert_same_partition(values, ref)


@pytest.mark.parametrize("chunks", [(5, 1, 1), (1, 1, 3), (2, 1, 4)])
def test_thin_blocks_regression(chunks):
    # Found by the property test: cc3d fails on 1x1xn blocks with 26-connectivity.
    mask = np.random.default_rng(7).random((9, 4, 5)) < 0.77
    for c in (1, 2, 3):
        lab = connected_components(emd.as_volume(mask, voxel_size=1.0, chunks=chunks),
                                   connectivity=c)
        ref, n = ndi.label(mask, ndi.generate_binary_structure(3, c))
        assert lab.attrs["n_labels"] == n
        assert_same_partition(lab.values, ref)
