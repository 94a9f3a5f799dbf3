"""The RADIUS outpost's rules: one datagram in, one reply (or nothing) out. Socket glue is server.py.

Per datagram, in order (THREATS 15-17):
1. The source address picks the client by longest prefix over all providers (protocols/radius/clients.py);
   unknown -> silent drop (RFC 2865 §3), counted.
2. The codec verifies it with that client's secret (lengths, Message-Authenticator required unless the
   provider opts out, the accounting authenticator); any problem -> silent drop, counted.
3. Status-Server (RFC 5997) is answered at once: Access-Accept on the authentication listener,
   Accounting-Response on the accounting listener. Accounting-Request (accounting listener only) is sent to
   the core (CoreLink.radius_accounting: an event) and answered with Accounting-Response once recorded;
   not recorded -> no answer (RFC 2866 §4.1), the NAS resends. Retransmits are answered from the reply
   cache as below. A request on the wrong listener is dropped.
4. Access-Request: a duplicate (same source address and port, Identifier and Request Authenticator; RFC 5080
   §2.2.2) gets the cached reply, or nothing while the first is still being decided; it is never
   authenticated twice. PAP goes to the core in one call (CoreLink.authenticate: the provider's flow, MFA as
   ``password;123456``, then the application check). The core's answer decides Accept or Reject; a Reject
   is sent after ``reject_delay`` (the core rate-limits failed logins per user and client; the delay costs
   a guesser time, and the reply is never larger than the request's answer, so no amplification).
   CHAP, MS-CHAP and MS-CHAPv2 go to the core too (CoreLink.radius_challenge: the proof is checked against
   the user's network password (a token of intent radius); for MS-CHAPv2, MS-CHAP2-Success and the MPPE keys come
   back for the Accept; MS-CHAP v1 gets no MPPE keys). EAP is rejected with a reason in the log.
   The core away or its flow failing comes back from CoreLink.authenticate as ``flow_error``: a reject.
   With the provider's ``bind_mode=cached`` a PAP success is remembered (outpost/bind_cache.py: keyed on the
   provider and case-folded User-Name, checked against a salted scrypt of the password, 5 minutes) with the
   core's answer, so the same name and password get the same Accept without the core; never a reject, never
   a password carrying a one-time code. The cache empties on every configuration refresh (the core triggers one
   for every user, group, membership, policy and provider change) and drops the entry whose core session
   ends (SESSION_END); an answer that was in flight across a refresh is not cached. CHAP and MS-CHAP are
   never cached (a fresh challenge each time: nothing to compare).
   Should the link raise instead (a bug), there is no answer and the retransmit is decided afresh.

``remote_ip`` sent to the core is the NAS's address (the RADIUS client), not Calling-Station-Id: that one is
whatever the NAS writes (a MAC address on Wi-Fi, a phone number on dial-up), so the core's per-client rate
limit and its events name the device that asked.

Every datagram gets one log line (nas, provider, user, method, code, result, reason, duration_ms), never a
password or a secret.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from outpost.bind_cache import BindCache, carries_code
from protocols.radius.clients import ClientTable, build_table
from protocols.radius.codec import Code, DecodeError, Request, attribute_items, decode_request, encode_reply

LOGGER = logging.getLogger("gatehouse.outpost.radius")
REJECT_DELAY = 1.0  # seconds before an Access-Reject
CACHE_TTL = 30.0  # seconds a reply is kept for retransmits (RFC 5080 §2.2.2: "several seconds")
CACHE_MAX = 16384  # entries; the oldest go first
MS_CHAP2_RESPONSE = (311, 25)
MS_CHAP_RESPONSE = (311, 1)


@dataclass
class _Entry:
    expires: float
    reply: bytes | None = None  # None while the first copy is being decided


class ReplyCache:
    """Replies by (source address, port, Identifier, Request Authenticator), kept ``ttl`` seconds."""

    def __init__(self, ttl: float = CACHE_TTL, size: int = CACHE_MAX, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.size, self.clock = ttl, size, clock
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()

    def _prune(self, now: float) -> None:
        while self._entries:  # expired entries, oldest first
            key, entry = next(iter(self._entries.items()))
            if entry.expires > now:
                break
            del self._entries[key]

    def _make_room(self) -> bool:
        """While full, the oldest answered entries go. An entry still being decided is never evicted: its
        retransmit would be authenticated a second time (RFC 5080 §2.2.2). False: every entry is still pending."""
        excess = len(self._entries) - self.size + 1
        if excess > 0:
            answered = (k for k, e in self._entries.items() if e.reply is not None)
            for key in list(itertools.islice(answered, excess)):
                del self._entries[key]
        return len(self._entries) < self.size

    def begin(self, key: tuple) -> tuple[bool, bytes | None]:
        """(True, None): new, decide it; (False, reply-or-None): a duplicate (answer it, or drop it). When ``size``
        requests are all still being decided, a new one is dropped like a duplicate (the NAS resends it later)."""
        now = self.clock()
        self._prune(now)
        entry = self._entries.get(key)
        if entry is not None and entry.expires > now:
            return False, entry.reply
        if not self._make_room():
            return False, None
        self._entries[key] = _Entry(expires=now + self.ttl)
        return True, None

    def finish(self, key: tuple, reply: bytes) -> None:
        self._entries[key] = _Entry(expires=self.clock() + self.ttl, reply=reply)
        self._entries.move_to_end(key)

    def forget(self, key: tuple) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


def method_of(request: Request) -> str:
    if request.password is not None:
        return "pap"
    if request.has("CHAP-Password"):
        return "chap"
    if request.has("MS-CHAP2-Response") or request.has(MS_CHAP2_RESPONSE):
        return "mschapv2"
    if request.has("MS-CHAP-Response") or request.has(MS_CHAP_RESPONSE):
        return "mschap"
    if request.has("EAP-Message"):
        return "eap"
    return "none"


def reply_attributes(raw: Any) -> tuple[list, list[str]]:
    """The core's ``reply_attributes`` as items for encode_reply, malformed entries named (codec.attribute_items)."""
    return attribute_items(raw)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def accounting_record(request: Request, nas: str) -> dict:
    """The fields of an Accounting-Request the core records (RADIUS_ACCOUNTING_PATH); octets include the
    Gigawords (RFC 2869 §5.1, §5.2)."""
    def octets(name: str, gigawords: str) -> int | None:
        low, high = _int(request.get(name)), _int(request.get(gigawords)) or 0
        return None if low is None else (high << 32) + low

    def text(name: str) -> str:
        value = request.get(name)
        return "" if value is None else str(value)[:253]

    return {"status": text("Acct-Status-Type") or "unknown", "session_id": text("Acct-Session-Id"),
            "username": request.user_name[:253], "nas": nas, "nas_identifier": text("NAS-Identifier"),
            "nas_ip_address": text("NAS-IP-Address"), "nas_port": _int(request.get("NAS-Port")),
            "calling_station_id": text("Calling-Station-Id"), "called_station_id": text("Called-Station-Id"),
            "framed_ip_address": text("Framed-IP-Address"),
            "input_octets": octets("Acct-Input-Octets", "Acct-Input-Gigawords"),
            "output_octets": octets("Acct-Output-Octets", "Acct-Output-Gigawords"),
            "input_packets": _int(request.get("Acct-Input-Packets")),
            "output_packets": _int(request.get("Acct-Output-Packets")),
            "session_time": _int(request.get("Acct-Session-Time")),
            "terminate_cause": text("Acct-Terminate-Cause"), "delay_time": _int(request.get("Acct-Delay-Time"))}


