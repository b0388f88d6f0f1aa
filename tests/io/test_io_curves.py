"""Measured cycling curves from cycler exports."""

import numpy as np
import pytest

from electromicro_dask.errors import InputError
from electromicro_dask.io import read_curve


def test_biologic_like_semicolon_export(tmp_path):
    q = np.linspace(0, 0.0021, 30)
    v = 4.2 - 1.1 * (q / q.max()) ** 2
    f = tmp_path / "c.txt"
    f.write_text("time/s;Ewe/V;Capacity/mA.h\n" + "".join(
        f"{i};{a:.10g};{b:.10g}\n" for i, (a, b) in enumerate(zip(v, q))))
    c = read_curve(f, capacity_scale=1 / 0.0105)  # mAh -> mAh/g for 10.5 mg of AM
    np.testing.assert_allclose(c["capacity"].values, q / 0.0105, rtol=1e-6)
    np.testing.assert_allclose(c["voltage"].values, v, atol=1e-6)
    assert c.attrs["voltage_column"] == "Ewe/V" and c.attrs["capacity_column"] == "Capacity/mA.h"


def test_named_columns_and_errors(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("Q,E\n0,4.1\n10,3.9\n20,3.5\n,3.0\n")
    c = read_curve(f, capacity="Q", voltage="E")
    assert len(c) == 3  # the row without a capacity is dropped
    with pytest.raises(InputError, match="capacity"):
        read_curve(f)
    with pytest.raises(InputError, match="voltage"):
        read_curve(f, capacity="Q", voltage="V")
    with pytest.raises(InputError, match="path"):
        read_curve(tmp_path / "missing.csv")
