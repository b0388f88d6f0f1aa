"""deploy/kubernetes/ and the specs ``connect("k8s")`` submits, validated offline.

No Kubernetes API server can run here, so no live cluster is exercised. Custom resources
(DaskCluster, DaskWorkerGroup, DaskJob) are checked against the OpenAPI v3 schemas of the
CRDs shipped inside the installed dask-kubernetes package, strictly (unknown fields are
errors, as ``kubectl --validate=strict`` makes them); built-in kinds with
``kubernetes-validate --strict``. Method: ../shared/notes/deploy.md, section 2.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

dask_kubernetes = pytest.importorskip("dask_kubernetes")
jsonschema = pytest.importorskip("jsonschema")

from electromicro_dask.core.cluster import (  # noqa: E402
    kubernetes_cluster_spec,
    kubernetes_gpu_worker_group_spec,
)

K8S = Path(__file__).parents[2] / "deploy" / "kubernetes"
CHART = Path(dask_kubernetes.__file__).parent / "operator/deployment/helm/dask-kubernetes-operator"


def _to_jsonschema(node):
    """Kubernetes structural openAPIV3Schema -> JSON Schema, unknown fields forbidden."""
    if isinstance(node, list):
        return [_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "x-kubernetes-int-or-string" and v:
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        elif k.startswith("x-kubernetes-") or k == "format":
            continue
        elif k in ("properties", "patternProperties"):
            out[k] = {p: _to_jsonschema(s) for p, s in v.items()}
        else:
            out[k] = _to_jsonschema(v)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if node.get("nullable") and out.get("type"):
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    return out


def _schemas():
    out = {}
    for f in (CHART / "crds").glob("*.yaml"):
        crd = yaml.safe_load(f.read_text())
        for v in crd["spec"]["versions"]:
            s = _to_jsonschema(v["schema"]["openAPIV3Schema"])
            s.setdefault("properties", {}).update(
                {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                 "metadata": {"type": "object"}, "status": {"type": "object"}})
            out[(f"{crd['spec']['group']}/{v['name']}", crd["spec"]["names"]["kind"])] = s
    return out


SCHEMAS = _schemas()


def validate_custom(doc):
    """Error messages ``path: message`` for one custom resource (empty when valid)."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in SCHEMAS:
        return [f"apiVersion/kind: no CRD for {key}; known {sorted(SCHEMAS)}"]
    v = jsonschema.Draft202012Validator(SCHEMAS[key])
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def _docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_crds_found():
    kinds = {k for _, k in SCHEMAS}
    assert {"DaskCluster", "DaskWorkerGroup", "DaskJob"} <= kinds


@pytest.mark.parametrize("name", ["daskcluster.yaml", "daskjob.yaml"])
def test_deploy_manifests_validate(name):
    docs = _docs(K8S / name)
    assert docs
    for doc in docs:
        assert validate_custom(doc) == [], doc["kind"]


def test_connect_k8s_specs_validate():
    spec = kubernetes_cluster_spec(name="emd", n_workers=2, image="img:1",
                                   resources={"limits": {"cpu": "1", "memory": "2Gi"}})
    assert validate_custom(spec) == []
    gpu = kubernetes_gpu_worker_group_spec("emd", n_workers=1, image="img:cuda")
    assert validate_custom(gpu) == []
    args = gpu["spec"]["worker"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--resources", "GPU=1"]
    assert gpu["spec"]["worker"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # No shared sub-dicts: dumping gives no YAML anchors/aliases.
    assert "&id" not in yaml.safe_dump(spec)


@pytest.mark.parametrize("path, change, field", [
    (("spec", "worker", "replicas"), "two", "spec.worker.replicas"),
    (("spec", "worker", "replica"), 2, "spec.worker"),          # misspelt key
    (("spec", "scheduler", "spec", "containers", 0, "imagePullPolicy"), 3,
     "spec.scheduler.spec.containers.0.imagePullPolicy"),
])
def test_broken_manifest_fails_naming_the_field(path, change, field):
    doc = copy.deepcopy(_docs(K8S / "daskcluster.yaml")[0])
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = change
    errors = validate_custom(doc)
    assert errors and any(e.startswith(field + ":") for e in errors), errors


def _kubernetes_validate():
    exe = Path(sys.executable).parent / "kubernetes-validate"
    if exe.exists():
        return str(exe)
    found = shutil.which("kubernetes-validate")
    if not found:
        pytest.skip("kubernetes-validate not installed (pip install kubernetes-validate)")
    return found


def test_builtin_kinds_validate_strict(tmp_path):
    exe = _kubernetes_validate()
    files = [K8S / "store-secret.yaml", *sorted((CHART / "crds").glob("*.yaml"))]
    r = subprocess.run([exe, "--strict", *map(str, files)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = tmp_path / "bad.yaml"
    doc = _docs(K8S / "store-secret.yaml")[0]
    doc["immutable"] = "yes"
    bad.write_text(yaml.safe_dump(doc))
    r = subprocess.run([exe, "--strict", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "immutable" in r.stdout + r.stderr


def test_operator_values_are_chart_keys():
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    ours = yaml.safe_load((K8S / "operator-values.yaml").read_text())

    def check(a, b, where):
        for k, v in a.items():
            assert k in b, f"{where}{k}: not a value of the chart; known {sorted(b)}"
            if isinstance(v, dict) and isinstance(b[k], dict) and b[k]:
                check(v, b[k], f"{where}{k}.")

    check(ours, defaults, "")
