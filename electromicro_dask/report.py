"""HTML reports: a summary, figures (embedded PNG) and tables, plus ``summary.json``."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from .core.store import jsonable

__all__ = ["write_report"]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:.85em}"""


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(out_dir, title, summary, figures=None, tables=None):
    """Write ``report.html``, ``summary.json`` and the figures as PNG files.

    Parameters
    ----------
    out_dir : str or Path
        Directory (created).
    title : str
        Report title.
    summary : dict
        JSON-serialisable numbers; written to ``summary.json`` and shown in the report.
    figures : dict, optional
        ``{name: matplotlib Figure}``; embedded in the HTML and saved as ``<name>.png``.
    tables : dict, optional
        ``{name: pandas DataFrame}`` shown as HTML tables.

    Returns
    -------
    Path
        Path of ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(jsonable(summary), indent=2))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for name, table in (tables or {}).items():
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(table.to_html(float_format=lambda v: f"{v:.4g}"))
    for name, fig in (figures or {}).items():
        data = _png(fig)
        (out / f"{name}.png").write_bytes(base64.b64decode(data))
        parts.append(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' "
                     f"src='data:image/png;base64,{data}'>")
    parts.append("<h2>summary</h2><pre>" + html.escape(json.dumps(jsonable(summary), indent=2))
                 + "</pre>")
    if (out / "dask-performance.html").exists():
        parts.append("<p><a href='dask-performance.html'>dask performance report</a></p>")
    parts.append("</body></html>")
    path = out / "report.html"
    tmp = out / ".report.html.tmp"
    tmp.write_text("\n".join(parts))
    tmp.replace(path)
    return path
