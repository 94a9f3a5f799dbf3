"""The real thing for the e2e journeys: ``ak server`` (core + embedded outpost) or a standalone
``ak outpost proxy``, configured through the REST API, and a ``login()`` driver that goes through the
proxy, the outpost, the core's authorize endpoint and the flow executor API like a browser does.

    stack = start_stack(tmp_path, store="memory")            # or store="redis", standalone=True
    proxy = proxy_factory("nginx", outpost=stack.outpost_address, upstream=upstream.address)
    app = stack.add_app("whoami", proxy.external_url, group="staff")
    stack.user("alice", "pw", groups=["staff"])
    with Browser() as browser:
        result = login(browser, proxy.external_url + "/private", "alice", "pw")
        assert result.response.status_code == 200            # the echo upstream's answer
    stack.stop()

Everything binds 127.0.0.1. The core runs once per module (see tests/e2e/conftest.py ``stack`` fixture);
applications, users and groups are added per test or per proxy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import httpx

from tests.conftest import need
from tests.e2e.support.browser import Browser
from tests.support.api import Api
from tests.support.outpost import OutpostProcess
from tests.support.server import CoreProcess, free_port, start_core

BOOTSTRAP_TOKEN = "e2e-stack-bootstrap-token-" + "0123456789abcdef" * 2  # noqa: S105 - test value
AUTHENTICATION_FLOW = "default-authentication-flow"
AUTHORIZATION_FLOW = "default-provider-authorization-implicit-consent"
FLOW_PAGE = "/if/flow/"
SERVED_WITHIN = 10.0  # an API change reaches the outpost (TRIGGER_UPDATE + refetch); normally < 1 s
STANDALONE_READY = 30.0
STORES = ("memory", "redis")


def redis_available(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        import redis

        redis.Redis(host=host, port=port, socket_connect_timeout=1).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


def until(predicate, seconds: float, what: str, detail=lambda: ""):
    """Poll ``predicate`` every 20 ms until it returns something truthy; AssertionError after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {seconds} s\n{detail()}")
        time.sleep(0.02)


@dataclass
class App:
    name: str
    slug: str
    provider_pk: int
    external_url: str
    mode: str
    client_id: str
    group: str | None

    @property
    def cookie_name(self) -> str:
        import hashlib

        return "authentik_proxy_" + hashlib.sha256(self.client_id.encode()).hexdigest()[:8]


