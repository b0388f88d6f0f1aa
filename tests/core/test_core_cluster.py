import pytest

from electromicro_dask.core.cluster import connect, local_cluster_size
from electromicro_dask.errors import InputError


def test_local_cluster_size_fits_machine():
    import os

    import psutil

    n, threads, mem = local_cluster_size()
    assert n == len(os.sched_getaffinity(0)) and threads == 1
    assert n * mem <= psutil.virtual_memory().total


def test_connect_local_and_address(capsys):
    client = connect(n_workers=1, memory_limit="500MiB", dashboard_address=":0")
    try:
        assert "Dashboard: http" in capsys.readouterr().err
        assert len(client.scheduler_info()["workers"]) == 1
        assert client.submit(lambda x: x + 1, 1).result() == 2
        other = connect(client.scheduler.address, quiet=True)
        assert other.submit(lambda: 5).result() == 5
        other.close()
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def test_connect_rejects_unknown():
    with pytest.raises(InputError, match="cluster"):
        connect("mainframe")
    with pytest.raises(InputError, match="scheduler file"):
        connect("/no/such/scheduler.json")
