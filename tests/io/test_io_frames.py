"""Detector frames with positioners: LIMA-layout HDF5 (bitshuffle-LZ4) and fabio formats.

Each synthetic frame is filled with a code of its (angle, t) grid position, so placing the
frames by their positioners, not their order, is checked exactly.
"""

import h5py
import numpy as np
import pytest

from electromicro_dask.errors import InputError
from electromicro_dask.io import read_frames
from electromicro_dask.scattering import to_sinogram

hdf5plugin = pytest.importorskip("hdf5plugin")

N_ANG, N_T, DET = 6, 5, (7, 9)


def _scan():
    """Interlaced acquisition: even angles first, then odd ones; snake in t."""
    angles = np.linspace(0, 150, N_ANG)
    ts = 10.0 * np.arange(N_T)
    order = []
    for sub in (0, 1):
        for k, ia in enumerate(range(sub, N_ANG, 2)):
            its = range(N_T) if k % 2 == 0 else range(N_T - 1, -1, -1)
            order += [(ia, it) for it in its]
    ia, it = np.array(order).T
    frames = (100 * ia + it)[:, None, None] * np.ones((1,) + DET)
    return angles[ia], ts[it], frames.astype(np.uint16), angles, ts


def _write_lima(tmp_path, frames, split):
    paths = []
    for k, part in enumerate(np.split(frames, split)):
        p = tmp_path / "scan0001" / f"pilatus_{k:04d}.h5"
        p.parent.mkdir(exist_ok=True)
        with h5py.File(p, "w") as f:
            f.create_dataset("/entry_0000/measurement/data", data=part,
                             chunks=(1,) + DET, **hdf5plugin.Bitshuffle(cname="lz4"))
        paths.append(p)
    return paths


def test_lima_frames_placed_by_positioners(tmp_path):
    ang, t, frames, angles, ts = _scan()
    paths = _write_lima(tmp_path, frames, [10, 20])  # three files of 10 frames
    master = tmp_path / "sample_0001.h5"
    with h5py.File(master, "w") as f:
        f["/1.1/measurement/rot"] = ang
        f["/1.1/measurement/ty"] = t
        f["/1.1/measurement/mon"] = np.full(ang.size, 2.0)
    with h5py.File(paths[0], "r") as f:  # really the beamline's compression
        plist = f["/entry_0000/measurement/data"].id.get_create_plist()
        assert plist.get_filter(0)[0] == 32008  # the bitshuffle filter id
    fr = read_frames(str(tmp_path / "scan0001" / "pilatus_*.h5"),
                     positioners={"angle": f"{master}::/1.1/measurement/rot",
                                  "t": f"{master}::/1.1/measurement/ty",
                                  "monitor": f"{master}::/1.1/measurement/mon"},
                     frames_per_block=4)
    assert fr.dims == ("frame", "det_y", "det_x") and fr.shape == frames.shape
    assert fr.data.chunks[0] == (4, 4, 2) * 3  # one task per block of 4, per file
    np.testing.assert_array_equal(fr.values, frames)
    sino = to_sinogram(fr.mean(("det_y", "det_x")))
    assert sino.dims == ("angle", "t")
    np.testing.assert_allclose(sino["angle"], angles)
    np.testing.assert_allclose(sino["t"], ts)
    want = 100 * np.arange(N_ANG)[:, None] + np.arange(N_T)[None, :]
    np.testing.assert_array_equal(sino.values, want)
    assert sino["monitor"].dims == ("angle", "t")


def test_fabio_edf_frames(tmp_path):
    fabio = pytest.importorskip("fabio")
    from fabio.edfimage import EdfImage

    ang, t, frames, angles, ts = _scan()
    for i, fr in enumerate(frames):
        EdfImage(data=fr).write(str(tmp_path / f"frame_{i}.edf"))
    fr = read_frames(str(tmp_path / "frame_*.edf"), positioners={"angle": ang, "t": t},
                     frames_per_block=1)
    np.testing.assert_array_equal(fr.values, frames)  # natural order: _2 before _10
    sino = to_sinogram(fr.max(("det_y", "det_x")))
    np.testing.assert_array_equal(sino.values, 100 * np.arange(N_ANG)[:, None]
                                  + np.arange(N_T)[None, :])
    assert fabio  # imported for the writer


def test_bad_input(tmp_path):
    ang, t, frames, _, _ = _scan()
    paths = _write_lima(tmp_path, frames, [15])
    with pytest.raises(InputError, match=r"positioners\['angle'\].*30 frames"):
        read_frames(paths, positioners={"angle": ang[:-1], "t": t})
    with pytest.raises(InputError, match="dataset"):
        read_frames(paths, dataset="/entry_0000/measurement/nothing")
    with pytest.raises(InputError, match="paths"):
        read_frames(str(tmp_path / "missing_*.h5"))
    fr = read_frames(paths)  # no positioners: readable, but cannot be placed
    with pytest.raises(InputError, match="positioner"):
        to_sinogram(fr.mean(("det_y", "det_x")))
    part = read_frames(paths, positioners={"angle": ang, "t": t}).isel(frame=slice(0, 29))
    with pytest.raises(InputError, match="full grid"):
        to_sinogram(part.mean(("det_y", "det_x")))
