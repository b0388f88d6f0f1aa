import h5py
import numpy as np
import pytest
import tifffile

from electromicro_dask.core.arrays import as_volume, default_chunks
from electromicro_dask.core.store import open_store, save
from electromicro_dask.errors import InputError
from electromicro_dask.io import ingest, read_hdf5, read_raw, read_tiff, read_tiff_folder


def _folder(path, vol):
    path.mkdir()
    for i, sl in enumerate(vol):
        tifffile.imwrite(path / f"s{i}.tif", sl)
    return path


def test_ingest_folder_rechunks_and_records_provenance(tmp_path, rng):
    vol = rng.integers(0, 255, size=(11, 40, 36), dtype=np.uint8)
    src = _folder(tmp_path / "scan", vol)
    store = tmp_path / "sample.zarr"
    with_small_chunks = {"electromicro.chunk-bytes": 4096}
    import dask

    with dask.config.set(with_small_chunks):
        prov = ingest(src, store, voxel_size=(0.03, 0.01, 0.01))
        expected = default_chunks(vol.shape, vol.dtype)
    assert prov["function"] == "io.ingest"
    assert prov["parameters"]["src"] == str(src.resolve())
    raw = open_store(store)["raw"]
    assert raw.dims == ("z", "y", "x")
    np.testing.assert_array_equal(raw.values, vol)
    np.testing.assert_allclose(raw.z.values, 0.03 * np.arange(11))
    assert raw.encoding["chunks"] == tuple(c[0] for c in expected)
    assert raw.attrs["provenance"]["parameters"]["voxel_size"] == [0.03, 0.01, 0.01]
    # a changed source gives another provenance hash
    tifffile.imwrite(src / "s0.tif", np.zeros((40, 36), np.uint8))
    again = ingest(src, store, name="raw2", voxel_size="0.03,0.01,0.01")
    assert again["hash"] != prov["hash"]
    np.testing.assert_allclose(open_store(store)["raw2"].z.values, 0.03 * np.arange(11))


@pytest.mark.parametrize("kind", ["tiff", "hdf5", "raw", "npy"])
def test_ingest_picks_the_reader(tmp_path, rng, kind):
    vol = rng.integers(0, 4000, size=(6, 10, 12), dtype=np.uint16)
    kw = {}
    if kind == "tiff":
        src = tmp_path / "v.tiff"
        tifffile.imwrite(src, vol)
    elif kind == "hdf5":
        src = tmp_path / "v.h5"
        with h5py.File(src, "w") as h:
            h["data"] = vol
        kw = {"dataset": "data"}
    elif kind == "raw":
        src = tmp_path / "v.dat"
        vol.astype(">u2").tofile(src)
        kw = {"shape": vol.shape, "dtype": "uint16", "byte_order": ">"}
    else:
        src = tmp_path / "v.npy"
        np.save(src, vol)
    ingest(src, tmp_path / "s.zarr", name="grey", voxel_size="0.5", **kw)
    out = open_store(tmp_path / "s.zarr")["grey"]
    np.testing.assert_array_equal(out.values, vol)
    np.testing.assert_allclose(out.y.values, 0.5 * np.arange(10))


def test_failing_ingest_leaves_the_store_intact(tmp_path, rng):
    store = tmp_path / "sample.zarr"
    old = rng.integers(0, 255, size=(5, 20, 24), dtype=np.uint8)
    save(as_volume(old, voxel_size=1.0), store, "raw")

    (tmp_path / "empty").mkdir()
    bad = _folder(tmp_path / "bad", np.zeros((3, 20, 24), np.uint8))
    tifffile.imwrite(bad / "s7.tif", np.zeros((20, 23), np.uint8))
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"junk" * 100)
    good = _folder(tmp_path / "good", np.ones((5, 20, 24), np.uint8))
    cases = [
        (dict(src=tmp_path / "empty", voxel_size=1), "folder"),
        (dict(src=bad, voxel_size=1), "folder"),
        (dict(src=junk, voxel_size=1), "path"),
        (dict(src=tmp_path / "missing.tif", voxel_size=1), "path"),
        (dict(src=good), "voxel_size"),
        (dict(src=tmp_path / "x.weird", voxel_size=1), "src"),
        (dict(src=tmp_path / "x.raw", voxel_size=1), "shape"),
        (dict(src=tmp_path / "x.raw", shape=(5, 20, 24), dtype="uint8", voxel_size=1), "path"),
    ]
    for kw, argument in cases:
        for name in ("raw", "other"):
            with pytest.raises(InputError) as err:
                ingest(store=store, name=name, **kw)
            assert err.value.argument == argument, (kw, err.value)
    ds = open_store(store)
    assert list(ds.data_vars) == ["raw"]
    np.testing.assert_array_equal(ds["raw"].values, old)


def test_read_failure_during_write_leaves_the_store_intact(tmp_path, rng):
    store = tmp_path / "sample.zarr"
    old = rng.integers(0, 255, size=(4, 20, 24), dtype=np.uint8)
    save(as_volume(old, voxel_size=1.0), store, "raw")
    src = _folder(tmp_path / "scan", np.ones((4, 20, 24), np.uint8))
    v = read_tiff_folder(src, voxel_size=1.0)
    (src / "s2.tif").write_bytes(b"corrupted later")
    with pytest.raises(InputError, match="s2.tif"):
        save(v, store, "raw")
    np.testing.assert_array_equal(open_store(store)["raw"].values, old)


def test_readers_on_distributed_workers(client, tmp_path, rng):
    vol = rng.integers(0, 255, size=(6, 16, 18), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "v.tif", vol)
    with h5py.File(tmp_path / "v.h5", "w") as h:
        h["d"] = vol
    vol.tofile(tmp_path / "v.raw")
    src = _folder(tmp_path / "scan", vol)
    # The readers pickle to worker processes, each of which opens the files itself.
    arrays = [read_tiff(tmp_path / "v.tif", voxel_size=1, chunks=(3, 16, 18)),
              read_hdf5(tmp_path / "v.h5", "d", voxel_size=1, chunks=(3, 16, 18)),
              read_raw(tmp_path / "v.raw", vol.shape, "uint8", voxel_size=1, chunks=(3, 16, 18)),
              read_tiff_folder(src, voxel_size=1)]
    results = client.compute([a.data for a in arrays], sync=True)
    for r in results:
        np.testing.assert_array_equal(r, vol)
