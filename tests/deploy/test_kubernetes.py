"""configs/kubernetes/: every object valid against the Kubernetes API schemas (kubernetes-validate, offline,
strict: no unknown fields), and the objects agree with each other and with the code: probes on the paths the
core and the outpost answer, Services and the ServiceMonitor reaching ports that exist, every AUTHENTIK_*
variable one the README documents."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.support.server import REPO

MANIFESTS = REPO / "configs" / "kubernetes"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# CRDs that kubernetes-validate has no schema for, checked below by hand
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def documents() -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        found += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def objects(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == kind}


def containers(deployment: dict) -> list[dict]:
    return deployment["spec"]["template"]["spec"]["containers"]


def test_the_topology_is_there():
    assert set(objects("Deployment")) == {"gatehouse-server", "gatehouse-worker", "gatehouse-outpost-proxy"}
    assert {"gatehouse-server", "gatehouse-server-metrics", "gatehouse-outpost-proxy",
            "gatehouse-outpost-proxy-metrics"} <= set(objects("Service"))
    assert objects("ServiceMonitor") and objects("ConfigMap") and objects("PodDisruptionBudget")
    assert objects("Deployment")["gatehouse-server"]["spec"]["replicas"] == 2


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schemas(version):
    checked = 0
    for path, doc in documents():
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {exc.message} at "
                        f"{'.'.join(map(str, exc.path))}")
        checked += 1
    assert checked >= 8


def test_probes_use_the_health_endpoints():
    deployments = objects("Deployment")
    for name in ("gatehouse-server", "gatehouse-outpost-proxy"):
        [container] = containers(deployments[name])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 9000, "https": 9443, "metrics": 9300}
        assert container["livenessProbe"]["httpGet"] == {"path": "/-/health/live/", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/-/health/ready/", "port": "http"}
    [worker] = containers(deployments["gatehouse-worker"])
    assert worker["livenessProbe"]["exec"]["command"] == ["ak", "healthcheck", "--mode", "worker"]


def test_services_and_the_service_monitor_reach_existing_ports():
    deployments = objects("Deployment")
    pods = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}
    for name, service in objects("Service").items():
        selector = service["spec"]["selector"]
        targets = [d for d, labels in pods.items() if selector.items() <= labels.items()]
        assert len(targets) == 1, f"Service {name} selects {targets}"
        port_names = {p["name"] for p in containers(deployments[targets[0]])[0]["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"Service {name}: no container port {port['targetPort']}"
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items(), name
    [monitor] = objects("ServiceMonitor").values()
    [expression] = monitor["spec"]["selector"]["matchExpressions"]
    assert expression["key"] == "app.kubernetes.io/component" and expression["operator"] == "In"
    scraped = [s for s in objects("Service").values()
               if s["metadata"]["labels"].get(expression["key"]) in expression["values"]]
    assert {s["metadata"]["name"] for s in scraped} == {"gatehouse-server-metrics", "gatehouse-outpost-proxy-metrics"}
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
        assert endpoint["path"] == "/metrics"
        assert all(endpoint["port"] in {p["name"] for p in s["spec"]["ports"]} for s in scraped)


def test_outpost_takes_host_and_token_from_a_secret():
    [container] = containers(objects("Deployment")["gatehouse-outpost-proxy"])
    env = {e["name"]: e for e in container["env"]}
    for name in ("AUTHENTIK_HOST", "AUTHENTIK_TOKEN"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "gatehouse-outpost-proxy-api" and not ref.get("optional")


def test_core_secrets_only_from_the_secret():
    config = next(iter(objects("ConfigMap").values()))["data"]
    assert not [k for k in config if re.search(r"SECRET|PASSWORD|TOKEN", k)]
    for name in ("gatehouse-server", "gatehouse-worker"):
        [container] = containers(objects("Deployment")[name])
        env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert env["AUTHENTIK_SECRET_KEY"] == {"name": "gatehouse", "key": "secret_key"}  # required: no per-pod key
        assert env["AUTHENTIK_POSTGRESQL__PASSWORD"]["name"] == "gatehouse"


def test_every_variable_is_documented():
    readme = (REPO / "README.md").read_text()
    names = set()
    for path in MANIFESTS.glob("*.yaml"):
        names |= set(re.findall(r"\bAUTHENTIK_[A-Z0-9_]+", path.read_text()))
    for name in sorted(names):
        head, _, tail = name.rpartition("__")
        assert name in readme or (head and f"`{head}__" in readme and f"`__{tail}`" in readme), \
            f"{name} (configs/kubernetes) is not in README's configuration tables"


def test_the_pods_environment_is_a_valid_configuration(tmp_path):
    """What a core pod and an outpost pod would be given (the ConfigMap, the Secret's keys) starts."""
    from core.config import load as core_load
    from outpost.config import load as outpost_load

    config = next(iter(objects("ConfigMap").values()))["data"]
    core = core_load({**config, "AUTHENTIK_DATA_DIR": str(tmp_path), "AUTHENTIK_SECRET_KEY": "s" * 50,
                      "AUTHENTIK_POSTGRESQL__PASSWORD": "pw"})
    assert core.postgresql.host == "postgresql" and core.redis.host == "redis"
    [container] = containers(objects("Deployment")["gatehouse-outpost-proxy"])
    env = {"AUTHENTIK_HOST": "http://gatehouse-server", "AUTHENTIK_TOKEN": "outpost-token"}
    for item in container["env"]:
        ref = item["valueFrom"].get("configMapKeyRef")
        if ref:
            env[item["name"]] = config[ref["key"]]
    outpost = outpost_load(env)
    assert outpost.redis_url == "redis://redis:6379/0"