class RadiusHandler:
    """Decides replies. ``link`` is a CoreLink (outpost/core_link.py) or looks like one: ``snapshot``,
    ``authenticate(kind, provider_pk, username, password, remote_ip)``, ``radius_challenge(provider_pk, body)``
    and ``radius_accounting(provider_pk, record)``; ``metrics`` is optional (outpost/radius/metrics.py)."""

    def __init__(self, link: Any, *, metrics: Any = None, reject_delay: float = REJECT_DELAY,
                 cache: ReplyCache | None = None, clock: Callable[[], float] = time.monotonic):
        self.link = link
        self.metrics = metrics
        self.reject_delay = reject_delay
        self.cache = cache or ReplyCache()
        self.clock = clock
        self.table = ClientTable()
        self._table_generation = -1
        self.credentials = BindCache()
        session_end = getattr(link, "on_session_end", None)
        if isinstance(session_end, list):
            session_end.append(self._session_ended)

    async def _session_ended(self, session_id: str) -> None:
        self.credentials.drop_session(session_id)

    def refresh(self, snapshot: Any = None) -> None:
        """Rebuild the client table from the link's snapshot (called on every configuration refresh)."""
        snapshot = snapshot or getattr(self.link, "snapshot", None)
        if snapshot is None:
            return
        self.table = build_table(snapshot.providers)
        self._table_generation = snapshot.generation
        self.credentials.clear()  # a user, group, policy or provider changed: revocation on the next request
        for problem in self.table.problems:
            LOGGER.warning(problem)

    def _current_generation(self) -> int:
        self._current_table()
        return self._table_generation

    def _current_table(self) -> ClientTable:
        snapshot = getattr(self.link, "snapshot", None)
        if snapshot is not None and snapshot.generation != self._table_generation:
            self.refresh(snapshot)
        return self.table

    async def handle(self, data: bytes, host: str, port: int, *, accounting: bool = False) -> bytes | None:
        started = self.clock()
        line: dict[str, Any] = {"nas": host, "listener": "accounting" if accounting else "authentication"}
        try:
            reply, result, reason = await self._handle(data, host, port, accounting, line)
        except Exception:  # a bug must not kill the listener; fail closed: no answer
            LOGGER.exception("radius request failed", extra=line)
            reply, result, reason = None, "error", "internal error"
        line.update(result=result, reason=reason, duration_ms=round((self.clock() - started) * 1000, 1))
        LOGGER.info("radius request", extra=line)
        if self.metrics is not None:
            self.metrics.observe(line.get("code", "unknown"), line.get("method", "none"), result,
                                 self.clock() - started, reason)
        return reply

    async def _handle(self, data: bytes, host: str, port: int, accounting: bool,
                      line: dict) -> tuple[bytes | None, str, str]:
        client = self._current_table().lookup(host)
        if client is None:
            return None, "dropped", (f"unknown client: {host} is in no client_networks of this outpost's RADIUS "
                                     "providers; add it to the provider's client_networks")
        line["provider"] = client.provider_name
        try:
            request = decode_request(data, client.secret,
                                     require_message_authenticator=client.require_message_authenticator)
        except DecodeError as exc:
            return None, "dropped", f"{exc.reason}: {exc}"
        line.update(code=request.code.name.lower().replace("_", "-"), user=request.user_name)
        if request.has("NAS-Identifier"):
            line["nas_identifier"] = str(request.get("NAS-Identifier"))[:64]
        if request.code == Code.STATUS_SERVER:
            code = Code.ACCOUNTING_RESPONSE if accounting else Code.ACCESS_ACCEPT
            return encode_reply(request, code, client.secret), "answered", "status-server"
        if request.code == Code.ACCOUNTING_REQUEST:
            if not accounting:
                return None, "dropped", "Accounting-Request on the authentication listener"
            line["acct_status"] = request.get("Acct-Status-Type")
            line["accounting_id"] = request.get("Acct-Session-Id")
            return await self._once(request, host, port, self._accounting(request, client, host))
        if accounting:
            return None, "dropped", "Access-Request on the accounting listener"
        method = line["method"] = method_of(request)
        return await self._once(request, host, port, self._access(request, client, host, method, line))

    async def _once(self, request: Request, host: str, port: int, decide) -> tuple[bytes | None, str, str]:
        """Run ``decide`` (a coroutine) unless this is a retransmit: then the cached reply, or nothing while the
        first copy is still being decided (RFC 5080 §2.2.2)."""
        key = (host, port, request.code, request.identifier, request.authenticator)
        new, cached = self.cache.begin(key)
        if not new:
            decide.close()
            if cached is None:
                return None, "dropped", "duplicate of a request still being decided"
            return cached, "duplicate", "answered from the reply cache"
        try:
            reply, result, reason = await decide
        except BaseException:
            self.cache.forget(key)  # the retransmit is decided afresh
            raise
        if reply is None:
            self.cache.forget(key)
        else:
            self.cache.finish(key, reply)
        return reply, result, reason

    async def _accounting(self, request: Request, client: Any, host: str) -> tuple[bytes | None, str, str]:
        """Record, then answer (RFC 2866 §4.1: no Accounting-Response unless recorded; the NAS resends)."""
        recorder = getattr(self.link, "radius_accounting", None)
        if recorder is None:
            return None, "dropped", "accounting: the core link cannot record"
        try:
            stored = await recorder(client.provider_pk, accounting_record(request, host))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return None, "dropped", f"accounting: {type(exc).__name__}: {exc}"
        if not stored:
            return None, "dropped", "accounting: the core did not record it"
        return encode_reply(request, Code.ACCOUNTING_RESPONSE, client.secret), "answered", "accounting recorded"

    async def _access(self, request: Request, client: Any, host: str, method: str,
                      line: dict) -> tuple[bytes | None, str, str]:
        if not request.user_name:
            return await self._reject(request, client, "no User-Name")
        if method in ("chap", "mschap", "mschapv2"):
            return await self._challenge(request, client, host, method)
        if method != "pap":
            return await self._reject(request, client,
                                      f"{method} is not supported (PAP, CHAP, MS-CHAP and MS-CHAPv2 are)")
        password = request.password or ""
        cached = client.cached and not carries_code(password, client.mfa_support)
        answer = self.credentials.get(client.provider_pk, request.user_name, password) if cached else None
        if answer is not None:
            line["cached"] = True
        else:
            generation = self._table_generation
            try:
                answer = await self.link.authenticate("radius", client.provider_pk, request.user_name, password, host)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the link raised (it answers flow_error for the core away): no decision
                return None, "dropped", f"core: {type(exc).__name__}: {exc}"
            # a refresh while the core decided may have revoked what it answered: not kept past it
            if cached and str(getattr(answer, "result", "")) == "ok" and self._current_generation() == generation:
                self.credentials.put(client.provider_pk, request.user_name, password, answer)
        result = str(getattr(answer, "result", ""))
        reason = str(getattr(answer, "reason", "") or result)
        if result != "ok":
            return await self._reject(request, client, f"{result}: {reason}")
        pairs, problems = reply_attributes(getattr(answer, "reply_attributes", ()))
        for problem in problems:
            LOGGER.warning(problem, extra={"provider": client.provider_name})
        try:
            reply = encode_reply(request, Code.ACCESS_ACCEPT, client.secret, pairs)
        except ValueError as exc:  # a mapping produced something unencodable: accept without the attributes
            LOGGER.warning("reply attributes dropped: %s", exc, extra={"provider": client.provider_name})
            reply = encode_reply(request, Code.ACCESS_ACCEPT, client.secret)
        return reply, "accept", reason

    async def _reject(self, request: Request, client: Any, reason: str,
                      attributes: tuple = ()) -> tuple[bytes, str, str]:
        if self.reject_delay > 0:
            await asyncio.sleep(self.reject_delay)
        return encode_reply(request, Code.ACCESS_REJECT, client.secret, attributes), "reject", reason

    async def _challenge(self, request: Request, client: Any, host: str, method: str) -> tuple[bytes, str, str]:
        """CHAP (RFC 2865 §5.3: CHAP-Challenge, else the Request Authenticator), MS-CHAP or MS-CHAPv2
        (RFC 2548: MS-CHAP-Challenge with MS-CHAP-Response or MS-CHAP2-Response), checked by the core against
        the user's network password."""
        body: dict[str, Any] = {"username": request.user_name, "remote_ip": host, "method": method}
        if method == "chap":
            proof = request.get("CHAP-Password") or b""
            if len(proof) != 17:
                return await self._reject(request, client, "chap: CHAP-Password is not 17 octets")
            challenge = request.get("CHAP-Challenge") or request.authenticator
            body.update(ident=proof[0], challenge=bytes(challenge).hex(), response=proof[1:].hex())
            ident = proof[0]
        elif method == "mschap":  # RFC 2548 §2.1.2: Ident, Flags (1: use the NT-Response), LM- and NT-Response
            challenge = request.get("MS-CHAP-Challenge") or b""
            proof = request.get("MS-CHAP-Response") or b""
            if len(challenge) != 8 or len(proof) != 50 or not proof[1] & 1:
                return await self._reject(request, client, "mschap: MS-CHAP-Challenge must be 8 octets and "
                                                           "MS-CHAP-Response 50 with an NT-Response")
            ident = proof[0]
            body.update(challenge=challenge.hex(), response=proof[26:50].hex())
        else:
            challenge = request.get("MS-CHAP-Challenge") or b""
            proof = request.get("MS-CHAP2-Response") or b""
            if len(challenge) != 16 or len(proof) != 50:
                return await self._reject(request, client, "mschapv2: MS-CHAP-Challenge must be 16 octets and "
                                                           "MS-CHAP2-Response 50")
            ident = proof[0]
            body.update(challenge=challenge.hex(), peer_challenge=proof[2:18].hex(), response=proof[26:50].hex())
        recorder = getattr(self.link, "radius_challenge", None)
        if recorder is None:
            return await self._reject(request, client, f"{method}: the core link cannot check it")
        answer = await recorder(client.provider_pk, body)
        result, reason = str(answer.get("result", "")), str(answer.get("reason") or "")
        if result != "ok":
            error = (("MS-CHAP-Error", bytes([ident]) + b"E=691 R=0 V=3"),) if method != "chap" else ()
            return await self._reject(request, client, f"{result}: {reason}", error)
        pairs, problems = reply_attributes(answer.get("reply_attributes"))
        for problem in problems:
            LOGGER.warning(problem, extra={"provider": client.provider_name})
        if method == "mschapv2":
            try:
                success = bytes([ident]) + str(answer["authenticator_response"]).encode()
                keys = bytes.fromhex(answer["mppe_send_key"]), bytes.fromhex(answer["mppe_recv_key"])
            except (KeyError, ValueError, TypeError):
                return await self._reject(request, client, "mschapv2: the core's answer lacks the keys")
            pairs = [("MS-CHAP2-Success", success), ("MS-MPPE-Send-Key", keys[0]), ("MS-MPPE-Recv-Key", keys[1]),
                     ("MS-MPPE-Encryption-Policy", 1), ("MS-MPPE-Encryption-Types", 6), *pairs]
        try:
            reply = encode_reply(request, Code.ACCESS_ACCEPT, client.secret, pairs)
        except ValueError as exc:
            LOGGER.warning("reply attributes dropped: %s", exc, extra={"provider": client.provider_name})
            reply = encode_reply(request, Code.ACCESS_ACCEPT, client.secret, pairs[:5] if method == "mschapv2"
                                 else ())
        return reply, "accept", reason
