"""A real single-node Son of Grid Engine on localhost running the demo recipe through
``connect("sge")``, with and without a worker job deleted (``qdel``) mid-run.

Setup follows ../shared/notes/deploy.md (SGE): preseeded master host, ``host_aliases``
for localhost, ``min_uid 0`` for root jobs, a 1 s scheduling interval and a queue ``all.q``
on this host. Daemons started here are stopped by PID. Skipped when the gridengine
binaries are missing (``.ci/install-schedulers.sh`` installs them) or when not root.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import dask
import pytest

from electromicro_dask.core.cluster import connect
from electromicro_dask.runner import run

from test_deploy_slurm import CHUNK_BYTES, RECIPE, _alive, _same  # noqa: F401
from test_deploy_slurm import reference  # noqa: F401  (fixture)

pytestmark = [pytest.mark.scheduler, pytest.mark.slow]

SGE_ROOT, SGE_CELL = "/var/lib/gridengine", "default"
BIN = ("sge_qmaster", "sge_execd", "qconf", "qsub", "qstat", "qdel")

_SETUP = r"""
set -euo pipefail
H=$(hostname -s)
export SGE_ROOT=%(root)s SGE_CELL=%(cell)s
C=$SGE_ROOT/$SGE_CELL/common
grep -q . $C/act_qmaster 2>/dev/null || echo "$H" > $C/act_qmaster
echo "$H localhost" > $C/host_aliases
mkdir -p /var/run/gridengine /var/spool/gridengine/execd
chown sgeadmin:sgeadmin /var/run/gridengine /var/spool/gridengine/execd
"""

_CONFIGURE = r"""
set -euo pipefail
H=$(hostname -s); T=%(tmp)s
for i in $(seq 120); do qconf -sh >/dev/null 2>&1 && break; sleep 0.5; done
qconf -sconf global | sed -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' > $T/global
qconf -Mconf $T/global >/dev/null
qconf -ssconf | sed 's/^schedule_interval .*/schedule_interval 0:0:1/' > $T/sched
qconf -Msconf $T/sched >/dev/null
qconf -ss 2>/dev/null | grep -qx "$H" || qconf -as "$H" >/dev/null
if ! qconf -sel 2>/dev/null | grep -qx "$H"; then
  printf 'hostname %%s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' "$H" > $T/exechost
  qconf -Ae $T/exechost >/dev/null
fi
"""

_QUEUE = r"""
set -euo pipefail
H=$(hostname -s); T=%(tmp)s
# A queue left in the spool by an earlier run keeps its settings: make sure of the slots
if qconf -sql 2>/dev/null | grep -qx all.q; then
  qconf -mattr queue slots %(slots)d all.q >/dev/null 2>&1 || true
  exit 0
