import numpy as np
import pytest

import electromicro_dask as emd
from electromicro_dask import synth
from electromicro_dask.io import export
from electromicro_dask.errors import InputError


@pytest.fixture(scope="module")
def seg():
    s = synth.electrode((30, 26, 22), voxel_size=(0.3, 0.2, 0.2), seed=5,
                        particle_radius_um=(1.2, 0.2), chunks=(7, 26, 22))["phases"]
    return s


def test_raw_json_round_trip(seg, tmp_path):
    export.to_raw(seg, tmp_path / "seg.raw")
    back = export.read_raw_json(tmp_path / "seg.raw")
    np.testing.assert_array_equal(back.values, seg.values)
    assert emd.voxel_size(back) == pytest.approx(emd.voxel_size(seg))
    assert back.attrs["phases"] == seg.attrs["phases"]


def test_vtk_round_trip(seg, tmp_path):
    export.to_vtk(seg, tmp_path / "seg.vtk")
    back = export.read_vtk(tmp_path / "seg.vtk")
    np.testing.assert_array_equal(back.values, seg.values)
    assert emd.voxel_size(back) == pytest.approx(emd.voxel_size(seg))
    assert back.attrs["phases"] == seg.attrs["phases"]


def test_tiff_round_trip(seg, tmp_path):
    import json

    import tifffile

    export.to_tiff(seg, tmp_path / "seg.tif")
    with tifffile.TiffFile(tmp_path / "seg.tif") as tf:
        data = tf.asarray()
        desc = tf.pages[0].description
    assert desc.startswith("electromicro_dask:")
    meta = json.loads(desc.split(":", 1)[1])
    np.testing.assert_array_equal(data, seg.values)
    assert meta["voxel_size_um"] == pytest.approx(list(emd.voxel_size(seg)))
    # read back by the package: values, coordinates (origin included) and phases
    from electromicro_dask.io import read_tiff

    moved = seg.assign_coords(z=seg.z + 2.5, x=seg.x - 1.0)
    export.to_tiff(moved, tmp_path / "moved.tif")
    back = read_tiff(tmp_path / "moved.tif")
    np.testing.assert_array_equal(back.values, seg.values)
    for d in ("z", "y", "x"):
        np.testing.assert_allclose(back[d].values, moved[d].values, rtol=1e-6, atol=1e-9)
    assert back.attrs["phases"] == seg.attrs["phases"]
    # a voxel size given by the caller still wins (and the stored origin is then not used)
    assert emd.voxel_size(read_tiff(tmp_path / "moved.tif", voxel_size=1.0)) == (1.0,) * 3


def test_mesh_is_closed_and_matches_whole_volume_marching_cubes(seg, tmp_path):
    from skimage.measure import marching_cubes, mesh_surface_area

    n = export.to_mesh(seg, "am", tmp_path / "am.stl")
    rec = np.fromfile(tmp_path / "am.stl", offset=84,
                      dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
    assert len(rec) == n > 100
    v = rec["v"].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1).sum()
    whole = np.pad((seg.values == 2).astype(np.float32), 1)
    verts, faces, _, _ = marching_cubes(whole, 0.5, spacing=emd.voxel_size(seg),
                                        allow_degenerate=False)
    assert area == pytest.approx(mesh_surface_area(verts, faces), rel=1e-5)
    assert len(faces) == n
    # Closed surface: every edge is shared by exactly two triangles.
    keys = np.round(v, 5).reshape(-1, 3)
    _, vid = np.unique(keys, axis=0, return_inverse=True)
    tri = vid.reshape(-1, 3)
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()
    assert export.to_mesh(seg, "am", tmp_path / "am.ply") == n


def test_export_bad_input(seg, tmp_path):
    with pytest.raises(InputError, match="path"):
        export.to_mesh(seg, "am", tmp_path / "am.obj")
    with pytest.raises(InputError, match="phase"):
        export.to_mesh(seg, "graphite", tmp_path / "am.stl")
    with pytest.raises(InputError, match="path"):
        export.read_raw_json(tmp_path / "none.raw")
