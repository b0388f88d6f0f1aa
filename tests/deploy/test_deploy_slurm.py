"""A real single-node SLURM on localhost running the demo recipe through ``connect("slurm")``.

The fixture starts munged (unless one runs), slurmctld and slurmd from a slurm.conf
generated for this machine (``slurmd -C``; no cgroup plugins), in a private directory
named by ``SLURM_CONF``, and stops every daemon it started by PID at the end
(../shared/notes/deploy.md, section 1). Skipped when the binaries are missing
(``.ci/install-schedulers.sh`` installs them) or when not root. Deselect locally with
``-m 'not scheduler'``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import dask
import numpy as np
import pytest

from electromicro_dask.core.cluster import connect
from electromicro_dask.core.store import open_store, open_table, tables
from electromicro_dask.runner import run

pytestmark = [pytest.mark.scheduler, pytest.mark.slow]

RECIPE = {"pipeline": "demo", "parameters": {"size": 32, "particle_radius_um": [2.0, 0.4]}}
CHUNK_BYTES = 8192
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


def _which(name):
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _read_pid(path, timeout=20.0):
    t_end = time.time() + timeout
    while time.time() < t_end:
        try:
            return int(Path(path).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            time.sleep(0.1)
    raise RuntimeError(f"no pid file {path}")


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = [b for b in BINARIES if not _which(b)]
    if missing:
        pytest.skip(f"SLURM not installed (missing {missing}); run .ci/install-schedulers.sh")
    if os.geteuid() != 0:
        pytest.skip("starting slurmd/munged needs root")
    d = tmp_path_factory.mktemp("slurm")
    started = []                       # (name, pid) of every daemon this fixture started
    old_conf = os.environ.get("SLURM_CONF")
    try:
        # munge: one per host; reuse a running one, else start ours.
        Path("/run/munge").mkdir(exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        munge_pid = Path("/run/munge/munged.pid")
        if not (munge_pid.exists() and _alive(_read_pid(munge_pid, 1))):
            if not Path("/etc/munge/munge.key").exists():
                subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "--create"], check=True)
            subprocess.run(["runuser", "-u", "munge", "--", _which("munged")], check=True)
            started.append(("munged", _read_pid(munge_pid)))
        node = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True,
                              check=True).stdout.splitlines()[0]
        host = socket.gethostname().split(".")[0]
        for sub in ("state", "spool", "log"):
            (d / sub).mkdir()
        conf = d / "slurm.conf"
        conf.write_text(f"""\
ClusterName=emdtest
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        os.environ["SLURM_CONF"] = str(conf)
        subprocess.run([_which("slurmctld"), "-c", "-f", str(conf)], check=True)
        started.append(("slurmctld", _read_pid(d / "slurmctld.pid")))
        subprocess.run([_which("slurmd"), "-f", str(conf)], check=True)
        started.append(("slurmd", _read_pid(d / "slurmd.pid")))
        t_end = time.time() + 60
        while time.time() < t_end:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout
            if "idle" in out or "mix" in out:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"SLURM node never became idle: {out!r}\n"
                        + (d / "log/slurmctld.log").read_text()[-2000:])
        yield d
    finally:
        for _name, pid in reversed(started):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        for _name, pid in reversed(started):
            t_end = time.time() + 15
            while _alive(pid) and time.time() < t_end:
                time.sleep(0.1)
        if old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old_conf


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    store = tmp_path_factory.mktemp("slurm-ref") / "ref.zarr"
    with dask.config.set({"electromicro.chunk-bytes": CHUNK_BYTES, "scheduler": "threads"}):
        run(RECIPE, store=store, report=False, quiet=True)
    return store


def _same(got, ref):
    a, b = open_store(got), open_store(ref)
    assert sorted(a.data_vars) == sorted(b.data_vars)
    for name in b.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    for name in tables(ref):
        ta, tb = open_table(got, name), open_table(ref, name)
        assert ta == tb if isinstance(tb, dict) else ta.equals(tb), name


