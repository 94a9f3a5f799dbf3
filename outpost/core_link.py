"""The outpost's end of the link to the core (reference §1.1-§1.4; DESIGN §2 "Outpost link").

``CoreLink`` fetches the outpost's configuration over REST (``GET /api/v3/outposts/instances/``, take
``results[0]``, then every page of ``/api/v3/outposts/<type>/``) into an immutable ``Snapshot``, swapped
with one assignment so a reader sees the old or the new one, never half of each. It keeps a websocket to
``/ws/outpost/<uuid>/`` open: HELLO at connect and every 10 s; TRIGGER_UPDATE -> refetch and swap, then
the ``on_refresh`` callbacks; SESSION_END -> the ``on_session_end`` callbacks with ``session_id``.

Where we differ from authentik on purpose (DESIGN §2): the reconnect backoff is capped at 5 s (not 5 min)
and there is no random 0-9 s delay before a refresh, so a change reaches the outpost within a second.
The reconnect loop is one task, so reconnects are single-flight by construction. While the core is away
the last snapshot keeps being served; after every (re)connect the snapshot is refetched, since a change
may have been missed meanwhile. A periodic refresh every ``refresh_interval_s`` (at least 30 s) covers
a message lost in any other way. Refreshes are coalesced: a trigger during a fetch causes exactly one
more fetch after it (that fetch sees the change), not one per trigger.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import platform
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import aiohttp

from outpost.logs import TRACE
from protocols.outpost import (
    AUTHENTICATE_PATHS,
    CONFIG_PATHS,
    HELLO_INTERVAL,
    INSTANCES_PATH,
    LDAP_UNBIND_PATH,
    MAX_FRAME_BYTES,
    RADIUS_ACCOUNTING_PATH,
    RADIUS_CHALLENGE_PATH,
    AuthAnswer,
    AuthRequest,
    AuthResult,
    Instruction,
    Message,
    ProtocolError,
    hello,
    next_page,
    reconnect_delay,
    websocket_url,
)
from protocols.version import VERSION

LOGGER = logging.getLogger("gatehouse.outpost.link")


USER_AGENT = f"goauthentik.io/outpost/{VERSION}"
MIN_REFRESH_INTERVAL = 30.0  # authentik: values below 30 s are raised to 30 s (reference §1.4)
DEFAULT_REFRESH_INTERVAL = 300.0
PAGE_SIZE = 100
MAX_PAGES = 1000
HANDSHAKE_TIMEOUT = 10.0  # authentik's websocket handshake timeout
REQUEST_TIMEOUT = 20.0
AUTHENTICATE_TIMEOUT = 10.0  # one bind/Access-Request through the core (~0.1 s; RADIUS clients retry after 3-5 s)
OUTAGE_LOG_EVERY = 60.0  # while the core stays away: one warning a minute, not one per reconnect attempt

Callback = Callable[..., Any]


class LinkError(RuntimeError):
    """The core answered, but not with a usable configuration (the message names what to fix)."""


@dataclass(frozen=True)
class Snapshot:
    """One consistent configuration: the outpost object and its providers' configs, as the core sent them.
    Never mutated after creation (a refresh builds a new one); treat the dicts as read-only."""

    outpost: dict
    providers: tuple[dict, ...]
    generation: int = 0  # 1 for the first fetch, +1 per refresh

    @property
    def uuid(self) -> str:
        return str(self.outpost.get("pk", ""))

    @property
    def name(self) -> str:
        return str(self.outpost.get("name", ""))

    @property
    def refresh_interval(self) -> float:
        """``refresh_interval_s``: <= 0 or unreadable -> 5 min, below 30 s -> 30 s (reference §1.4)."""
        try:
            value = float(self.outpost.get("refresh_interval_s") or 0)
        except (TypeError, ValueError):
            value = 0
        return DEFAULT_REFRESH_INTERVAL if value <= 0 else max(MIN_REFRESH_INTERVAL, value)


BROWSER_ENDPOINTS = ("authorization_endpoint", "end_session_endpoint")


def browser_facing(provider: dict, api_base: str, browser_base: str) -> dict:
    """Point the endpoints a browser visits at the URL browsers use (reference §2.6); the token,
    introspection and JWKS calls stay on the back channel, and so does the issuer they produce."""
    oidc = dict(provider.get("oidc_configuration") or {})
    api, browser = api_base.rstrip("/"), browser_base.rstrip("/")
    for key in BROWSER_ENDPOINTS:
        value = oidc.get(key)
        if isinstance(value, str) and value.startswith(api + "/"):
            oidc[key] = browser + value[len(api):]
    return {**provider, "oidc_configuration": oidc}


@dataclass
class _Flight:
    """Refresh coalescing: one fetch at a time; triggers during it ask for exactly one more."""

    task: asyncio.Task | None = None
    again: bool = False
    waiters: list[asyncio.Future] = field(default_factory=list)


def describe_link_error(exc: BaseException) -> str:
    """One line a person can act on, for the errors the link retries."""
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        if exc.status in (401, 403):
            return f"the core refused this outpost's token (HTTP {exc.status}); check AUTHENTIK_TOKEN"
        if exc.status == 404:
            return ("the core does not know this outpost (HTTP 404): it was deleted, or AUTHENTIK_HOST points at "
                    "another core")
        return (f"the websocket handshake got HTTP {exc.status} instead of 101 Switching Protocols: a reverse "
                "proxy between this outpost and the core must pass the Upgrade and Connection headers (nginx: "
                "proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "
                "\"upgrade\"); the configuration is still fetched over REST meanwhile")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (f"the core's TLS certificate is not trusted ({exc.certificate_error}); give this outpost the CA "
                "(SSL_CERT_FILE) or, for a self-signed core, set AUTHENTIK_INSECURE=true")
    return str(exc) or type(exc).__name__


@dataclass
class _Outage:
    """Failed attempts since the link was last up, and when the last warning about them was logged."""

    failures: int = 0
    started: float = 0.0
    logged_at: float = 0.0
    logged_reason: str = ""

    def should_log(self, reason: str, now: float) -> bool:
        self.failures += 1
        if self.failures == 1:
            self.started = now
        if self.failures > 1 and reason == self.logged_reason and now - self.logged_at < OUTAGE_LOG_EVERY:
            return False
        self.logged_at, self.logged_reason = now, reason
        return True

    def down_s(self) -> float:
        return time.monotonic() - self.started if self.failures else 0.0


def reraise_if_cancelled(exc: BaseException) -> None:
    """A library that turns a cancellation into its own error (or a failure that races a cancel) must not
    keep a task alive that close() cancelled: the server's shutdown waits for it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


