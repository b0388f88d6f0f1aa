import json
import os
import signal
import time

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import zarr

import electromicro_dask as emd
from electromicro_dask.core.store import open_table, save_table
from electromicro_dask.errors import InputError, StoreError


def _seg(shape=(6, 7, 8), vs=(0.5, 0.25, 0.25)):
    v = emd.as_volume(np.random.default_rng(0).integers(0, 3, shape).astype("uint8"),
                      voxel_size=vs, chunks=(4, 4, 4))
    v.attrs["phases"] = {0: "pore", 1: "cbd", 2: "am"}
    return v


def test_round_trip_values_coords_attrs(tmp_path):
    seg = _seg()
    path = tmp_path / "s.zarr"
    prov = emd.save(seg, path, "phases", provenance={"function": "f", "parameters": {"a": (1, 2)}})
    ds = emd.open_store(path)
    out = ds["phases"]
    assert isinstance(out.data, da.Array)
    np.testing.assert_array_equal(out.values, seg.values)
    for d in "zyx":
        np.testing.assert_array_equal(out[d].values, seg[d].values)
    assert out.attrs["phases"] == {0: "pore", 1: "cbd", 2: "am"}
    assert out.attrs["units"] == "um"
    p = out.attrs["provenance"]
    assert p["function"] == "f" and p["parameters"] == {"a": [1, 2]}
    assert p["version"] == emd.__version__ and p["hash"] == prov["hash"] and p["created"]
    assert emd.voxel_size(out) == (0.5, 0.25, 0.25)


def test_ngff_multiscales_metadata(tmp_path):
    path = tmp_path / "s.zarr"
    emd.save(_seg(), path, "phases")
    attrs = zarr.open_group(path, mode="r").attrs.asdict()
    ms = attrs["ome"]["multiscales"]
    assert attrs["ome"]["version"] == "0.5"
    (entry,) = [m for m in ms if m["name"] == "phases"]
    assert [a["name"] for a in entry["axes"]] == ["z", "y", "x"]
    assert entry["axes"][0]["unit"] == "micrometer"
    scale = entry["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == pytest.approx([0.5, 0.25, 0.25])
    assert entry["datasets"][0]["path"] == "phases"
    # The dataset path is a real zarr array of the image's shape.
    assert zarr.open_array(path / "phases", mode="r").shape == (6, 7, 8)


def test_failed_write_leaves_store_unchanged(tmp_path):
    path = tmp_path / "s.zarr"
    seg = _seg()
    emd.save(seg, path, "phases")
    before = sorted(p.relative_to(path) for p in path.rglob("*"))

    def boom(block):
        if block.shape[0] > 0:
            raise RuntimeError("disk on fire")
        return block

    bad = seg.copy(data=seg.data.map_blocks(boom, dtype=seg.dtype))
    with pytest.raises(StoreError, match="unchanged"):
        emd.save(bad, path, "filtered")
    with pytest.raises(StoreError):
        emd.save(bad, path, "phases")  # overwriting fails too: old one stays
    after = sorted(p.relative_to(path) for p in path.rglob("*"))
    assert before == after
    np.testing.assert_array_equal(emd.open_store(path)["phases"].values, seg.values)


def test_mismatched_coordinates_rejected_before_writing(tmp_path):
    path = tmp_path / "s.zarr"
    emd.save(_seg(), path, "phases")
    other = _seg(vs=(1.0, 0.25, 0.25))
    with pytest.raises(InputError, match="coordinates along 'z'"):
        emd.save(other, path, "other")
    assert list(emd.open_store(path).data_vars) == ["phases"]


def test_bad_name_and_no_overwrite(tmp_path):
    path = tmp_path / "s.zarr"
    emd.save(_seg(), path, "phases")
    with pytest.raises(InputError, match="name"):
        emd.save(_seg(), path, "../evil")
    with pytest.raises(InputError, match="name"):
        emd.save(_seg(), path, "phases", overwrite=False)


def test_open_missing_store():
    with pytest.raises(InputError, match="path"):
        emd.open_store("/nonexistent/store.zarr")


def test_tables_round_trip(tmp_path):
    path = tmp_path / "s.zarr"
    df = pd.DataFrame({"a": [1.5, 2.5], "b": [3, 4]}, index=pd.Index(["x", "y"], name="phase"))
    save_table(df, path, "tab", provenance={"function": "g"})
    save_table({"k": np.float64(1.0), "t": (1, 2)}, path, "dict")
    out, prov = open_table(path, "tab", with_provenance=True)
    pd.testing.assert_frame_equal(out, df)
    assert prov["function"] == "g"
    assert open_table(path, "dict") == {"k": 1.0, "t": [1, 2]}
    # Tables do not appear as (or break) the store's variables.
    assert list(emd.open_store(path).data_vars) == []


_WRITER = """
import sys, time
import dask, numpy as np
import electromicro_dask as emd

def slow(block):
    time.sleep(0.3)
    return block

v = emd.as_volume(np.ones((64, 64, 64), "uint8"), voxel_size=1.0, chunks=(8, 64, 64))
v = v.copy(data=v.data.map_blocks(slow, dtype="uint8"))
with dask.config.set(scheduler="synchronous"):
    emd.save(v, sys.argv[1], "big")
"""


def test_killed_write_leaves_no_partial_variable(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "s.zarr"
    emd.save(_seg((64, 64, 64), (1.0, 1.0, 1.0)), path, "phases")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
    staging = tmp_path / ".s.zarr.staging"
    deadline = time.time() + 60
    seen = False
    while time.time() < deadline and proc.poll() is None:  # wait until chunks are written
        if staging.exists() and any(p.is_file() for p in staging.rglob("big/c/*/*/*")):
            seen = True
            break
        time.sleep(0.02)
    assert seen, "the writer never started writing chunks"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ds = emd.open_store(path)
    assert list(ds.data_vars) == ["phases"]
    assert not (path / "big").exists()
    assert ds["phases"].shape == (64, 64, 64)
    json.loads((path / "zarr.json").read_text())  # root metadata intact
    # A later write works; clear_staging (the runner calls it) removes the leftovers.
    emd.save(_seg((64, 64, 64), (1.0, 1.0, 1.0)), path, "again")
    assert sorted(emd.open_store(path).data_vars) == ["again", "phases"]
    assert staging.exists() and any(staging.iterdir())
    from electromicro_dask.core.store import clear_staging

    assert clear_staging(path) >= 1
    assert not staging.exists()
    assert sorted(emd.open_store(path).data_vars) == ["again", "phases"]
