"""Chunked generation equals one-shot generation, voxel for voxel."""

import numpy as np
import pytest
import torch

from electromicro_dask.errors import InputError
from electromicro_dask.slicegan import SliceGANModel, generate, make_config
from electromicro_dask.slicegan.config import latent_size, output_size
from electromicro_dask.slicegan.generate import latent_tile
from electromicro_dask.slicegan.networks import Generator


def _random_model(name, phases={0: "pore", 1: "cbd", 2: "am"}):
    """An untrained generator with non-trivial batch-norm running statistics."""
    cfg = make_config(name)
    torch.manual_seed(1)
    g = Generator(cfg, len(phases)).train()
    with torch.no_grad():
        for _ in range(3):
            g(torch.randn(2, cfg["latent_channels"], 4, 4, 4))
    return SliceGANModel(cfg, g.state_dict(), dict(phases), spacing_um=0.5)


def test_v11_geometry_matches_reference():
    # v1.1: 16 x 4^3 latent -> 64^3 (run_slicegan.py), 32 output voxels per latent voxel.
    cfg = make_config("v1.1")
    assert output_size(cfg, 4) == 64
    assert output_size(cfg, 5) == 96
    assert latent_size(cfg, 64) == 4
    assert latent_tile(cfg, 32, 64) == (1, 4)
    g = Generator(cfg, 3).eval()
    assert g(torch.randn(1, 16, 4, 4, 4)).shape == (1, 3, 64, 64, 64)
    n_conv = len(g.convs)
    assert n_conv == 5 and [c.padding[0] for c in g.convs] == [2, 2, 2, 2, 3]


@pytest.mark.parametrize("chunks", [(11, 17, 9), (16, 16, 16), (37, 25, 7), (5, 50, 29)])
def test_chunked_equals_one_shot_tiny(chunks):
    m = _random_model("tiny")
    shape = (37, 50, 29)
    one = generate(m, shape, chunks=shape, seed=3).values
    assert len(np.unique(one)) == 3                     # all phases occur: a real test
    part = generate(m, shape, chunks=chunks, seed=3)
    assert part.data.numblocks != (1, 1, 1)
    np.testing.assert_array_equal(part.values, one)


def test_chunked_equals_one_shot_v11():
    m = _random_model("v1.1", {0: "pore", 1: "am"})
    shape = (33, 20, 30)
    one = generate(m, shape, chunks=shape, seed=5).values
    assert 0 < one.mean() < 1
    np.testing.assert_array_equal(generate(m, shape, chunks=(17, 20, 15), seed=5).values, one)


def test_generation_depends_on_seed_and_labels():
    m = _random_model("tiny", {2: "pore", 7: "am", 9: "cbd"})
    a = generate(m, (20, 20, 20), seed=0)
    assert a.attrs["phases"] == {2: "pore", 7: "am", 9: "cbd"}
    assert set(np.unique(a.values)) <= {2, 7, 9}
    assert a.dims == ("z", "y", "x") and float(a.x[1]) == 0.5
    b = generate(m, (20, 20, 20), seed=1)
    assert (a.values != b.values).mean() > 0.1


def test_generate_rejects_bad_input():
    m = _random_model("tiny")
    with pytest.raises(InputError, match="shape"):
        generate(m, (10, 10))
    with pytest.raises(InputError, match="model"):
        generate("nope", (10, 10, 10))


def test_config_rejects_paddings_that_do_not_tile():
    with pytest.raises(InputError, match="padding"):
        make_config("tiny", g_paddings=[1, 2, 3])
