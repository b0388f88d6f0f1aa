"""synth.correlative_fibsem: the FIB-SEM view of correlative()'s fine truth through a known
similarity transform."""

import numpy as np
import pytest

from electromicro_dask import register as reg
from electromicro_dask import synth
from electromicro_dask.errors import InputError

KW = dict(factor=4, voxel_size=0.5, particle_radius_um=(2.0, 0.5))


def test_fibsem_view_averages_to_the_tomogram_composition_through_its_transform():
    co = synth.correlative((16, 16, 24), seed=3, **KW).compute()
    fib = synth.correlative_fibsem((16, 16, 24), seed=3, edge_voxels=40, scale=0.97,
                                   rotation_deg=(4.0, 1.0, -2.0), offset_um=(0.3, 0.5, -0.4),
                                   **KW).compute()
    assert fib["grey"].shape == (40, 40, 40)
    assert float(fib["z"][1] - fib["z"][0]) == pytest.approx(0.97 * 0.125)   # stated size
    M = np.array(fib.attrs["fixed_to_moving"])
    assert np.linalg.det(M[:3, :3]) ** (1 / 3) == pytest.approx(0.97)
    # the cube's centre maps to the tomogram's centre plus the offset
    c = np.array(fib.attrs["center_um"])
    centre_q = np.array([float(fib[d].mean()) for d in "zyx"])
    np.testing.assert_allclose(np.linalg.solve(M[:3, :3], centre_q - M[:3, 3]),
                               c + [0.3, 0.5, -0.4], atol=1e-9)
    truth_reg = reg.Registration(matrix=M, translation_um=(0, 0, 0), center_um=tuple(c),
                                 converged=True, reason="", shared_information=1.0,
                                 overlap=1.0, metric=0.0, iterations=0)
    comp = reg.composition(fib["truth"], truth_reg, like=co["grey"], samples=4)
    cov = comp["coverage"].values == 1
    assert cov.sum() > 200
    err = np.abs(comp["composition"].values
                 - co["composition"].sel(phase=list(comp["phase"].values)).values)[:, cov]
    assert err.mean() < 0.005     # the same structure, seen through the stated transform
    # grey values follow the FIB-SEM contrast per phase
    g, t = fib["grey"].values, fib["truth"].values
    for code, name in fib["truth"].attrs["phases"].items():
        assert abs(g[t == code].mean() - synth.FIBSEM_CONTRAST[name]) < 0.01


def test_fibsem_view_bad_input():
    with pytest.raises(InputError, match="edge_voxels"):
        synth.correlative_fibsem((16, 16, 16), edge_voxels=100, **KW)
    with pytest.raises(InputError, match="scale"):
        synth.correlative_fibsem((16, 16, 16), scale=0, **KW)
