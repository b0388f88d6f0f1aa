"""The dask dashboard and the run's HTML report in a real headless Chromium (issue 10, item 8).

Chromium is driven over its DevTools protocol (tornado's websocket client, a dependency of
distributed): the dashboard's Bokeh plots arrive over a websocket after the page loads,
so a plain ``--screenshot`` shows an empty page (../shared/notes/deploy.md, section 5).
Screenshots are written to ``$EMD_SCREENSHOT_DIR`` (default: the test's tmp dir).
Skipped when no ``chromium`` binary is installed (``.ci/install-schedulers.sh`` installs it).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import dask
import pytest

from electromicro_dask.runner import run

CHROME = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-quic", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--allow-file-access-from-files"]

pytestmark = pytest.mark.skipif(CHROME is None, reason="chromium not installed; run "
                                ".ci/install-schedulers.sh (Debian package 'chromium')")


class Chromium:
    """One headless Chromium with a fresh profile, one page, DevTools calls by websocket."""

    def __init__(self, width=1600, height=1000, timeout=90.0):
        self.size, self.timeout = (width, height), timeout

    async def __aenter__(self):
        from tornado.httpclient import AsyncHTTPClient
        from tornado.websocket import websocket_connect

        self.profile = tempfile.mkdtemp(prefix="emd-chromium-")
        self.log = open(os.path.join(self.profile, "stderr.log"), "w")
        self.proc = subprocess.Popen(
            [CHROME, *FLAGS, f"--user-data-dir={self.profile}",
             f"--window-size={self.size[0]},{self.size[1]}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self.log)
        portfile, t_end = Path(self.profile) / "DevToolsActivePort", time.time() + self.timeout
        while not (portfile.exists() and portfile.read_text().strip()):
            if self.proc.poll() is not None or time.time() > t_end:
                raise RuntimeError("chromium did not start: " + Path(self.log.name).read_text()[-800:])
            await asyncio.sleep(0.1)
        port = int(portfile.read_text().split()[0])
        r = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/json/new?about:blank",
                                          method="PUT", body=b"")
        self.ws = await websocket_connect(json.loads(r.body)["webSocketDebuggerUrl"],
                                          max_message_size=64 << 20)
        self._id = 0
        return self

    async def call(self, method, **params):
        self._id += 1
        i = self._id
        await self.ws.write_message(json.dumps({"id": i, "method": method, "params": params}))
        while True:                                   # skip events until our reply
            msg = json.loads(await self.ws.read_message())
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    async def evaluate(self, expression):
        res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                              awaitPromise=True)
        return res["result"].get("value")

    async def goto(self, url):
        await self.call("Page.navigate", url=url)

    async def wait_for(self, expression, what):
        t_end = time.time() + self.timeout
        while time.time() < t_end:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.25)
        raise TimeoutError(f"{what} never happened")

    async def screenshot(self, path):
        shot = await self.call("Page.captureScreenshot", format="png")
        Path(path).write_bytes(base64.b64decode(shot["data"]))
        return Path(path)

    async def __aexit__(self, *exc):
        self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


_BOKEH_ROOTS = "(window.Bokeh && Bokeh.documents.length) ? Bokeh.documents[0].roots().length : 0"
# Rectangles drawn in the task stream: its ColumnDataSource holds one row per task run.
_TASK_STREAM_ROWS = """(() => {
  if (!(window.Bokeh && Bokeh.documents.length)) return 0;
  let n = 0;
  for (const m of Bokeh.documents[0].all_models) {
    if (m.type === "ColumnDataSource" && m.data && m.data.start && m.data.duration && m.data.key)
      n = Math.max(n, m.data.key.length);
  }
  return n;
})()"""
_IMAGES = """Array.from(document.images).map(i => ({src: i.getAttribute('src').slice(0, 60),
  complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}))"""


def test_dashboard_and_report_in_chromium(tmp_path):
    from distributed import Client, LocalCluster

    shots = Path(os.environ.get("EMD_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "report"
    recipe = {"pipeline": "demo", "parameters": {"size": 40, "particle_radius_um": [2.0, 0.4]}}
    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="2GiB",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        result, error = {}, []

        def runner():
            try:
                with dask.config.set({"electromicro.chunk-bytes": 4096}):
                    result["r"] = run(recipe, store=tmp_path / "s.zarr", client=client, out=out,
                                      quiet=True)
            except Exception as exc:  # reported by the main thread
                error.append(exc)

        th = threading.Thread(target=runner)
        th.start()

        async def dashboard():
            async with Chromium() as c:
                await c.goto(client.dashboard_link)                # .../status
                roots = await c.wait_for(_BOKEH_ROOTS, "the Bokeh document arriving")
                rows = await c.wait_for(_TASK_STREAM_ROWS, "tasks in the task stream")
                await asyncio.sleep(1.0)
                png = await c.screenshot(shots / "dashboard-status.png")
                return roots, rows, png

        roots, rows, png = asyncio.run(dashboard())
        th.join(600)
        assert not error, error
    assert roots >= 1 and rows >= 1
    assert png.stat().st_size > 20_000            # an empty page is a few KB

    report = result["r"].report
    assert report is not None and Path(report).is_file()

    async def report_page():
        async with Chromium() as c:
            await c.goto(Path(report).resolve().as_uri())
            await c.wait_for("document.readyState === 'complete'", "the report loading")
            await c.wait_for("Array.from(document.images).every(i => i.complete)", "images loading")
            images = await c.evaluate(_IMAGES)
            await c.screenshot(shots / "report.png")
            return images

    images = asyncio.run(report_page())
    assert len(images) >= 2, images                # the demo's slices and profile figures
    assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in images), images
