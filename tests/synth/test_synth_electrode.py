import numpy as np
import pytest
import scipy.ndimage as ndi

from electromicro_dask import measure, synth
from electromicro_dask.errors import InputError


@pytest.fixture(scope="module")
def ds():
    return synth.electrode((48, 56, 40), voxel_size=(0.5, 0.4, 0.4),
                           fractions={"am": 0.5, "cbd": 0.2, "pore": 0.3},
                           particle_radius_um=(3.0, 0.6), seed=11, chunks=(48, 56, 40))


def test_fractions_match_targets(ds):
    f = measure.volume_fractions(ds["phases"])
    assert f["am"] == pytest.approx(0.5, abs=0.01)
    assert f["cbd"] == pytest.approx(0.2, abs=0.01)
    assert f["pore"] == pytest.approx(0.3, abs=0.01)


@pytest.mark.parametrize("seed, fr", [(3, {"am": 0.6, "cbd": 0.1, "pore": 0.3}),
                                      (4, {"am": 0.45, "cbd": 0.25, "pore": 0.3})])
def test_fractions_other_seeds_and_targets(seed, fr):
    d = synth.electrode((40, 40, 40), voxel_size=0.5, fractions=fr,
                        particle_radius_um=(2.5, 0.5), seed=seed)
    f = measure.volume_fractions(d["phases"])
    for k, v in fr.items():
        assert f[k] == pytest.approx(v, abs=0.01)


@pytest.mark.parametrize("chunks", [(13, 17, 11), (48, 9, 40), (5, 56, 23)])
def test_chunk_invariant(ds, chunks):
    d = synth.electrode((48, 56, 40), voxel_size=(0.5, 0.4, 0.4),
                        fractions={"am": 0.5, "cbd": 0.2, "pore": 0.3},
                        particle_radius_um=(3.0, 0.6), seed=11, chunks=chunks)
    np.testing.assert_array_equal(d["phases"].values, ds["phases"].values)
    np.testing.assert_array_equal(d["particles"].values, ds["particles"].values)


def test_particles_consistent_with_phases(ds):
    ph = ds["phases"].values
    pa = ds["particles"].values
    assert np.array_equal(pa > 0, ph == 2)
    ids = np.unique(pa[pa > 0])
    np.testing.assert_array_equal(ids, np.arange(1, ds.attrs["n_particles"] + 1))
    # Each particle is one connected piece (split along necks, never fragmented).
    for i in ids[:40]:
        _, n = ndi.label(pa == i, structure=np.ones((3, 3, 3)))
        assert n == 1


def test_cbd_touches_particles(ds):
    ph = ds["phases"].values
    am_near = ndi.binary_dilation(ph == 2, iterations=4)
    assert (ph == 1)[am_near].sum() / (ph == 1).sum() > 0.95


def test_gradient_and_two_layer():
    d = synth.electrode((64, 40, 40), voxel_size=0.5, cbd_gradient=1.0, seed=2,
                        particle_radius_um=(2.5, 0.5))
    prof = measure.profile(d["phases"])
    lo, hi = prof["cbd"].iloc[:20].mean(), prof["cbd"].iloc[-20:].mean()
    assert hi > 1.3 * lo
    two = synth.electrode((64, 40, 40), voxel_size=0.5, two_layer=True, seed=2,
                          particle_radius_um=(3.0, 0.3))
    radii = np.asarray(two.attrs["particle_radii_um"])
    assert radii.min() < 0.75 * 3.0 < radii.max()


def test_2d_section():
    d = synth.electrode((80, 90), voxel_size=0.5, seed=1, particle_radius_um=(3.0, 0.5))
    assert d["phases"].dims == ("y", "x")
    f = measure.volume_fractions(d["phases"])
    assert f["am"] == pytest.approx(0.55, abs=0.01)


@pytest.mark.parametrize("kwargs, arg", [
    ({"fractions": {"am": 0.5, "cbd": 0.2, "pore": 0.2}}, "fractions"),
    ({"fractions": {"am": 0.5, "binder": 0.2, "pore": 0.3}}, "fractions"),
    ({"fractions": {"am": 1.2, "pore": -0.2}}, "fractions"),
    ({"voxel_size": 0}, "voxel_size"),
    ({"shape": (10,)}, "shape"),
    ({"particle_radius_um": (0.2, 0.1)}, "particle_radius_um"),
])
def test_bad_input(kwargs, arg):
    args = {"shape": (24, 24, 24), "voxel_size": 0.5, **kwargs}
    with pytest.raises(InputError) as e:
        synth.electrode(**args)
    assert e.value.argument == arg


def test_tomogram_contrast_and_noise_chunk_invariant(ds):
    t1 = synth.tomogram(ds["phases"], blur_um=0.0, noise=0.05, seed=4)
    t2 = synth.tomogram(ds["phases"].chunk({"z": 7, "y": 9, "x": 11}), blur_um=0.0, noise=0.05, seed=4)
    np.testing.assert_array_equal(t1.values, t2.values)
    ph = ds["phases"].values
    v = t1.values
    for code, name in ds["phases"].attrs["phases"].items():
        assert v[ph == code].mean() == pytest.approx(synth.DEFAULT_CONTRAST[name], abs=0.005)
        assert v[ph == code].std() == pytest.approx(0.05, rel=0.05)
    blurred = synth.tomogram(ds["phases"].chunk({"z": 7, "y": 9, "x": 11}), blur_um=0.8, noise=0.0)
    ref = synth.tomogram(ds["phases"], blur_um=0.8, noise=0.0)
    np.testing.assert_allclose(blurred.values, ref.values, atol=1e-6)
