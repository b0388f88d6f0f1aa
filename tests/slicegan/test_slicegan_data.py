import numpy as np
import pytest
import xarray as xr

from electromicro_dask.errors import InputError
from electromicro_dask.slicegan import labels_from_rgb
from electromicro_dask.slicegan.data import CropSampler, prepare_images


def test_labels_from_rgb_uses_the_table():
    lab = np.random.default_rng(0).integers(0, 3, (20, 30))
    table = {(0, 0, 0): "pore", (255, 0, 0): "cbd", (255, 255, 255): "am"}
    colours = np.array(list(table))
    out = labels_from_rgb(colours[lab].astype(np.uint8), table)
    np.testing.assert_array_equal(out.values, lab)
    assert out.attrs["phases"] == {0: "pore", 1: "cbd", 2: "am"}
    bad = colours[lab].astype(np.uint8)
    bad[3, 4] = (1, 2, 3)
    with pytest.raises(InputError, match="colours"):
        labels_from_rgb(bad, table)


def test_prepare_images_maps_codes_and_checks():
    img = xr.DataArray(np.where(np.arange(64 * 64).reshape(64, 64) % 3 == 0, 5, 2).astype("uint8"),
                       dims=("y", "x"), attrs={"phases": {2: "pore", 5: "am"}})
    arrays, table, _ = prepare_images(img, image_size=16)
    assert table == {2: "pore", 5: "am"}
    assert set(np.unique(arrays[0])) == {0, 1}
    with pytest.raises(InputError, match="phase codes"):
        prepare_images(img.values, phases={2: "pore", 3: "am"}, image_size=16)
    with pytest.raises(InputError, match="at least"):
        prepare_images(img, image_size=128)
    grey, t, _ = prepare_images(np.linspace(3, 7, 64 * 64).reshape(64, 64), grey=True, image_size=16)
    assert t is None and grey[0].min() == 0 and grey[0].max() == 1


def test_crops_are_exact_windows():
    import torch

    a = np.random.default_rng(1).integers(0, 3, (40, 50)).astype(np.uint8)
    s = CropSampler([a], 3, 16, torch.device("cpu"))
    rng = np.random.default_rng(7)
    crops = s.sample(0, 5, rng).numpy()
    rng = np.random.default_rng(7)
    ys, xs = rng.integers(0, 25, 5), rng.integers(0, 35, 5)
    for c, y, x in zip(crops, ys, xs):
        np.testing.assert_array_equal(c.argmax(0), a[y:y + 16, x:x + 16])
        assert np.all(c.sum(0) == 1)
