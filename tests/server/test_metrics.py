"""authentik's metric names, types and labels on the real endpoints (issue 8 item 15).

One ``ak server`` (core + embedded outpost) and one standalone ``ak outpost proxy``; real traffic: a login through
the standalone outpost's proxy mode (start, the core's authorize and flow executor, the callback, the proxied
request to an echo upstream), forward auth and ping on the embedded outpost, API calls. Then both metrics
listeners are scraped and parsed with prometheus_client's text parser. Only names, types and label sets are
asserted: values depend on timing.

The sources of the names: authentik/flows/apps.py, authentik/policies/apps.py, authentik/outposts/apps.py,
internal/web/metrics.go, internal/outpost/ak/metrics.go, internal/outpost/proxyv2/metrics/metrics.go.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.support.browser import Browser
from tests.e2e.support.stack import login, start_stack, until
from tests.e2e.support.upstream import start_upstream

PASSWORD = "Metered-Horse-7!"  # noqa: S105 - a test password

# name -> (type, label names) as authentik declares them (a histogram's samples add ``le``).
CORE = {
    "authentik_main_request_duration_seconds": ("histogram", {"dest"}),
    "authentik_main_requests": ("histogram", {"dest"}),
    "authentik_flows_plan_time": ("histogram", {"flow_slug"}),
    "authentik_flows_execution_stage_time": ("histogram", {"stage_type", "method"}),
    "authentik_policies_engine_time_total_seconds": ("histogram", {"obj_type", "obj_pk"}),
    "authentik_policies_execution_time": ("histogram", {"binding_order", "binding_target_type",
                                                        "binding_target_name", "object_pk", "object_type",
                                                        "mode"}),
    "authentik_outposts_connected": ("gauge", {"tenant", "outpost", "uid", "expected"}),
    "authentik_outposts_last_update": ("gauge", {"tenant", "outpost", "uid", "version"}),
    # the embedded outpost's, as on authentik's core
    "authentik_outpost_info": ("gauge", {"outpost_name", "outpost_type", "uuid", "version", "build"}),
    "authentik_outpost_last_update": ("gauge", {"outpost_name", "outpost_type", "uuid", "version", "build"}),
    "authentik_outpost_connection": ("gauge", {"outpost_name", "outpost_type", "uuid"}),
    "authentik_outpost_proxy_request_duration_seconds": ("histogram", {"outpost_name", "method", "host", "type"}),
    # ours, kept beside them
    "gatehouse_http_requests": ("counter", {"route", "method", "status"}),
    "gatehouse_http_request_duration_seconds": ("histogram", {"route"}),
}
OUTPOST = {
    "authentik_outpost_info": CORE["authentik_outpost_info"],
    "authentik_outpost_last_update": CORE["authentik_outpost_last_update"],
    "authentik_outpost_connection": CORE["authentik_outpost_connection"],
    "authentik_outpost_proxy_request_duration_seconds": CORE["authentik_outpost_proxy_request_duration_seconds"],
    "authentik_outpost_proxy_upstream_response_duration_seconds": (
        "histogram", {"outpost_name", "method", "scheme", "host", "upstream_host"}),
    "authentik_outpost_proxy_session_operations": ("counter", {"outpost_name", "operation", "backend"}),
    "authentik_outpost_proxy_session_operation_duration_seconds": ("histogram",
                                                                   {"outpost_name", "operation", "backend"}),
    "gatehouse_outpost_config_generation": ("gauge", set()),
}


def families(url: str) -> dict:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text[:500]
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def label_names(family) -> set[str]:
    """The labels of a family's samples, without the histogram's ``le``."""
    names = {frozenset(set(s.labels) - {"le"}) for s in family.samples if not s.name.endswith("_created")}
    assert len(names) == 1, f"{family.name}: samples with different label sets {names}"
    return set(next(iter(names)))


def values(family, label: str, suffix: str = "") -> set[str]:
    return {s.labels[label] for s in family.samples if s.name == family.name + suffix}


def check(found: dict, expected: dict) -> None:
    for name, (kind, labels) in expected.items():
        assert name in found, f"{name} missing; have {sorted(found)}"
        assert found[name].type == kind, f"{name}: {found[name].type}, expected {kind}"
        assert label_names(found[name]) == labels, f"{name}: labels {label_names(found[name])}, expected {labels}"


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """The stack after real traffic; yields (stack, details)."""
    upstream = start_upstream()
    stack = start_stack(tmp_path_factory.mktemp("metrics"), standalone=True, browser_host="127.0.0.1")
    try:
        api = stack.api
        # A proxy-mode application on the standalone outpost, with a group binding and a policy binding.
        app = stack.add_app("metered", f"http://app.test:{stack.standalone.port}", mode="proxy",
                            internal_host=f"http://{upstream.address}", group="metered-staff")
        application = api.first("/core/applications/", slug="metered")
        policy = api("POST", "/policies/expression/", json={"name": "always", "expression": "return True"})
        api("POST", "/policies/bindings/", json={"target": application["pk"], "policy": policy["pk"], "order": 5})
        stack.user("meter", PASSWORD, groups=["metered-staff"])
        with Browser() as browser:
            result = login(browser, app.external_url + "/private", "meter", PASSWORD)
            assert result.response.status_code == 200, result.response.text[:300]
            assert browser.get(app.external_url + "/again").status_code == 200
        # The embedded outpost: one application on it, forward auth (nginx) and ping on the core's port.
        embedded = api.first("/outposts/instances/", managed="goauthentik.io/outposts/embedded")
        flow = api.first("/flows/instances/", slug="default-provider-authorization-implicit-consent")["pk"]
        provider = api("POST", "/providers/proxy/", json={"name": "embedded-app", "mode": "forward_single",
                                                          "external_host": "http://embedded.test",
                                                          "authorization_flow": flow})
        api("POST", "/core/applications/", json={"name": "embedded-app", "slug": "embedded-app",
                                                  "provider": provider["pk"]})
        api("PATCH", f"/outposts/instances/{embedded['pk']}/",
            json={"providers": [*embedded["providers"], provider["pk"]]})
        nginx = stack.core.url + "/outpost.goauthentik.io/auth/nginx"
        until(lambda: httpx.get(nginx, headers={"X-Original-URL": "http://embedded.test/x"}).status_code == 401,
              10, "the embedded outpost serves embedded.test", stack.logs)
        assert httpx.get(stack.core.url + "/outpost.goauthentik.io/ping").status_code == 204
        yield stack, {"application": application, "policy": policy, "app": app, "upstream": upstream}
    finally:
        stack.stop()
        upstream.stop()


def test_core_exposes_authentiks_metrics(traffic):
    stack, seen = traffic
    found = families(stack.core.metrics_url)
    check(found, CORE)
    assert values(found["authentik_main_request_duration_seconds"], "dest", "_count") == {"core", "embedded_outpost"}
    assert "default-authentication-flow" in values(found["authentik_flows_plan_time"], "flow_slug", "_count")
    stages = {(s.labels["stage_type"], s.labels["method"]) for s in found["authentik_flows_execution_stage_time"].samples}
    assert {("authentik.stages.identification.stage.IdentificationStageView", "GET"),
            ("authentik.stages.identification.stage.IdentificationStageView", "POST"),
            ("authentik.stages.password.stage.PasswordStageView", "POST")} <= stages
    engine = {(s.labels["obj_type"], s.labels["obj_pk"]) for s in found["authentik_policies_engine_time_total_seconds"].samples}
    assert ("authentik.core.models.Application", str(seen["application"]["pk"])) in engine
    executed = [s.labels for s in found["authentik_policies_execution_time"].samples
                if s.name.endswith("_count") and s.labels["binding_target_name"] == "always"]
    assert executed and executed[0] == {
        "binding_order": "5", "binding_target_type": "policy", "binding_target_name": "always",
        "object_pk": str(seen["application"]["pk"]), "object_type": "authentik.core.models.Application",
        "mode": "execute_process"}
    connected = {s.labels["outpost"]: (s.labels["tenant"], s.value) for s in found["authentik_outposts_connected"].samples}
    standalone = stack.api("GET", f"/outposts/instances/{stack.outpost_pk}/")["name"]
    assert connected == {"authentik Embedded Outpost": ("public", 1.0), standalone: ("public", 1.0)}
    assert {s.labels["version"] for s in found["authentik_outposts_last_update"].samples} != {""}
    embedded = found["authentik_outpost_proxy_request_duration_seconds"]
    assert {(s.labels["type"], s.labels["host"]) for s in embedded.samples if s.name.endswith("_count")} == {
        ("ping", ""), ("app", "embedded.test")}
    assert values(found["authentik_outpost_connection"], "outpost_name") == {"authentik Embedded Outpost"}


def test_standalone_outpost_exposes_authentiks_metrics(traffic):
    stack, seen = traffic
    found = families(f"http://127.0.0.1:{stack.standalone.metrics_port}/metrics")
    check(found, OUTPOST)
    host = f"app.test:{stack.standalone.port}"
    requests = found["authentik_outpost_proxy_request_duration_seconds"]
    assert {s.labels["host"] for s in requests.samples if s.labels["type"] == "app"} == {host}
    upstream = {(s.labels["host"], s.labels["upstream_host"], s.labels["scheme"])
                for s in found["authentik_outpost_proxy_upstream_response_duration_seconds"].samples}
    assert upstream == {(host, seen["upstream"].address, "http")}
    operations = {(s.labels["operation"], s.labels["backend"])
                  for s in found["authentik_outpost_proxy_session_operations"].samples if s.name.endswith("_total")}
    assert {("save", "memory"), ("load", "memory")} <= operations
    assert {s.value for s in found["authentik_outpost_connection"].samples} == {1.0}
    info = next(iter(found["authentik_outpost_info"].samples)).labels
    core = families(stack.core.metrics_url)
    name = stack.api("GET", f"/outposts/instances/{stack.outpost_pk}/")["name"]
    uids = {s.labels["uid"] for s in core["authentik_outposts_connected"].samples if s.labels["outpost"] == name}
    assert info["outpost_type"] == "proxy" and info["outpost_name"] == name and uids == {info["uuid"]}


def test_client_chosen_hosts_and_methods_add_no_series(traffic):
    """THREATS 9: a flood of made-up Host / X-Forwarded-Host values and request methods must not grow the label
    sets (authentik labels the raw header and method); only configured applications' hosts and the standard
    methods (else ``other``) become series."""
    stack, _ = traffic
    app_host = f"app.test:{stack.standalone.port}"
    url = f"http://127.0.0.1:{stack.standalone.port}/outpost.goauthentik.io/auth/nginx"
    for index in range(30):
        httpx.get(url, headers={"Host": f"junk{index}.example", "X-Forwarded-Host": f"x{index}.example",
                                "X-Original-URL": f"http://junk{index}.example/"})
    for method in ("PROPFIND", "PURGE", "MKCOL", "LINK", "SEARCH"):  # llhttp refuses unknown tokens itself (400)
        httpx.request(method, url, headers={"X-Original-URL": f"http://{app_host}/public"})
    found = families(f"http://127.0.0.1:{stack.standalone.metrics_port}/metrics")
    samples = found["authentik_outpost_proxy_request_duration_seconds"].samples
    assert {s.labels["host"] for s in samples} <= {"", app_host}
    methods = {s.labels["method"] for s in samples}
    assert "other" in methods and methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