@dataclass
class Stack:
    core: CoreProcess
    api: Api
    store: str
    outpost_pk: str
    standalone: OutpostProcess | None = None
    browser_url: str = ""  # the core as the browser sees it (the outpost's authentik_host), no trailing /
    apps: dict[str, App] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # name -> pk

    # -- where things are ---------------------------------------------------------------------------
    @property
    def core_url(self) -> str:
        """The URL the "browser" uses for the core (authorize, flows): the outpost's authentik_host. By
        default http://localhost:<port>, so it differs from the outpost's back channel (127.0.0.1)."""
        return self.browser_url or self.core.url

    @property
    def outpost_address(self) -> str:
        """host:port the proxies send forward auth (and /outpost.goauthentik.io/*) to."""
        return self.standalone.address if self.standalone else f"127.0.0.1:{self.core.http_port}"

    @property
    def outpost_url(self) -> str:
        return f"http://{self.outpost_address}"

    def logs(self) -> str:
        """Core log tail (and the standalone outpost's), for failure messages."""
        text = "--- core ---\n" + self.core.tail(80)
        if self.standalone:
            text += "\n--- standalone outpost ---\n" + self.standalone.tail(60)
        return text

    # -- directory ------------------------------------------------------------------------------------
    def group(self, name: str) -> str:
        """The group's pk, creating it on first use."""
        if name not in self.groups:
            found = self.api("GET", "/core/groups/", params={"name": name})["results"]
            self.groups[name] = found[0]["pk"] if found else self.api("POST", "/core/groups/", json={"name": name})["pk"]
        return self.groups[name]

    def user(self, username: str, password: str, groups: tuple[str, ...] | list[str] = (), *,
             name: str | None = None, email: str | None = None) -> dict:
        user = self.api("POST", "/core/users/", json={
            "username": username, "name": name or username.title(), "email": email or f"{username}@example.test",
            "groups": [self.group(g) for g in groups]})
        self.api("POST", f"/core/users/{user['pk']}/set_password/", json={"password": password})
        return user

    def set_groups(self, user: dict, groups: tuple[str, ...] | list[str]) -> dict:
        return self.api("PATCH", f"/core/users/{user['pk']}/", json={"groups": [self.group(g) for g in groups]})

    # -- applications ------------------------------------------------------------------------------------
    def add_app(self, name: str, external_url: str, *, mode: str = "forward_single", internal_host: str = "",
                group: str | None = None, wait: bool = True, **provider_fields) -> App:
        """A proxy provider + an application (bound to ``group`` when given) served by this stack's outpost;
        waits until the outpost answers for ``external_url``'s host."""
        flow = self.api.first("/flows/instances/", slug=AUTHORIZATION_FLOW)["pk"]
        provider = self.api("POST", "/providers/proxy/", json={
            "name": name, "external_host": external_url, "internal_host": internal_host, "mode": mode,
            "authorization_flow": flow, **provider_fields})
        app = self.api("POST", "/core/applications/", json={"name": name, "slug": name,
                                                             "provider": provider["pk"]})
        if group is not None:
            self.api("POST", "/policies/bindings/", json={"target": app["pk"], "group": self.group(group),
                                                          "order": 0})
        outpost = self.api("GET", f"/outposts/instances/{self.outpost_pk}/")
        self.api("PATCH", f"/outposts/instances/{self.outpost_pk}/",
                 json={"providers": [*outpost["providers"], provider["pk"]]})
        result = App(name, name, provider["pk"], external_url.rstrip("/"), mode, provider["client_id"], group)
        self.apps[name] = result
        if wait:
            self.wait_served(external_url)
        return result

    def served(self, external_url: str) -> bool:
        """Does the outpost know the application at ``external_url`` (401 from the nginx flavour, not 400)?"""
        parts = urlsplit(external_url)
        response = httpx.get(self.outpost_url + "/outpost.goauthentik.io/auth/nginx", timeout=5, headers={
            "Host": parts.netloc, "X-Original-URL": external_url.rstrip("/") + "/"})
        return response.status_code == 401

    def wait_served(self, external_url: str) -> None:
        until(lambda: self.served(external_url), SERVED_WITHIN, f"outpost serves {external_url}", self.logs)

    # -- lifecycle --------------------------------------------------------------------------------------
    def stop(self) -> None:
        try:
            if self.standalone:
                self.standalone.stop()
        finally:
            self.api.close()
            self.core.stop()


def start_stack(workdir: Path, *, store: str = "memory", standalone: bool = False,
                env: dict | None = None, browser_host: str = "localhost") -> Stack:
    """Start ``ak server`` in ``workdir`` and make the outpost that serves the applications:

    * ``standalone=False``: the embedded outpost of ``ak server`` (on the core's :9000 port); its
      ``config.authentik_host`` is set to the core URL the browser uses.
    * ``standalone=True``: a new proxy outpost through the API and ``ak outpost proxy`` with its token.

    ``store``: "memory" (the in-process store with a file snapshot) or "redis" (127.0.0.1:6379; the core
    uses it too). Skips locally / fails under CI=true when Redis is wanted but absent.

    ``browser_host``: the host name browsers use for the core (it listens on 127.0.0.1): "localhost" by
    default, so browser-facing URLs (authorize, end-session) differ from the back channel the outpost uses
    (127.0.0.1) as in a real deployment; "127.0.0.1" makes them the same."""
    if store not in STORES:
        raise ValueError(f"store {store!r}: use one of {STORES}")
    if store == "redis":
        need(redis_available(), "Redis at 127.0.0.1:6379")
    core_env = {"AUTHENTIK_REDIS__HOST": "127.0.0.1" if store == "redis" else ""} | (env or {})
    core = start_core(workdir / "core", env=core_env, bootstrap_token=BOOTSTRAP_TOKEN)
    api = Api(core.url, BOOTSTRAP_TOKEN)
    try:
        browser_url = f"http://{browser_host}:{core.http_port}"
        if standalone:
            created = api("POST", "/outposts/instances/", json={
                "name": f"e2e-standalone-{free_port()}", "type": "proxy", "providers": [],
                "config": {"authentik_host": browser_url + "/"}})
            token = api("GET", f"/core/tokens/{created['token_identifier']}/view_key/")["key"]
            stack = Stack(core, api, store, created["pk"], browser_url=browser_url)
            stack.standalone = OutpostProcess(workdir / "outpost", core.url, token, browser_host=browser_url,
                                              redis_db=0 if store == "redis" else None)
            stack.standalone.start()
            stack.standalone.wait_connected(STANDALONE_READY)
        else:
            embedded = api.first("/outposts/instances/", managed="goauthentik.io/outposts/embedded")
            config = {**(embedded.get("config") or {}), "authentik_host": browser_url + "/"}
            api("PATCH", f"/outposts/instances/{embedded['pk']}/", json={"config": config})
            stack = Stack(core, api, store, embedded["pk"], browser_url=browser_url)
    except BaseException:
        api.close()
        core.stop()
        raise
    return stack