fi
cat > $T/all.q <<Q
qname all.q
hostlist $H
seq_no 0
load_thresholds NONE
suspend_thresholds NONE
nsuspend 1
suspend_interval 00:05:00
priority 0
min_cpu_interval 00:05:00
processors UNDEFINED
qtype BATCH INTERACTIVE
ckpt_list NONE
pe_list NONE
rerun FALSE
slots %(slots)d
tmpdir /tmp
shell /bin/bash
prolog NONE
epilog NONE
shell_start_mode unix_behavior
starter_method NONE
suspend_method NONE
resume_method NONE
terminate_method NONE
notify 00:00:60
owner_list NONE
user_lists NONE
xuser_lists NONE
subordinate_list NONE
complex_values NONE
projects NONE
xprojects NONE
calendar NONE
initial_state default
s_rt INFINITY
h_rt INFINITY
s_cpu INFINITY
h_cpu INFINITY
s_fsize INFINITY
h_fsize INFINITY
s_data INFINITY
h_data INFINITY
s_stack INFINITY
h_stack INFINITY
s_core INFINITY
h_core INFINITY
s_rss INFINITY
h_rss INFINITY
s_vmem INFINITY
h_vmem INFINITY
Q
qconf -Aq $T/all.q >/dev/null
"""


def _which(name):
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")


def _stop_stale_daemon(pid_file):
    """SIGTERM the SGE daemon a pid file names, if it is still running, and wait for it."""
    try:
        pid = int(Path(pid_file).read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return
    if not comm.startswith("sge_"):
        return
    os.kill(pid, signal.SIGTERM)
    t_end = time.time() + 20
    while _alive(pid) and time.time() < t_end:
        time.sleep(0.2)


def _pid(path, timeout=30.0):
    t_end = time.time() + timeout
    while time.time() < t_end:
        for p in glob.glob(path):
            try:
                return int(Path(p).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        time.sleep(0.2)
    raise RuntimeError(f"no pid file {path}")


@pytest.fixture(scope="module")
def sge(tmp_path_factory):
    missing = [b for b in BIN if not _which(b)]
    if missing or not Path(SGE_ROOT, SGE_CELL, "common").is_dir():
        pytest.skip(f"gridengine not installed (missing {missing}); run .ci/install-schedulers.sh")
    if os.geteuid() != 0:
        pytest.skip("starting sge_qmaster/sge_execd needs root")
    tmp = tmp_path_factory.mktemp("sge")
    env = {**os.environ, "SGE_ROOT": SGE_ROOT, "SGE_CELL": SGE_CELL}
    started = []
    old = {k: os.environ.get(k) for k in ("SGE_ROOT", "SGE_CELL")}
    os.environ.update(SGE_ROOT=SGE_ROOT, SGE_CELL=SGE_CELL)

    def sh(script):
        # two worker jobs at once whatever nproc says (it follows OMP_NUM_THREADS)
        fill = {"root": SGE_ROOT, "cell": SGE_CELL, "tmp": tmp,
                "slots": max(2, os.cpu_count() or 1)}
        r = subprocess.run(["bash", "-c", script % fill],
                           env=env, capture_output=True, text=True)
        if r.returncode:
            pytest.fail(f"SGE setup failed: {r.stdout[-1000:]} {r.stderr[-1000:]}")

    try:
        sh(_SETUP)
        # A run killed before its teardown leaves its daemons up (a second qmaster would
        # not start); otherwise a stale pid file names someone else's process.
        for f in glob.glob("/var/spool/gridengine/qmaster/qmaster.pid") + \
                glob.glob("/var/spool/gridengine/execd/*/execd.pid"):
            _stop_stale_daemon(f)
            os.unlink(f)
        subprocess.run([_which("sge_qmaster")], env=env, check=True)
        started.append(_pid("/var/spool/gridengine/qmaster/qmaster.pid"))
        sh(_CONFIGURE)
        subprocess.run([_which("sge_execd")], env=env, check=True)
        started.append(_pid("/var/spool/gridengine/execd/*/execd.pid"))
        sh(_QUEUE)
        host = socket.gethostname().split(".")[0]
        t_end = time.time() + 60
        while time.time() < t_end:
            out = subprocess.run(["qstat", "-f"], env=env, capture_output=True, text=True).stdout
            if f"all.q@{host}" in out and "au" not in out.split(f"all.q@{host}")[1].split("\n")[0]:
                break
            time.sleep(0.5)
        yield tmp
    finally:
        for pid in reversed(started):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        for pid in reversed(started):
            t_end = time.time() + 20
            while _alive(pid) and time.time() < t_end:
                time.sleep(0.2)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_sge_demo_equals_local_and_survives_qdel(sge, reference, tmp_path, wait_running):
    client = connect("sge", adapt=(2, 2), quiet=True, queue="all.q", cores=1, processes=1,
                     memory="2GB", walltime="00:15:00", resource_spec="mem_free=2G",
                     interface="lo", name="emd-test", local_directory=str(sge / "scratch"),
                     log_directory=str(sge / "joblogs"), job_extra_directives=[],
                     worker_extra_args=[])
    try:
        wait_running(client, 2, timeout=180)
        jobs = client.run(lambda: os.environ.get("JOB_ID"))
        assert len(jobs) == 2 and all(jobs.values())
        with dask.config.set({"electromicro.chunk-bytes": CHUNK_BYTES}):
            run(RECIPE, store=tmp_path / "sge.zarr", client=client, report=False, quiet=True)
        _same(tmp_path / "sge.zarr", reference)

        jobs = client.run(lambda: os.environ.get("JOB_ID"))
        deleted = {}

        def deleter():
            t_end = time.time() + 300
            while time.time() < t_end and not deleted:
                busy = [w for w, ks in client.processing().items() if ks and w in jobs]
                if busy:
                    subprocess.run(["qdel", jobs[busy[0]]], check=True, capture_output=True)
                    deleted["job"] = jobs[busy[0]]
                    return
                time.sleep(0.01)

        th = threading.Thread(target=deleter, daemon=True)
        th.start()
        with dask.config.set({"electromicro.chunk-bytes": CHUNK_BYTES}):
            run(RECIPE, store=tmp_path / "qdel.zarr", client=client, report=False, quiet=True)
        th.join(10)
        assert deleted, "no worker job was seen with tasks"
        _same(tmp_path / "qdel.zarr", reference)
        t_end = time.time() + 180
        while time.time() < t_end:
            now = set(client.run(lambda: os.environ.get("JOB_ID")).values())
            if len(now) == 2 and deleted["job"] not in now:
                break
            time.sleep(1)
        assert len(now) == 2 and deleted["job"] not in now, now
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
