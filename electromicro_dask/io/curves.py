"""Measured cycling curves (capacity, voltage) from the CSV or text exports of cyclers, to
lay beside simulated discharges (seed 002 Fig. 11, seed 001 Fig. 4B)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import InputError

__all__ = ["read_curve"]

# header fragments of the common exports (BioLogic EC-Lab "Capacity/mA.h", "Ewe/V";
# Neware, Arbin and Maccor "Capacity(mAh)", "Voltage(V)"), lower case
_CAPACITY = ("capacity", "q charge/discharge", "(q-qo)", "cap")
_VOLTAGE = ("ewe", "voltage", "potential", "ecell", "u/v")


def _find(columns, wanted, given, what):
    if given is not None:
        if given not in columns:
            raise InputError(what, f"a column of the file, one of {list(columns)}, got {given!r}")
        return given
    for frag in wanted:
        hits = [c for c in columns if frag in str(c).lower()]
        if hits:
            return hits[0]
    raise InputError(what, f"a column name: none of {list(columns)} looks like a {what} "
                     f"(looked for {wanted}); name it")


def read_curve(path, capacity=None, voltage=None, capacity_scale=1.0):
    """Read one measured curve: capacity and voltage columns of a delimited text file.

    Parameters
    ----------
    path : str or Path
        CSV or text export (delimiter sniffed: comma, semicolon, tab).
    capacity, voltage : str, optional
        Column names; by default the first column whose header contains "capacity" (or
        another usual fragment) and "Ewe" / "voltage" / "potential".
    capacity_scale : float
        Factor to the capacity unit of the simulations (e.g. 1 / active mass in g to turn
        mAh into mAh/g).

    Returns
    -------
    pandas.DataFrame
        Columns ``capacity`` and ``voltage`` (rows with missing values dropped), with the
        source columns in ``attrs``.

    Raises
    ------
    InputError
        Unreadable file, no recognisable or named column, fewer than two numeric rows.

    Examples
    --------
    >>> curve = read_curve("cell01_C3.csv", capacity_scale=1 / 0.0123)  # doctest: +SKIP
    """
    import pandas as pd

    try:
        df = pd.read_csv(Path(path), sep=None, engine="python")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError("path", f"a readable CSV or text export, could not read {str(path)!r}: "
                         f"{exc}") from None
    cc = _find(df.columns, _CAPACITY, capacity, "capacity")
    vc = _find(df.columns, _VOLTAGE, voltage, "voltage")
    out = pd.DataFrame({"capacity": pd.to_numeric(df[cc], errors="coerce") * float(capacity_scale),
                        "voltage": pd.to_numeric(df[vc], errors="coerce")}).dropna()
    if len(out) < 2 or not np.isfinite(out.values).all():
        raise InputError("path", f"two or more numeric (capacity, voltage) rows in {str(path)!r}")
    out.attrs = {"source": str(path), "capacity_column": str(cc), "voltage_column": str(vc),
                 "capacity_scale": float(capacity_scale)}
    return out.reset_index(drop=True)
