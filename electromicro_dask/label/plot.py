"""Figure for particle tables: size and aspect-ratio histograms, surface-coverage scatter
(seed 000 Figs. 2 and 3B)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import InputError
from .distribution import size_distribution

__all__ = ["plot_size_distribution"]


def plot_size_distribution(props, ax=None, bins=20, weight="number"):
    """Histograms of equivalent diameter and aspect ratio, and a coverage scatter.

    Parameters
    ----------
    props : pandas.DataFrame
        A :func:`regionprops` table.
    ax : sequence of matplotlib Axes, optional
        Axes to draw on (two, or three when the table has ``coverage_*`` columns); by
        default a new figure with one row of panels.
    bins : int
        Histogram bins.
    weight : {"number", "volume"}
        Weighting of the diameter histogram.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> fig = plot_size_distribution(pd.DataFrame({"equivalent_diameter_um": [1.0, 2.0],
    ...                              "aspect_ratio": [1.2, 1.5], "volume_um3": [0.5, 4.2]}))
    >>> len(fig.axes)
    2
    """
    # A bare Figure (no pyplot): works headless with any backend and is not kept alive
    # by pyplot's figure registry.
    from matplotlib.figure import Figure

    if not isinstance(props, pd.DataFrame) or "equivalent_diameter_um" not in props:
        raise InputError("props", "a regionprops DataFrame with equivalent_diameter_um")
    coverage = [c for c in props.columns if c.startswith("coverage_")]
    n = 2 + (1 if coverage else 0)
    if ax is None:
        fig = Figure(figsize=(4.2 * n, 3.4), layout="constrained")
        axes = [fig.add_subplot(1, n, i + 1) for i in range(n)]
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) < n:
            raise InputError("ax", f"{n} axes for this table, got {len(axes)}")
        fig = axes[0].figure
    dist = size_distribution(props, weight=weight, bins=bins)
    axes[0].bar(dist["centre_um"], dist["share"], width=dist["upper_um"] - dist["lower_um"],
                color="tab:blue", edgecolor="white")
    axes[0].set_xlabel("equivalent diameter (um)")
    axes[0].set_ylabel(f"{weight} share")
    axes[0].set_title(f"n = {len(props)}, d50 = {dist.attrs['d50_um']:.3g} um")
    ar = props["aspect_ratio"].to_numpy(dtype=float) if "aspect_ratio" in props else np.array([])
    ar = ar[np.isfinite(ar)]
    axes[1].hist(ar, bins=bins, color="tab:orange", edgecolor="white")
    axes[1].set_xlabel("aspect ratio (longest / shortest axis)")
    axes[1].set_ylabel("particles")
    if coverage:
        d = props["equivalent_diameter_um"]
        for c in coverage:
            axes[2].scatter(d, props[c], s=8, label=c.removeprefix("coverage_"), alpha=0.7)
        axes[2].set_xlabel("equivalent diameter (um)")
        axes[2].set_ylabel("surface coverage")
        axes[2].set_ylim(0, 1)
        axes[2].legend(fontsize="small")
    return fig