# --- the login driver ---------------------------------------------------------------------------------


class LoginError(AssertionError):
    """The journey did not go as a browser's would; the message has every hop."""


@dataclass
class LoginResult:
    response: httpx.Response  # the final answer (the app's page, or the core's access-denied page)
    login_page: str  # the flow page URL the browser was sent to
    first: httpx.Response  # the answer to the very first request (302, or nginx's 302 after its 401)


def is_flow_page(response: httpx.Response) -> bool:
    return urlsplit(str(response.request.url)).path.startswith(FLOW_PAGE)


def execute_flow(browser: Browser, flow_page: httpx.Response, username: str, password: str) -> httpx.Response:
    """Answer the flow executor API for the flow page ``flow_page`` (identification, then password, as the
    login page's script does) and follow the final ``xak-flow-redirect``; returns the final answer."""
    page_url = str(flow_page.request.url)
    parts = urlsplit(page_url)
    slug = parts.path[len(FLOW_PAGE):].strip("/")
    executor = urljoin(page_url, f"/api/v3/flows/executor/{slug}/?query={quote(parts.query, safe='')}")
    accept = {"Accept": "application/json"}

    def answer(body: dict | None) -> dict:
        if body is None:
            response = browser.follow(executor, headers=accept)
        else:
            response = browser.follow(executor, method="POST", json=body, headers=accept)
        if response.status_code != 200:
            raise LoginError(f"flow executor answered {response.status_code}: {response.text[:500]}\n"
                             f"{browser.trail()}")
        return response.json()

    challenge = answer(None)
    for _ in range(6):
        component = challenge.get("component")
        if component == "ak-stage-identification":
            challenge = answer({"component": component, "uid_field": username})
        elif component == "ak-stage-password":
            challenge = answer({"component": component, "password": password})
        elif component == "xak-flow-redirect":
            return browser.follow(urljoin(page_url, challenge["to"]))
        else:
            raise LoginError(f"unexpected flow challenge {component!r}: {challenge}\n{browser.trail()}")
    raise LoginError(f"the flow did not finish: {challenge}\n{browser.trail()}")


def login(browser: Browser, url: str, username: str, password: str) -> LoginResult:
    """Open ``url`` (an app URL behind a proxy) anonymously, follow the redirects into the core's login
    page, sign in through the flow executor API, and follow the redirects back (authorize -> the outpost's
    callback on the app's host -> ``url``). Raises LoginError when no login page is reached."""
    first = browser.get(url)
    page = browser.follow_from(first)
    if not is_flow_page(page) or page.status_code != 200:
        raise LoginError(f"{url} did not lead to a login page (last: {page.status_code} "
                         f"{page.text[:300]!r})\n{browser.trail()}")
    final = execute_flow(browser, page, username, password)
    return LoginResult(final, str(page.request.url), first)
