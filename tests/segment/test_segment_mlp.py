"""The correlative MLP of seed 002 section 3.3: symmetries, training, save/load, inference."""

import numpy as np
import pytest

from electromicro_dask import measure, segment
from electromicro_dask.core.errors import InputError
from electromicro_dask.segment.mlp import cube_symmetries
from electromicro_dask.synth.correlative import correlative


@pytest.fixture(scope="module")
def trained():
    train = correlative((16, 16, 16), factor=3, seed=1).compute()
    model = segment.train_mlp(train["grey"], train["composition"], max_epochs=25,
                              patience=10, max_samples=4000, seed=0)
    sample = correlative((18, 18, 18), factor=3, seed=0).compute()
    return model, sample


def test_48_cube_symmetries_are_the_rotations_and_reflections():
    s = cube_symmetries(3)
    assert len({tuple(p) for p in s}) == 48
    cube = np.arange(27).reshape(3, 3, 3)
    # a few members checked against numpy's own rotations/flips
    for t in (np.rot90(cube, 1, (0, 1)), np.rot90(cube, 1, (1, 2)), cube[::-1],
              cube.transpose(2, 0, 1)[:, ::-1]):
        assert any(np.array_equal(cube.ravel()[p], t.ravel()) for p in s)
    # closed under composition: a group
    members = {tuple(p) for p in s}
    for p in s[:6]:
        for q in s[::7]:
            assert tuple(p[q]) in members


def test_training_shape_and_split(trained):
    model, _ = trained
    h = model.history
    assert (h["n_train"], h["n_val"], h["n_test"]) == (2400, 800, 800)
    assert 1 <= h["epochs"] <= 25
    assert h["test_loss"] < 0.05
    assert len(model.state) == 2 * 6  # five hidden layers + output, weights and biases
    assert model.state["0.weight"].shape == (75, 125)


def test_save_load_and_size_check(trained, tmp_path):
    model, sample = trained
    path = model.save(tmp_path / "m.npz")
    back = segment.load_mlp(path, size_voxels=5)
    grey = sample["grey"].isel(z=slice(0, 6)).chunk()
    a = segment.mlp(grey, model).values
    b = segment.mlp(grey, path).values
    np.testing.assert_array_equal(a, b)
    assert back.history["epochs"] == model.history["epochs"]
    with pytest.raises(InputError, match="size_voxels"):
        segment.load_mlp(path, size_voxels=3)
    with pytest.raises(InputError, match="model"):
        segment.mlp(grey, path, size_voxels=3)


def test_inference_chunk_invariant_and_beats_threshold_on_cbd(trained):
    model, sample = trained
    p1 = segment.mlp(sample["grey"].chunk({"z": 5, "y": 7, "x": 18}), model)
    p2 = segment.mlp(sample["grey"].chunk({"z": 18, "y": 18, "x": 18}), model)
    v1, v2 = p1.values, p2.values
    np.testing.assert_allclose(v1, v2, rtol=0, atol=1e-6)
    np.testing.assert_allclose(v1.sum(0), 1.0, atol=1e-5)
    f = dict(zip(["pore", "cbd", "am"],
                 sample["composition"].mean(("z", "y", "x")).values.tolist()))
    thr = segment.threshold(sample["grey"].chunk(), fractions=f)
    j_thr = measure.compare(thr, sample["truth"])["jaccard"]["cbd"]
    for method in ("NN-AM-Cond", "NN-CBD-Cond", "NN-P-Cond"):
        nn = segment.convert(p1, f, method=method)
        assert measure.compare(nn, sample["truth"])["jaccard"]["cbd"] > j_thr


def test_cpu_forward_pass_matches_torch(trained):
    # the numpy forward pass used on CPU workers against torch's own network
    import torch

    model, _ = trained
    x = np.random.default_rng(3).normal(model.mean, model.std, (5000, 125)).astype(np.float32)
    ours = model.predict(x, device="cpu")
    with torch.no_grad():
        net = model.network("cpu")
        peer = net(torch.from_numpy((x - model.mean) / model.std)).numpy()
    np.testing.assert_allclose(ours, peer, atol=1e-5)
    np.testing.assert_allclose(ours.sum(axis=1), 1, atol=1e-5)


def test_cpu_inference_does_not_import_torch(trained, tmp_path):
    # a CPU worker running MLP inference must not pay for torch (about 175 MiB a process)
    import subprocess
    import sys

    model, sample = trained
    model.save(tmp_path / "m.npz")
    np.save(tmp_path / "g.npy", sample["grey"].values)
    code = (
        "import sys, numpy as np, xarray as xr\n"
        "from electromicro_dask import segment\n"
        f"g = xr.DataArray(np.load({str(tmp_path / 'g.npy')!r}), dims=('z', 'y', 'x'),\n"
        "                 coords={d: np.arange(18) * 0.5 for d in 'zyx'})\n"
        f"p = segment.mlp(g.chunk(9), {str(tmp_path / 'm.npz')!r}, device='cpu').compute()\n"
        "print(float(p.sum()), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert float(out[0]) == pytest.approx(sample["grey"].size, rel=1e-4)
    assert out[1] == "False"


def test_bad_device_is_named(trained):
    model, sample = trained
    with pytest.raises(InputError, match="device"):
        segment.mlp(sample["grey"], model, device="tpu")
