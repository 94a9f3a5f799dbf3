"""The LDAP outpost's rules (reference §3.2, §3.3): bind, search, compare, WhoAmI, StartTLS, the rest refused.

Bind: the DN must lie under a provider's base DN; the username is the first ``cn=`` value in it (authentik);
an empty DN (anonymous) gets insufficientAccessRights (50) as authentik; an empty password with a DN
(an "unauthenticated bind", RFC 4513 §5.1.2) gets unwillingToPerform (53) without asking the core. The
core decides in one call (``CoreLink.authenticate``): ok -> 0, invalid_credentials / mfa_required -> 49,
access_denied -> 50, flow_error (the core away or the flow could not decide) -> operationsError (1).
With the provider's ``require_tls`` a bind before TLS gets confidentialityRequired (13).

Failed binds are limited per (case-folded username, client address) and per client address (FailedBinds):
past the limit, binds from that address get 49 after a delay without reaching the core, so a guesser from
one address never locks the real user out from another. The core limits logins too (its flow's reputation).

Search: base ``""`` -> the Root DSE, ``cn=subschema`` -> the schema, both without a bind; everything else
needs a bind and lies under the bound provider's base DN. With the search permission the whole directory,
else the bound user, its virtual group and its groups (member lists reduced to it). Direct mode: every new
search (not a follow-up page) reads the users and groups from the core as the outpost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp

from outpost.bind_cache import BindCache, carries_code
from outpost.core_link import CoreLink, LinkError
from outpost.memory import release_free_memory
from protocols.ldap import codec, directory, schema
from protocols.ldap import dn as dnmod
from protocols.ldap.connection import Connection
from protocols.ldap.index import Indexed
from protocols.ldap.search import Entry
from protocols.outpost import AuthResult, AuthUser
from protocols.version import VERSION

LOGGER = logging.getLogger("gatehouse.outpost.ldap")
OPERATIONS = logging.getLogger("gatehouse.outpost.ldap.operations")  # the line per operation (batched: outpost/logs.py)
USERS_PATH = "/api/v3/core/users/"
GROUPS_PATH = "/api/v3/core/groups/"
SUBSCHEMA_KEY = dnmod.key(schema.SUBSCHEMA_DN)
REVOKED = ("the bound user was deactivated, deleted or changed its password, or the provider was removed from "
           "this outpost, since the bind: bind again")

_BIND_CODES = {AuthResult.OK: codec.SUCCESS, AuthResult.INVALID_CREDENTIALS: codec.INVALID_CREDENTIALS,
               AuthResult.MFA_REQUIRED: codec.INVALID_CREDENTIALS,
               AuthResult.ACCESS_DENIED: codec.INSUFFICIENT_ACCESS_RIGHTS, AuthResult.FLOW_ERROR: codec.OPERATIONS_ERROR}
_BIND_MESSAGES = {AuthResult.INVALID_CREDENTIALS: "invalid credentials",
                  AuthResult.MFA_REQUIRED: "a one-time code is required: send the password as password;123456",
                  AuthResult.ACCESS_DENIED: "access denied to this application",
                  AuthResult.FLOW_ERROR: "the login could not be completed (the outpost log says why)"}


@dataclass(eq=False)  # compared and hashed by identity: a set of them per core session
class Session:
    """What one client connection has established."""

    remote_ip: str
    tls: bool = False
    bind_dn: str = ""
    provider: dict | None = None
    user: AuthUser | None = None
    can_search: bool = False
    session_id: str | None = None
    bound_at: float = 0.0  # unix time of the successful bind
    close: Callable[[], None] | None = field(default=None, repr=False)  # the server's hook for SESSION_END

    def reset(self) -> None:
        self.bind_dn, self.provider, self.user, self.can_search, self.session_id = "", None, None, False, None
        self.bound_at = 0.0


@dataclass(frozen=True)
class Reply:
    data: list[bytes]
    action: str = ""  # "" | "starttls" | "close"


class FailedBinds:
    """Failed binds in a sliding window, per (username, address) and per address; bounded in memory."""

    def __init__(self, per_user: int = 5, per_client: int = 30, window: float = 300.0, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.per_user, self.per_client, self.window, self.max_keys, self.clock = per_user, per_client, window, max_keys, clock
        self._failures: OrderedDict[tuple, list[float]] = OrderedDict()

    def _recent(self, key: tuple) -> list[float]:
        now = self.clock()
        stamps = [t for t in self._failures.get(key, ()) if now - t < self.window]
        if stamps:
            self._failures[key] = stamps
        else:
            self._failures.pop(key, None)
        return stamps

    def blocked(self, username: str, ip: str) -> bool:
        return (len(self._recent(("user", username.casefold(), ip))) >= self.per_user
                or len(self._recent(("client", ip))) >= self.per_client)

    def failed(self, username: str, ip: str) -> None:
        now = self.clock()
        for key in (("user", username.casefold(), ip), ("client", ip)):
            self._failures.setdefault(key, []).append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, username: str, ip: str) -> None:
        self._failures.pop(("user", username.casefold(), ip), None)


# LDAP attributes whose equality filter narrows the users read from the core (authentik pushes cn, mail and
# displayName down too). ``search=`` matches username, name and email case-insensitively as substrings: a
# superset, which the filter then narrows exactly. A user attribute overriding cn is not found this way
# (as in authentik).
PUSHDOWN = frozenset({"cn", "samaccountname", "mail", "displayname", "name"})


def pushdown(flt) -> str | None:
    """The value of an equality on a PUSHDOWN attribute that every match must satisfy, or None."""
    if flt[0] == "eq" and flt[1] in PUSHDOWN and flt[2]:
        return flt[2]
    if flt[0] == "and":
        for child in flt[1]:
            found = pushdown(child)
            if found is not None:
                return found
    return None


class CoreDirectory:
    """Direct mode's data source: the users and groups, read from the core as the outpost on each call."""

    def __init__(self, link: CoreLink):
        self.link = link

    async def load(self, search: str | None = None) -> tuple[list[dict], list[dict]]:
        users_path = USERS_PATH + (f"?{urlencode({'search': search})}" if search else "")
        users, groups = await asyncio.gather(self.link._all_pages(users_path), self.link._all_pages(GROUPS_PATH))
        return users, groups

    async def user(self, pk: int) -> dict | None:
        try:
            return await self.link._get_json(f"{USERS_PATH}{int(pk)}/")
        except LinkError:
            return None