class CoreLink:
    def __init__(self, authentik_host: str, token: str, *, insecure: bool = False, kind: str | None = None,
                 browser_host: str = "", refresh_interval: float | None = None):
        self.base = authentik_host.rstrip("/") + "/"
        self.token = token
        self.insecure = insecure
        self.kind = kind
        self.browser_host = browser_host
        self.refresh_interval_override = refresh_interval  # tests; None: the outpost's refresh_interval_s
        self.instance_uuid = str(uuid.uuid4())
        self.snapshot: Snapshot | None = None
        self.refreshed_at: float | None = None  # unix time of the last snapshot swap (authentik_outpost_last_update)
        self.connected = False
        self.on_refresh: list[Callback] = []
        self.on_session_end: list[Callback] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task] = []
        self._ready: asyncio.Event | None = None
        self._flight = _Flight()
        self._connected_event: asyncio.Event | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the link in the background (it retries until the core answers); see wait_ready()."""
        if self._session is not None:
            return
        self._events()
        ssl_ctx: ssl.SSLContext | bool = False if self.insecure else ssl.create_default_context()
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}", "User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT), connector=aiohttp.TCPConnector(ssl=ssl_ctx))
        self._tasks = [asyncio.create_task(self._run(), name="core-link"),
                       asyncio.create_task(self._periodic(), name="core-link-periodic")]

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._flight.task] if self._flight.task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self.connected = False
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _events(self) -> None:
        if self._ready is None:
            self._ready = asyncio.Event()
            self._connected_event = asyncio.Event()

    async def wait_ready(self, timeout: float | None = None) -> Snapshot:
        """The first snapshot (waits for it)."""
        self._events()
        await asyncio.wait_for(self._ready.wait(), timeout)
        assert self.snapshot is not None  # noqa: S101 - set before _ready
        return self.snapshot

    async def wait_connected(self, timeout: float | None = None) -> None:
        self._events()
        await asyncio.wait_for(self._connected_event.wait(), timeout)

    # -- REST ---------------------------------------------------------------------------------------
    async def _get_json(self, path: str, params: dict | None = None) -> dict:
        if self._session is None:
            raise LinkError("the link is not started")
        url = urljoin(self.base, path.lstrip("/"))
        async with self._session.get(url, params=params) as resp:
            if resp.status in (401, 403):
                raise LinkError(f"the core refused the token (HTTP {resp.status} from {path}); check AUTHENTIK_TOKEN "
                                "is this outpost's token")
            if resp.status != 200:
                raise LinkError(f"GET {path} answered HTTP {resp.status}; is AUTHENTIK_HOST={self.base} the core?")
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                raise LinkError(f"GET {path} did not answer JSON; is AUTHENTIK_HOST={self.base} the core?") from None
        if not isinstance(body, dict):
            raise LinkError(f"GET {path} answered {type(body).__name__}, not an object")
        return body

    async def _all_pages(self, path: str, page_size: int = PAGE_SIZE) -> list[dict]:
        results: list[dict] = []
        async for items in self._pages(path, page_size):
            results.extend(items)
        return results

    async def _pages(self, path: str, page_size: int = PAGE_SIZE):
        """Each page's objects in turn (a caller can drop a page's JSON before the next one arrives)."""
        page = 1
        for _ in range(MAX_PAGES):
            body = await self._get_json(path, {"page": page, "page_size": page_size})
            items = body.get("results") or []
            if not isinstance(items, list):
                raise LinkError(f"GET {path}: results is not a list")
            following = next_page(body)
            del body
            yield [item for item in items if isinstance(item, dict)]
            if following <= page:  # 0 when done; a page that does not advance would loop forever
                return
            page = following
        raise LinkError(f"GET {path}: more than {MAX_PAGES} pages")

    async def fetch(self) -> Snapshot:
        """One full fetch (does not swap it in)."""
        body = await self._get_json(INSTANCES_PATH)
        outposts = body.get("results") or []
        if not outposts or not isinstance(outposts[0], dict):
            raise LinkError("no outpost belongs to this token; use the outpost's own token (admin interface: "
                            "Outposts -> the outpost -> View deployment info)")
        outpost = outposts[0]
        kind = self.kind or outpost.get("type") or "proxy"
        if self.kind and outpost.get("type") and outpost["type"] != self.kind:
            raise LinkError(f"this token belongs to a {outpost['type']} outpost ({outpost.get('name')!r}), "
                            f"not a {self.kind} one; run 'ak outpost {outpost['type']}' or use another token")
        providers = await self._all_pages(CONFIG_PATHS[kind]) if kind in CONFIG_PATHS else []
        browser = self.browser_host or (outpost.get("config") or {}).get("authentik_host") or ""
        if browser:
            providers = [browser_facing(p, self.base, browser) for p in providers]
        generation = (self.snapshot.generation if self.snapshot else 0) + 1
        return Snapshot(outpost=outpost, providers=tuple(providers), generation=generation)

    async def refresh(self) -> Snapshot:
        """Refetch and swap the snapshot, then notify ``on_refresh``. Concurrent calls share fetches: a call
        made while a fetch runs waits for one more fetch that starts after it (so it sees its change)."""
        flight = self._flight
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        flight.waiters.append(future)
        if flight.task is None or flight.task.done():
            flight.task = asyncio.create_task(self._refresh_loop(), name="core-link-refresh")
        else:
            flight.again = True
        return await asyncio.shield(future)

    async def _refresh_loop(self) -> None:
        flight = self._flight
        while True:
            flight.again = False
            waiters, flight.waiters = flight.waiters, []
            try:
                snapshot = await self.fetch()
            except BaseException as exc:
                for waiter in waiters:
                    if waiter.done():
                        continue
                    if isinstance(exc, Exception):
                        waiter.set_exception(exc)
                        waiter.exception()  # retrieved: a caller that went away must not log it as lost
                    else:
                        waiter.cancel()
                if not isinstance(exc, Exception):
                    raise
                if not flight.again:
                    return
                continue
            self.snapshot = snapshot  # one assignment: readers see the old or the new snapshot, never half
            self.refreshed_at = time.time()
            if self._ready is not None:
                self._ready.set()
            LOGGER.info("configuration refreshed", extra={"outpost": snapshot.name, "providers": len(snapshot.providers),
                                                          "generation": snapshot.generation})
            await self._notify(self.on_refresh, snapshot)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(snapshot)
            if not flight.again:
                return

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except (TimeoutError, aiohttp.ClientError, OSError, LinkError) as exc:
            reraise_if_cancelled(exc)
            LOGGER.warning("refresh failed; serving the last configuration",
                           extra={"reason": str(exc) or type(exc).__name__})

    @staticmethod
    async def _notify(callbacks: list[Callback], *args: Any) -> None:
        for callback in list(callbacks):
            try:
                result = callback(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # one consumer's bug must not stop the link or the other consumers
                LOGGER.exception("outpost link callback failed", extra={"callback": getattr(callback, "__qualname__", "")})

    # -- authentication (LDAP bind, RADIUS Access-Request) -------------------------------------------
    async def _post(self, path: str, body: dict, timeout: float, ok: int = 200) -> tuple[int, Any]:
        """POST ``body`` as JSON to ``path`` under the core's URL: (status, the JSON answer when the status is
        ``ok``, else the first 200 characters of the text). Raises what the network and aiohttp raise
        (TimeoutError, ClientError, OSError; ValueError for an ``ok`` answer that is not JSON): each caller turns
        that into its own fail-closed answer. LinkError when the link was not started (a caller's bug)."""
        if self._session is None:
            raise LinkError("the link is not started: call start() first")
        async with self._session.post(urljoin(self.base, path.lstrip("/")), json=body,
                                      timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status == ok:
                return resp.status, await resp.json(content_type=None)
            return resp.status, (await resp.text())[:200]

    async def authenticate(self, kind: str, provider_pk: int, username: str, password: str, remote_ip: str, *,
                           timeout: float = AUTHENTICATE_TIMEOUT) -> AuthAnswer:
        """One POST to ``AUTHENTICATE_PATHS[kind]``: the core runs the provider's bind flow and the application
        check and answers (protocols/outpost.py ``AuthAnswer``).

        Never raises for what the network or the core does: the core away, a timeout, a 5xx, an answer that is
        not an AuthAnswer, or a refusal of the call (401/403: not this outpost's token; 404: the provider is not
        bound to this outpost) all come back as ``AuthResult.FLOW_ERROR`` with a reason that says which -- so a
        caller has one path, and it fails closed (LDAP operationsError/invalidCredentials, RADIUS reject).
        The refusals are also logged as a warning naming the fix. The password is never logged.
        What the client sent that no core would take (an empty name, a NUL, a password over 4096 characters) is
        ``INVALID_CREDENTIALS`` without a request. Raises ValueError for an unknown ``kind`` and LinkError when the
        link was not started (callers' bugs)."""
        if kind not in AUTHENTICATE_PATHS:
            raise ValueError(f"kind must be one of {sorted(AUTHENTICATE_PATHS)}, got {kind!r}")
        try:
            request = AuthRequest(username=username, password=password, remote_ip=remote_ip)
        except ProtocolError as exc:
            return AuthAnswer(AuthResult.INVALID_CREDENTIALS, f"not sent to the core: {exc}")
        path = AUTHENTICATE_PATHS[kind].format(pk=int(provider_pk))
        try:
            status, body = await self._post(path, request.to_json(), timeout)
        except TimeoutError:
            return AuthAnswer(AuthResult.FLOW_ERROR, f"core unreachable: no answer within {timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return AuthAnswer(AuthResult.FLOW_ERROR, f"core unreachable: {describe_link_error(exc)}")
        except ValueError:
            return AuthAnswer(AuthResult.FLOW_ERROR, f"the core's answer from {path} is not JSON")
        if status != 200:
            reason = {401: "the core refused this outpost's token (HTTP 401); check AUTHENTIK_TOKEN",
                      403: "the core refused this outpost's token (HTTP 403); check AUTHENTIK_TOKEN",
                      404: f"the core says provider {provider_pk} is not bound to this outpost or has no "
                           "application (HTTP 404)"}.get(status, f"the core answered HTTP {status} to {path}")
            if status < 500:
                LOGGER.warning("authentication call refused", extra={"kind": kind, "provider": provider_pk,
                                                                      "status": status, "reason": reason})
            return AuthAnswer(AuthResult.FLOW_ERROR, reason)
        try:
            return AuthAnswer.from_json(body)
        except ProtocolError as exc:
            return AuthAnswer(AuthResult.FLOW_ERROR, f"the core's answer is not an AuthAnswer: {exc}")

    async def provider_configs(self, kind: str) -> list[dict]:
        """The configs of this outpost's providers of ``kind`` (``CONFIG_PATHS``), whatever the outpost's type:
        the embedded (proxy) outpost also serves RADIUS providers (outpost/radius/__init__.py)."""
        return await self._all_pages(CONFIG_PATHS[kind])

    # -- RADIUS accounting --------------------------------------------------------------------------------
    async def radius_challenge(self, provider_pk: int, body: dict, *,
                               timeout: float = AUTHENTICATE_TIMEOUT) -> dict:
        """POST a CHAP / MS-CHAPv2 proof (``RADIUS_CHALLENGE_PATH``); the core's answer (``result``, ``reason``,
        ``user``, ``reply_attributes``, MS-CHAPv2 extras). The core away or refusing: ``flow_error``, as
        ``authenticate`` answers, never an exception."""
        path = RADIUS_CHALLENGE_PATH.format(pk=int(provider_pk))
        try:
            status, answer = await self._post(path, body, timeout)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return {"result": "flow_error", "reason": f"core unreachable: {describe_link_error(exc)}"}
        except ValueError:
            return {"result": "flow_error", "reason": f"the core's answer from {path} is not JSON"}
        if status != 200 or not isinstance(answer, dict):
            return {"result": "flow_error", "reason": f"the core answered HTTP {status} to {path}: {answer}"}
        return answer

    async def ldap_unbind(self, provider_pk: int, session_id: str, remote_ip: str, *,
                          timeout: float = AUTHENTICATE_TIMEOUT) -> bool:
        """POST an LDAP unbind (protocols/outpost.py ``LDAP_UNBIND_PATH``): the core runs the provider's unbind flow on
        the bind's session. True when the core ended it. Never raises for the network (the client is gone)."""
        path = LDAP_UNBIND_PATH.format(pk=int(provider_pk))
        try:
            status, answer = await self._post(path, {"session_id": session_id, "remote_ip": remote_ip}, timeout)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            LOGGER.warning("ldap unbind not sent to the core", extra={"reason": describe_link_error(exc)})
            return False
        if status != 200 or not isinstance(answer, dict):
            LOGGER.warning("ldap unbind refused by the core", extra={"status": status, "reason": str(answer)[:200]})
            return False
        if not answer.get("ended"):
            LOGGER.debug("ldap unbind: session kept", extra={"reason": answer.get("reason", "")})
        return bool(answer.get("ended"))

    async def radius_accounting(self, provider_pk: int, record: dict, *, timeout: float = AUTHENTICATE_TIMEOUT) -> bool:
        """POST one Accounting-Request's fields (protocols/outpost.py ``RADIUS_ACCOUNTING_PATH``) for the core to
        record as an event. True once the core stored it; False for anything else (the caller then sends no
        Accounting-Response, RFC 2866 §4.1, and the NAS sends it again). Never raises for the network."""
        path = RADIUS_ACCOUNTING_PATH.format(pk=int(provider_pk))
        try:
            status, text = await self._post(path, record, timeout, ok=201)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            LOGGER.warning("accounting not recorded: core unreachable", extra={"reason": describe_link_error(exc)})
            return False
        except ValueError:
            LOGGER.warning("accounting not recorded: the core's answer is not JSON", extra={"path": path})
            return False
        if status != 201:
            LOGGER.warning("accounting not recorded", extra={"status": status, "reason": text})
        return status == 201

    # -- websocket ------------------------------------------------------------------------------------
    async def _run(self) -> None:
        """The one reconnect loop (single-flight): fetch if needed, connect, HELLO, refetch, read until closed.

        While the core stays away, the first failure is a warning and then one line a minute says it still is
        (with the attempts so far), not one line per attempt (authentik #26014: errors flooding the logs)."""
        attempt = 0
        outage = _Outage()
        while True:
            try:
                if self.snapshot is None:
                    await self.refresh()
                await self._session_once(attempt, outage)
                attempt = 0  # the link was up; a drop starts the backoff again from the beginning
                outage = _Outage()
                LOGGER.warning("core closed the outpost link; reconnecting, serving the last configuration")
            except asyncio.CancelledError:
                self.connected = False
                raise
            except (TimeoutError, aiohttp.ClientError, OSError, LinkError) as exc:
                reraise_if_cancelled(exc)
                reason = describe_link_error(exc)
                if outage.should_log(reason, time.monotonic()):
                    LOGGER.warning("core unreachable; serving the last configuration", extra={
                        "reason": reason, "attempts": outage.failures, "down_s": round(outage.down_s(), 1)})
                else:
                    LOGGER.debug("core still unreachable", extra={"reason": reason, "attempt": attempt})
            self.connected = False
            if self._connected_event is not None:
                self._connected_event.clear()
            delay = reconnect_delay(attempt)
            LOGGER.debug("reconnecting to the core", extra={"attempt": attempt + 1, "delay_s": round(delay, 2)})
            await asyncio.sleep(delay)
            attempt += 1

    async def _session_once(self, attempt: int, outage: _Outage) -> None:
        url = websocket_url(self.base, self.snapshot.uuid, self.instance_uuid, attempt)
        # asyncio.timeout, not wait_for: on 3.11 wait_for hands back the inner error when a cancel (close())
        # arrives as the connect fails, and the cancel is lost (the link then retried for ever).
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            ws = await self._session.ws_connect(url, heartbeat=HELLO_INTERVAL * 3, max_msg_size=MAX_FRAME_BYTES,
                                                timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
        hello_task = None
        try:
            await self._say_hello(ws)
            self.connected = True
            self._connected_event.set()
            LOGGER.info("connected to the core", extra={
                "outpost": self.snapshot.name, "instance": self.instance_uuid,
                **({"after_attempts": outage.failures, "down_s": round(outage.down_s(), 1)} if outage.failures else {})})
            self._spawn(self._refresh_logged(), "core-link-reconnect-refresh")  # a change may have been missed
            hello_task = asyncio.create_task(self._hello_loop(ws), name="core-link-hello")
            await self._read(ws)
        finally:
            if hello_task is not None:
                hello_task.cancel()
                await asyncio.gather(hello_task, return_exceptions=True)
            await ws.close()

    async def _say_hello(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_str(hello(VERSION, self.instance_uuid, socket.gethostname(),
                                golangVersion="", pythonVersion=platform.python_version(),
                                opensslEnabled=True, opensslVersion=ssl.OPENSSL_VERSION, fipsEnabled=False).encode())
        LOGGER.debug("hello sent to the core", extra={"instance": self.instance_uuid, "version": VERSION})

    async def _hello_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """HELLO every 10 s; a failed write closes the socket, which ends the read loop and reconnects."""
        while True:
            await asyncio.sleep(HELLO_INTERVAL)
            try:
                await self._say_hello(ws)
            except (ConnectionError, aiohttp.ClientError, RuntimeError):
                await ws.close()
                return

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        dropped = 0
        async for frame in ws:
            if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue
            try:
                message = Message.decode(frame.data)
            except ProtocolError as exc:
                if not dropped:
                    LOGGER.warning("dropped a malformed frame from the core", extra={"reason": str(exc)})
                dropped += 1
                continue
            self._handle(message)

    def _handle(self, message: Message) -> None:
        if message.instruction == Instruction.TRIGGER_UPDATE:
            LOGGER.debug("update triggered by the core")  # a refetch follows
            self._spawn(self._refresh_logged(), "core-link-update")
        elif message.instruction == Instruction.SESSION_END:
            session_id = message.args.get("session_id")
            if isinstance(session_id, str) and session_id:
                LOGGER.debug("session end from the core")  # not its id: that identifies a session
                self._spawn(self._notify(self.on_session_end, session_id), "core-link-session-end")
        elif message.instruction == Instruction.ACK:
            LOGGER.log(TRACE, "ack from the core")
        else:  # PROVIDER_SPECIFIC and unknown instructions: nothing to do (reference §1.3)
            LOGGER.debug("ignored an instruction from the core", extra={"instruction": int(message.instruction)})

    def _spawn(self, coro, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _periodic(self) -> None:
        """A full refresh every refresh_interval_s (at least 30 s), in case a message was lost."""
        while True:
            if self.refresh_interval_override is not None:
                interval = self.refresh_interval_override
            else:
                interval = self.snapshot.refresh_interval if self.snapshot else DEFAULT_REFRESH_INTERVAL
            await asyncio.sleep(interval)
            if self.snapshot is not None:
                await self._refresh_logged()
