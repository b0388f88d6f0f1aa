"""Readers of spectral images: imzML (written by pyimzml's own writer), per-peak TIFF
stacks and ASCII ``x y counts`` exports round-trip; corrupt or truncated files raise
InputError."""

import numpy as np
import pytest
import tifffile

from electromicro_dask.errors import InputError
from electromicro_dask.io.spectral import read_imzml, read_si_ascii, read_tiff_stack

pyimzml = pytest.importorskip("pyimzml")


def _cube(ny=5, nx=7, nch=9, seed=0):
    rng = np.random.default_rng(seed)
    return rng.poisson(3.0, (ny, nx, nch)).astype(np.float32)


def _write_imzml(path, cube, mzs, mode):
    from pyimzml.ImzMLWriter import ImzMLWriter

    ny, nx, _ = cube.shape
    with ImzMLWriter(str(path), mode=mode, mz_dtype=np.float64,
                     intensity_dtype=np.float32) as w:
        for y in range(ny):
            for x in range(nx):
                m = mzs if mode == "continuous" else mzs[cube[y, x] > 0]
                v = cube[y, x] if mode == "continuous" else cube[y, x][cube[y, x] > 0]
                w.addSpectrum(m, v, (x + 1, y + 1, 1))


def test_imzml_continuous_round_trip(tmp_path):
    cube = _cube()
    mzs = np.linspace(20.0, 60.0, cube.shape[2])
    _write_imzml(tmp_path / "a.imzML", cube, mzs, "continuous")
    out = read_imzml(tmp_path / "a.imzML", voxel_size=0.125, rows_per_chunk=2)
    assert out.dims == ("y", "x", "mz")
    assert out.attrs["storage"] == "continuous"
    np.testing.assert_allclose(out.mz.values, mzs)
    np.testing.assert_array_equal(out.values, cube)
    assert float(out.x[1]) == pytest.approx(0.125)


def test_imzml_processed_round_trip_and_binning(tmp_path):
    cube = _cube(seed=1)
    mzs = np.linspace(20.0, 60.0, cube.shape[2])
    _write_imzml(tmp_path / "p.imzML", cube, mzs, "processed")
    out = read_imzml(tmp_path / "p.imzML", voxel_size=0.5)
    assert out.attrs["storage"] == "processed"
    # Default axis: the union of m/z values (every channel occurs somewhere here).
    np.testing.assert_allclose(out.mz.values, mzs)
    np.testing.assert_array_equal(out.values, cube)
    # Explicit coarse bins sum the channels they hold.
    edges = np.array([19.0, 40.0, 61.0])
    binned = read_imzml(tmp_path / "p.imzML", voxel_size=0.5, mz_bins=edges).values
    expect = np.stack([cube[..., mzs < 40].sum(-1), cube[..., mzs >= 40].sum(-1)], -1)
    np.testing.assert_allclose(binned, expect)


def test_imzml_truncated_and_corrupt(tmp_path):
    cube = _cube()
    _write_imzml(tmp_path / "t.imzML", cube, np.linspace(20, 60, cube.shape[2]), "continuous")
    ibd = tmp_path / "t.ibd"
    data = ibd.read_bytes()
    ibd.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_imzml(tmp_path / "t.imzML", voxel_size=1.0)
    xml = (tmp_path / "t.imzML").read_text()
    (tmp_path / "c.imzML").write_text(xml[: len(xml) // 2])
    (tmp_path / "c.ibd").write_bytes(data)
    with pytest.raises(InputError):
        read_imzml(tmp_path / "c.imzML", voxel_size=1.0)
    with pytest.raises(InputError, match="not found"):
        read_imzml(tmp_path / "missing.imzML")


def test_tiff_stack_round_trip_and_truncated(tmp_path):
    cube = _cube(8, 6, 4).astype(np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", np.moveaxis(cube, 2, 0), photometric="minisblack")
    out = read_tiff_stack(tmp_path / "s.tif", mz=[23.0, 28.0, 51.0, 60.0],
                          species=["LiO-", "Si-", "LiCO2-", "SiO2-"], voxel_size=0.25)
    assert out.dims == ("y", "x", "mz")
    np.testing.assert_array_equal(out.values, cube)
    assert list(out.species.values) == ["LiO-", "Si-", "LiCO2-", "SiO2-"]
    data = (tmp_path / "s.tif").read_bytes()
    (tmp_path / "t.tif").write_bytes(data[: len(data) - 40])
    with pytest.raises(InputError):
        read_tiff_stack(tmp_path / "t.tif", voxel_size=0.25)
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(InputError):
        read_tiff_stack(tmp_path / "junk.tif", voxel_size=0.25)
    with pytest.raises(InputError, match="mz"):
        read_tiff_stack(tmp_path / "s.tif", mz=[1.0], voxel_size=0.25)


def test_ascii_exports_with_sidecar(tmp_path):
    cube = _cube(4, 5, 3, seed=2)
    names = [("LiO-", 23.01), ("Si-", 27.98), ("LiCO2-", 51.0)]
    rows = []
    for k, (name, _) in enumerate(names):
        lines = ["# SurfaceLab export", "# x y counts"]
        for y in range(4):
            for x in range(5):
                lines.append(f"{x} {y} {int(cube[y, x, k])}")
        (tmp_path / f"img{k}.txt").write_text("\n".join(lines) + "\n")
        rows.append(f"img{k}.txt,{name},{names[k][1]}")
    (tmp_path / "species.csv").write_text("file,species,mz\n" + "\n".join(rows) + "\n")
    out = read_si_ascii(sorted(str(p) for p in tmp_path.glob("img*.txt")),
                        species=tmp_path / "species.csv", voxel_size=0.125)
    assert list(out.species.values) == ["LiO-", "Si-", "LiCO2-"]
    np.testing.assert_allclose(out.mz.values, [23.01, 27.98, 51.0])
    np.testing.assert_array_equal(out.values, cube)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.txt").write_text("hello\nworld\n")
    with pytest.raises(InputError):
        read_si_ascii(tmp_path / "bad", voxel_size=0.125)
