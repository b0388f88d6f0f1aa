"""deploy/dask.yaml is valid dask config and is what connect() sizes clusters from."""

from pathlib import Path

import dask
import yaml

from electromicro_dask.core.cluster import _adapt, local_cluster_size

DEPLOY = Path(__file__).parents[2] / "deploy"


def test_dask_yaml_keys_are_known_to_dask():
    cfg = yaml.safe_load((DEPLOY / "dask.yaml").read_text())
    import distributed  # noqa: F401  (loads distributed's defaults)

    for section in ("distributed", "array"):
        def walk(node, prefix):
            for k, v in node.items():
                key = f"{prefix}.{k}"
                assert dask.config.get(key, "MISSING") != "MISSING", f"{key}: not a dask setting"
                if isinstance(v, dict) and isinstance(dask.config.get(key), dict):
                    walk(v, key)
        walk(cfg[section], section)


def test_sizes_come_from_the_config():
    cfg = yaml.safe_load((DEPLOY / "dask.yaml").read_text())
    with dask.config.set(cfg):
        n, threads, mem = local_cluster_size()
        assert threads == 1 and n >= 1 and mem > 0            # null: sized to the machine
    with dask.config.set({"electromicro.local": {"n-workers": 3, "threads-per-worker": 2,
                                                 "memory-limit": "700MiB"}}):
        assert local_cluster_size() == (3, 2, "700MiB")


def test_adaptive_bounds_from_config():
    calls = []

    class Fake:
        def adapt(self, **kw):
            calls.append(kw)

    with dask.config.set({"electromicro.adapt": {"minimum": 2, "maximum": 6}}):
        _adapt(Fake(), None)
    with dask.config.set({"electromicro.adapt": {"minimum": None, "maximum": None}}):
        _adapt(Fake(), None)                                   # fixed size: no adapt call
    _adapt(Fake(), (1, None))
    assert calls == [{"minimum": 2, "maximum": 6}, {"minimum": 1}]