class CachedDirectory(CoreDirectory):
    """``search_mode=cached``: the directory held in memory, one copy per process, refetched when the link
    refreshes (the core sends TRIGGER_UPDATE for every user, group and membership change, and the link
    refreshes periodically), in pages of ``FETCH_PAGE_SIZE`` (the API's maximum).

    Held: for every cached-mode provider its whole directory built and indexed (protocols/ldap/index.py),
    and per user pk only (username, is_active, password_change_date) for the bind re-check. The core's JSON
    is never held whole: each page of users is built into entries and dropped (``_fetch``); a user without
    the search permission gets the restricted view cut from the indexed directory (``directory.restricted``).

    A refetch does not stall searches: until it is done they are answered from the previous copy, and the
    new copy is built (in a thread, off the event loop) before it is swapped in. Revocation stays immediate
    all the same: while a refetch runs (``stale``), the bound user of each search is read from the core
    itself (one ``GET /core/users/<pk>/``, as direct mode does), so a deactivation, a deletion or a password
    change refuses the next search; the bind cache is emptied at once by the same refresh. What the previous
    copy can still show for the refetch's duration (about a second with 10,000 users) is other entries'
    changes, e.g. a membership just removed."""

    FETCH_PAGE_SIZE = 1000

    def __init__(self, link: CoreLink, layouts: Callable[[], set], root: Callable[[directory.Layout], Entry]):
        super().__init__(link)
        self.layouts = layouts  # () -> {(provider pk, Layout)} of the cached-mode providers
        self.root = root  # Layout -> the entry at the base (the Root DSE there)
        self.built: dict[tuple, Indexed] = {}
        self._users: dict | None = None  # pk -> (username, is_active, password_change_date)
        self._fetching: asyncio.Task | None = None
        self._again = False
        self.generation = 0
        link.on_refresh.append(self.changed)

    @property
    def stale(self) -> bool:
        """A refetch is running: the copy being served may predate a change the core announced."""
        return self._fetching is not None and not self._fetching.done()

    def changed(self, snapshot=None) -> None:
        """The core signalled a change: refetch (single flight; a change during a fetch causes one more)."""
        if self.stale:
            self._again = True
            return
        self._fetching = asyncio.create_task(self._fetch_loop(), name="ldap-cached-directory")

    async def _fetch_loop(self) -> None:
        while True:
            self._again = False
            started = time.monotonic()
            try:
                built, users, count, groups = await self._fetch()
            except (LinkError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                LOGGER.warning("ldap directory refetch failed; serving the last one" if self._users is not None else
                               "ldap directory could not be read from the core", extra={"reason": str(exc)})
                if not self._again:
                    return
                continue
            self._users, self.built = users, built
            del users, built
            await asyncio.to_thread(release_free_memory)  # the previous copy and the build's temporaries
            self.generation += 1
            LOGGER.info("ldap directory cached", extra={"users": count, "groups": groups,
                                                        "generation": self.generation,
                                                        "ms": round((time.monotonic() - started) * 1000)})
            if not self._again:
                return

    async def _fetch(self) -> tuple[dict, dict, int, int]:
        """Users a page at a time, each page built into every cached provider's entries (in a thread) and
        dropped before the next: the whole JSON is never held. Then the groups, the groups' entries, the
        indexes."""
        builders = {key: directory.Builder(key[1]) for key in self.layouts()}
        users: dict = {}

        def add(page: list[dict]) -> None:
            for builder in builders.values():
                builder.add_users(page)
            for u in page:
                users[u.get("pk")] = (str(u.get("username")), bool(u.get("is_active", False)),
                                      u.get("password_change_date"))

        async for page in self.link._pages(USERS_PATH, self.FETCH_PAGE_SIZE):
            await asyncio.to_thread(add, page)
            del page
        groups = await self.link._all_pages(GROUPS_PATH, self.FETCH_PAGE_SIZE)

        def finish() -> dict:
            return {key: Indexed([self.root(key[1]), *builder.finish(groups)]) for key, builder in builders.items()}

        return await asyncio.to_thread(finish), users, len(users), len(groups)

    async def _ready(self, refetch: bool = False) -> None:
        if refetch or (self._users is None and not self.stale):
            self.changed()
        if (refetch or self._users is None) and self.stale:  # nothing to serve yet: the fetch is awaited
            await asyncio.shield(self._fetching)
        if self._users is None:  # the fetch failed: let the caller's error handling answer
            raise LinkError("the directory could not be read from the core")

    async def directory(self, key: tuple) -> Indexed:
        """The indexed directory of (provider pk, layout); a provider the last fetch did not know (just
        switched to cached mode) is waited for through one more fetch."""
        if self._users is not None and key in self.built:  # the usual case, without a coroutine per call
            return self.built[key]
        await self._ready()
        if key not in self.built:
            await self._ready(refetch=True)
        if key not in self.built:
            raise LinkError("the provider's directory could not be built; try again")
        return self.built[key]

    async def user(self, pk: int) -> dict | None:
        """The user as the core has it now (the fields ``still_valid`` reads): from the copy, or from the core
        while a refetch runs."""
        if self._users is None:
            await self._ready()
        if self.stale:
            return await super().user(pk)
        found = self._users.get(pk)
        if found is None:
            return None
        return {"pk": pk, "username": found[0], "is_active": found[1], "password_change_date": found[2]}


_EVENTS = {op: f"ldap {op}" for op in ("bind", "search", "unbind", "abandon", "extended", "compare", "update")}


class Handlers:
    def __init__(self, link: CoreLink, source=None, *, tls_available: bool = True,
                 limiter: FailedBinds | None = None, penalty: float = 1.0, version: str = VERSION):
        self.link = link
        self.source = source or CoreDirectory(link)
        self.cached: CachedDirectory | None = None  # made when a provider first searches in cached mode
        self.bind_cache = BindCache()
        link.on_refresh.append(self.bind_cache.clear)
        self.tls_available = tls_available
        self.limiter = limiter or FailedBinds()
        self.penalty = penalty
        self.version = version
        self.sessions: dict[str, set[Session]] = {}  # core session id -> bound connections (SESSION_END)
        self._background: set[asyncio.Task] = set()  # unbind calls to the core, held until they finish
        self.observe: Callable[[str, int, float, str], None] | None = None  # metrics (outpost/ldap/metrics.py)

    # -- providers ------------------------------------------------------------------------------------
    def _generation(self) -> int | None:
        return self.link.snapshot.generation if self.link.snapshot else None

    def providers(self) -> list[dict]:
        return list(self.link.snapshot.providers) if self.link.snapshot else []

    def provider_for(self, dn_key: tuple) -> dict | None:
        """The provider whose base DN contains ``dn_key``; the longest base wins (reference §3.3)."""
        best, best_len = None, -1
        for provider in self.providers():
            try:
                base = dnmod.key(str(provider.get("base_dn") or ""))
            except dnmod.DNError:
                continue
            if base and dnmod.is_within(dn_key, base) and len(base) > best_len:
                best, best_len = provider, len(base)
        return best

    # -- SESSION_END ----------------------------------------------------------------------------------
    def end_session(self, session_id: str) -> int:
        """Close the connections bound through that core session; returns how many."""
        self.bind_cache.drop_session(session_id)
        sessions = self.sessions.pop(session_id, set())
        for session in sessions:
            session.reset()
            if session.close is not None:
                session.close()
        if sessions:
            LOGGER.info("ldap connections closed: their core session ended", extra={"connections": len(sessions)})
        return len(sessions)

    def unbind(self, session: Session) -> None:
        """Reference §3.2: with an unbind flow set, the core runs it on the session the bind opened (its user_logout
        stage ends it). Not while another connection is bound with the same core session (a cached bind shares
        it): that one would lose its session. In the background: the client expects no answer to an unbind."""
        provider, sid = session.provider, session.session_id
        if not provider or not sid or not provider.get("unbind_flow_slug") or len(self.sessions.get(sid, ())) > 1:
            return
        task = asyncio.get_running_loop().create_task(
            self.link.ldap_unbind(int(provider["pk"]), sid, session.remote_ip), name="ldap-unbind")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def forget(self, session: Session) -> None:
        if session.session_id and session.session_id in self.sessions:
            self.sessions[session.session_id].discard(session)
            if not self.sessions[session.session_id]:
                del self.sessions[session.session_id]

    # -- dispatch -------------------------------------------------------------------------------------
    async def handle(self, request: codec.Request, session: Session, conn: Connection) -> Reply:
        started = time.monotonic()
        op = "search" if isinstance(request, codec.FilterRejected) else type(request).__name__.removesuffix("Request").lower()
        log: dict = {}
        try:
            reply, code = await self._dispatch(request, session, conn, log)
        except (LinkError, aiohttp.ClientError, TimeoutError, OSError) as exc:  # the core away or refusing
            log["reason"] = str(exc) or type(exc).__name__
            reply, code = self._internal_error(request, codec.OPERATIONS_ERROR, "the directory could not be read "
                                               "from the core; try again"), codec.OPERATIONS_ERROR
        except Exception:  # a bug must not kill the connection's peers or leak a traceback to the client
            LOGGER.exception("ldap operation failed", extra={"op": op, "client": session.remote_ip})
            reply, code = self._internal_error(request), codec.OTHER
        extra = {"op": op, "client": session.remote_ip, "bind_dn": session.bind_dn or log.pop("bind_dn", ""),
                 "code": code, "duration_ms": round((time.monotonic() - started) * 1000, 1), **log}
        OPERATIONS.info(_EVENTS.get(op) or f"ldap {op}", extra=extra)  # no %-args: a record without them is cheaper
        if self.observe is not None:
            provider = session.provider or {}
            self.observe(op, code, time.monotonic() - started, str(provider.get("application_slug") or ""))
        return reply

    def _internal_error(self, request: codec.Request, code: int = codec.OTHER,
                        message: str = "internal error (the outpost log has the details)") -> Reply:
        if isinstance(request, codec.BindRequest):
            return Reply([codec.bind_response(request.message_id, code, message)])
        if isinstance(request, (codec.SearchRequest, codec.FilterRejected)):
            return Reply([codec.search_done(request.message_id, code, message)])
        if isinstance(request, codec.CompareRequest):
            return Reply([codec.compare_response(request.message_id, code, message)])
        if isinstance(request, codec.ExtendedRequest):
            return Reply([codec.extended_response(request.message_id, code, message)])
        if isinstance(request, codec.UpdateRequest):
            return Reply([codec.update_response(request, code, message)])
        return Reply([])

    async def _dispatch(self, request, session: Session, conn: Connection, log: dict) -> tuple[Reply, int]:
        if isinstance(request, codec.BindRequest):
            return await self.bind(request, session, log)
        if isinstance(request, codec.SearchRequest):
            return await self.search(request, session, conn, log)
        if isinstance(request, codec.FilterRejected):
            return Reply([codec.search_done(request.message_id, request.code, request.reason)]), request.code
        if isinstance(request, codec.UnbindRequest):
            self.unbind(session)
            return Reply([], "close"), codec.SUCCESS
        if isinstance(request, codec.AbandonRequest):
            return Reply([]), codec.SUCCESS  # operations run one at a time: nothing is left to abandon
        if isinstance(request, codec.ExtendedRequest):
            return self.extended(request, session, log)
        if isinstance(request, codec.CompareRequest):
            return await self.compare(request, session, log)
        if isinstance(request, codec.UpdateRequest):
            log["operation"] = request.operation
            message = "this directory is read-only: change users and groups in the admin interface"
            return Reply([codec.update_response(request, codec.UNWILLING_TO_PERFORM, message)]), codec.UNWILLING_TO_PERFORM
        return Reply([]), codec.SUCCESS

    # -- bind -----------------------------------------------------------------------------------------
    async def bind(self, request: codec.BindRequest, session: Session, log: dict) -> tuple[Reply, int]:
        self.forget(session)
        session.reset()  # RFC 4511 §4.2.1: a bind first makes the connection anonymous
        log["bind_dn"] = request.name

        def answer(code: int, message: str = "") -> tuple[Reply, int]:
            return Reply([codec.bind_response(request.message_id, code, message)]), code

        if request.version != 3:
            return answer(codec.PROTOCOL_ERROR, f"LDAP version {request.version} is not supported; use version 3")
        if request.password is None:
            return answer(codec.AUTH_METHOD_NOT_SUPPORTED, f"SASL bind ({request.sasl_mechanism}) is not supported; "
                                                           "use a simple bind with a DN and password")
        if not request.name.strip():
            return answer(codec.INSUFFICIENT_ACCESS_RIGHTS, "anonymous bind is not allowed; bind with "
                                                            "cn=<username>,ou=users,<base DN>")
        try:
            rdns = dnmod.parse(request.name)
        except dnmod.DNError as exc:
            return answer(codec.INVALID_DN_SYNTAX, str(exc))
        provider = self.provider_for(dnmod.key(rdns))
        username = dnmod.first_value(rdns, "cn")
        if provider is None or not username:
            return answer(codec.INSUFFICIENT_ACCESS_RIGHTS,
                          "no LDAP provider serves this DN; bind with cn=<username>,ou=users,<the provider's base DN>")
        log["provider"] = provider.get("pk")
        if provider.get("require_tls") and not session.tls:
            return answer(codec.CONFIDENTIALITY_REQUIRED, "this provider requires TLS: use ldaps:// or StartTLS "
                                                          "(ldapsearch -ZZ) before binding")
        if not request.password:
            return answer(codec.UNWILLING_TO_PERFORM, "unauthenticated bind (a DN without a password) is refused")
        if self.limiter.blocked(username, session.remote_ip):
            log["throttled"] = True
            await asyncio.sleep(self.penalty)
            return answer(codec.INVALID_CREDENTIALS, "invalid credentials")
        password = request.password.decode("utf-8", errors="replace")
        cached = provider.get("bind_mode") == "cached" and not carries_code(password, provider.get("mfa_support", True))
        result = self.bind_cache.get(provider["pk"], username, password) if cached else None
        if result is not None:
            log["cached"] = True
        else:
            generation = self._generation()
            result = await self.link.authenticate("ldap", int(provider["pk"]), username, password, session.remote_ip)
            # a refresh while the core decided may have revoked what it answered: not kept past it
            if cached and result.result is AuthResult.OK and self._generation() == generation:
                self.bind_cache.put(provider["pk"], username, password, result)
        log["result"] = result.result.value
        if result.result is not AuthResult.OK:
            if result.reason:
                log["reason"] = result.reason
            if result.result in (AuthResult.INVALID_CREDENTIALS, AuthResult.MFA_REQUIRED):
                self.limiter.failed(username, session.remote_ip)
            code = _BIND_CODES[result.result]
            return answer(code, _BIND_MESSAGES[result.result])
        self.limiter.succeeded(username, session.remote_ip)
        layout = directory.Layout.of(provider)
        session.provider, session.user = provider, result.user
        session.bind_dn = layout.user_dn(result.user.username)
        session.can_search = result.has_search_permission
        session.session_id = result.session_id
        session.bound_at = time.time()
        if result.session_id:
            self.sessions.setdefault(result.session_id, set()).add(session)
        return answer(codec.SUCCESS)

    # -- search ---------------------------------------------------------------------------------------
    def _base_entries(self) -> list[str]:
        return [str(p.get("base_dn") or "") for p in self.providers()]

    async def entries(self, session: Session, flt=None) -> list[Entry] | Indexed | None:
        """The entries this session may see (narrowed by ``flt`` where the core can help); None when its bind
        no longer holds (see ``still_valid``)."""
        # the provider as the latest configuration has it (the bind's copy may be stale); gone -> no access
        provider = next((p for p in self.providers() if p.get("pk") == session.provider.get("pk")), None)
        if provider is None:
            self.forget(session)
            session.reset()
            return None
        layout = directory.Layout.of(provider)
        if provider.get("search_mode") == "cached":
            if self.cached is None:
                self.cached = CachedDirectory(self.link, self._cached_layouts, self._root)
            full = await self.cached.directory((provider.get("pk"), layout))
            bound = await self.cached.user(session.user.pk)
            if not still_valid(session, bound):
                self.forget(session)
                session.reset()
                return None
            return full if session.can_search else directory.restricted(full, layout, str(bound["username"]))
        users, groups = await self.source.load(None if flt is None else pushdown(flt))
        bound = next((u for u in users if u.get("pk") == session.user.pk), None) or await self.source.user(
            session.user.pk)
        if not still_valid(session, bound):
            self.forget(session)
            session.reset()
            return None
        only = None if session.can_search else session.user.pk
        return [schema.root_dse([layout.base], self.version, dn=layout.base),
                *directory.build(users, groups, layout, only_user_pk=only)]

    def _root(self, layout: directory.Layout) -> Entry:
        return schema.root_dse([layout.base], self.version, dn=layout.base)

    def _cached_layouts(self) -> set[tuple]:
        return {(p.get("pk"), directory.Layout.of(p)) for p in self.providers() if p.get("search_mode") == "cached"}

    async def search(self, request: codec.SearchRequest, session: Session, conn: Connection,
                     log: dict) -> tuple[Reply, int]:
        log.update(base=request.base, scope=request.scope)

        def done(code: int, message: str) -> tuple[Reply, int]:
            return Reply([codec.search_done(request.message_id, code, message)]), code

        try:
            base_key = dnmod.key(request.base)
        except dnmod.DNError as exc:
            return done(codec.INVALID_DN_SYNTAX, str(exc))
        if not base_key:
            if request.scope != 0:
                return done(codec.NO_SUCH_OBJECT, "the Root DSE has no children; search under a naming context")
            source = [schema.root_dse(self._base_entries(), self.version)]
            return self._answer(conn, request, lambda: source, log)
        if base_key == SUBSCHEMA_KEY:
            entry = schema.subschema()
            return self._answer(conn, request, lambda: [entry], log)
        if session.user is None or session.provider is None:
            return done(codec.INSUFFICIENT_ACCESS_RIGHTS, "bind first: cn=<username>,ou=users,<base DN>")
        provider_base = dnmod.key(str(session.provider.get("base_dn") or ""))
        if not dnmod.is_within(base_key, provider_base):
            return done(codec.NO_SUCH_OBJECT, f"{request.base!r} is not under this provider's base DN "
                                              f"{session.provider.get('base_dn')!r}")
        paged = None
        try:
            paged = codec.paged_control(request)
        except codec.LDAPProtocolError:
            pass  # conn.search answers it
        if paged and paged[1]:
            entries: list[Entry] | None = []  # a follow-up page: the result set is already held by the connection
        else:
            entries = await self.entries(session, request.filter)
        if entries is None:
            return done(codec.INSUFFICIENT_ACCESS_RIGHTS, REVOKED)
        return self._answer(conn, request, lambda: entries, log)

    def _answer(self, conn: Connection, request: codec.SearchRequest, source, log: dict) -> tuple[Reply, int]:
        data, code = conn.search(request, source)
        log["entries"] = len(data) - 1
        return Reply(data), code

    # -- compare, extended ----------------------------------------------------------------------------
    async def compare(self, request: codec.CompareRequest, session: Session, log: dict) -> tuple[Reply, int]:
        def answer(code: int, message: str = "") -> tuple[Reply, int]:
            return Reply([codec.compare_response(request.message_id, code, message)]), code

        if session.user is None:
            return answer(codec.INSUFFICIENT_ACCESS_RIGHTS, "bind first")
        try:
            target = dnmod.key(request.dn)
        except dnmod.DNError as exc:
            return answer(codec.INVALID_DN_SYNTAX, str(exc))
        entries = await self.entries(session)
        if entries is None:
            return answer(codec.INSUFFICIENT_ACCESS_RIGHTS, REVOKED)
        entry = next((e for e in entries if e.dn_key == target), None)
        if entry is None:
            return answer(codec.NO_SUCH_OBJECT, f"no entry {request.dn!r}")
        values = entry.folded(request.attribute.lower())
        if not values:
            return answer(codec.NO_SUCH_ATTRIBUTE, f"{request.dn!r} has no attribute {request.attribute!r}")
        return answer(codec.COMPARE_TRUE if request.value.casefold() in values else codec.COMPARE_FALSE)

    def extended(self, request: codec.ExtendedRequest, session: Session, log: dict) -> tuple[Reply, int]:
        log["oid"] = request.oid
        if request.oid == codec.WHOAMI_OID:
            value = f"dn:{session.bind_dn}".encode() if session.bind_dn else b""
            return Reply([codec.extended_response(request.message_id, codec.SUCCESS, value=value)]), codec.SUCCESS
        if request.oid == codec.STARTTLS_OID:
            if session.tls:
                return Reply([codec.extended_response(request.message_id, codec.OPERATIONS_ERROR, "TLS is already active",
                                                      name=codec.STARTTLS_OID)]), codec.OPERATIONS_ERROR
            if not self.tls_available:
                return Reply([codec.extended_response(request.message_id, codec.UNAVAILABLE, "StartTLS is not "
                                                      "available on this listener", name=codec.STARTTLS_OID)]), codec.UNAVAILABLE
            return Reply([codec.extended_response(request.message_id, codec.SUCCESS, name=codec.STARTTLS_OID)],
                         "starttls"), codec.SUCCESS
        return Reply([codec.extended_response(request.message_id, codec.PROTOCOL_ERROR,
                                              f"extended operation {request.oid} is not supported")]), codec.PROTOCOL_ERROR


def still_valid(session: Session, found: dict | None) -> bool:
    """Direct mode re-checks a bind against the user as the core has it now: it must still exist and be
    active, and its password must not have changed since the bind (a group removal takes effect at the next
    bind: the application's policies run in the core)."""
    if found is None or not found.get("is_active", False):
        return False
    changed = _timestamp(found.get("password_change_date"))
    # to the microsecond the core gives: at whole seconds, a password set in the second of the bind (a set-up
    # script, a user who binds right after changing it) read as changed after the bind and refused the search
    return changed is None or changed <= session.bound_at


def _timestamp(value: Any) -> float | None:
    if not value:
        return None
    return _parsed_timestamp(str(value))


@functools.lru_cache(maxsize=1024)  # every search re-checks its bound user's password_change_date: parse it once
def _parsed_timestamp(value: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