def _slurm_client(d):
    # Two one-core worker jobs kept alive by the adaptive minimum (a cancelled job is
    # replaced); sizes from arguments, everything else from deploy/slurm/jobqueue.yaml's keys.
    return connect("slurm", adapt=(2, 2), quiet=True, queue="debug", cores=1, processes=1,
                   memory="2GB", walltime="00:15:00", interface="lo", name="emd-test",
                   local_directory=str(d / "dask-scratch"), log_directory=str(d / "joblogs"),
                   job_extra_directives=[], worker_extra_args=[])


def _squeue():
    out = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def test_slurm_demo_equals_local_and_survives_scancel(slurm, reference, tmp_path,
                                                    wait_running):
    client = _slurm_client(slurm)
    try:
        wait_running(client, 2, timeout=180)
        jobs = client.run(lambda: os.environ.get("SLURM_JOB_ID"))
        assert len(jobs) == 2 and all(jobs.values())          # workers really are SLURM jobs

        # 1. undisturbed run on two SLURM worker jobs
        with dask.config.set({"electromicro.chunk-bytes": CHUNK_BYTES}):
            run(RECIPE, store=tmp_path / "slurm.zarr", client=client, report=False, quiet=True)
        _same(tmp_path / "slurm.zarr", reference)

        # 2. the same recipe with one worker job cancelled while it has tasks
        jobs = client.run(lambda: os.environ.get("SLURM_JOB_ID"))
        cancelled = {}

        def canceller():
            t_end = time.time() + 300
            while time.time() < t_end and not cancelled:
                busy = [w for w, ks in client.processing().items() if ks and w in jobs]
                if busy:
                    subprocess.run(["scancel", jobs[busy[0]]], check=True)
                    cancelled["job"] = jobs[busy[0]]
                    return
                time.sleep(0.01)

        th = threading.Thread(target=canceller, daemon=True)
        th.start()
        with dask.config.set({"electromicro.chunk-bytes": CHUNK_BYTES}):
            run(RECIPE, store=tmp_path / "scancel.zarr", client=client, report=False, quiet=True)
        th.join(10)
        assert cancelled, "no worker job was seen with tasks"
        _same(tmp_path / "scancel.zarr", reference)
        # The adaptive minimum submits a replacement job.
        t_end = time.time() + 180
        while time.time() < t_end:
            now = set(client.run(lambda: os.environ.get("SLURM_JOB_ID")).values())
            if len(now) == 2 and cancelled["job"] not in now:
                break
            time.sleep(1)
        assert len(now) == 2 and cancelled["job"] not in now, (now, _squeue())
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    t_end = time.time() + 60
    while _squeue() and time.time() < t_end:     # the cluster scancels its jobs on close
        time.sleep(0.5)
    assert not _squeue()


def test_pbs_job_script_from_deploy_config():
    """No PBS server exists in Debian or on PyPI: check the job script dask-jobqueue
    generates from deploy/pbs/jobqueue.yaml instead."""
    pytest.importorskip("dask_jobqueue")
    import yaml
    from dask_jobqueue import PBSCluster

    cfg = yaml.safe_load((Path(__file__).parents[2] / "deploy/pbs/jobqueue.yaml").read_text())
    pbs_defaults = dask.config.get("jobqueue.pbs")
    cfg = {"jobqueue.pbs": dask.config.merge(pbs_defaults, cfg["jobqueue"]["pbs"]),
           "jobqueue.pbs-gpu": dask.config.merge(pbs_defaults, cfg["jobqueue"]["pbs-gpu"])}
    with dask.config.set(cfg):
        with PBSCluster(scheduler_options={"dashboard_address": ":0"}) as cluster:
            script = cluster.job_script()
        with PBSCluster(config_name="pbs-gpu", scheduler_options={"dashboard_address": ":0"}) as gcluster:
            gscript = gcluster.job_script()
    pbs = cfg["jobqueue.pbs"]
    assert f"#PBS -q {pbs['queue']}" in script
    assert f"#PBS -l walltime={pbs['walltime']}" in script
    assert "--lifetime" in script and "--local-directory" in script
    assert "ngpus=1" in gscript and "--resources GPU=1" in gscript
