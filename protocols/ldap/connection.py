"""One LDAP connection, sans-IO: bytes in -> requests (events) out; answers encoded to bytes.

``receive(data)`` buffers at most one message (``MAX_MESSAGE_BYTES``) beyond what it has decoded, so a
client cannot grow the buffer without bound. A violation yields a ``ProtocolViolation`` event carrying the
notice of disconnection (protocolError) to send before closing; after it the connection takes no more input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from protocols.ldap import codec
from protocols.ldap import dn as dnmod
from protocols.ldap.search import Entry, Pager, UnknownCookie, encoder, matching


@dataclass(frozen=True)
class ProtocolViolation:
    reason: str
    reply: bytes  # the notice of disconnection to send, then close


class Connection:
    def __init__(self, max_message_bytes: int = codec.MAX_MESSAGE_BYTES):
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self.closed = False
        self.pager = Pager()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def receive(self, data: bytes) -> list[codec.Request | ProtocolViolation]:
        if self.closed:
            return []
        self._buffer += data
        events: list[codec.Request | ProtocolViolation] = []
        while self._buffer:
            try:
                length = codec.frame_length(self._buffer, self.max_message_bytes)
                if length is None:
                    break
                message = bytes(self._buffer[:length])
                del self._buffer[:length]
                events.append(codec.decode_message(message))
            except codec.LDAPProtocolError as exc:
                self.closed = True
                self._buffer.clear()
                events.append(ProtocolViolation(str(exc), codec.notice_of_disconnection(codec.PROTOCOL_ERROR, str(exc))))
                break
        return events

    def search(self, request: codec.SearchRequest, entries: Callable[[], Iterable[Entry]]) -> tuple[list[bytes], int]:
        """Answer a search over ``entries()`` (called only when a new result set is needed): the entries of
        this page, then searchResDone (with the paged-results control when the client sent one); and the
        result code."""
        try:
            base_key = dnmod.key(request.base)
        except dnmod.DNError as exc:
            return [codec.search_done(request.message_id, codec.INVALID_DN_SYNTAX, str(exc))], codec.INVALID_DN_SYNTAX
        try:
            paged = codec.paged_control(request)
        except codec.LDAPProtocolError as exc:
            return [codec.search_done(request.message_id, codec.PROTOCOL_ERROR, str(exc))], codec.PROTOCOL_ERROR
        signature = (base_key, request.scope, request.filter, request.attributes, request.types_only,
                     request.size_limit)
        try:
            page = self.pager.run(signature, request.size_limit, paged,
                                  lambda: matching(entries(), base_key, request.scope, request.filter))
        except UnknownCookie as exc:
            return [codec.search_done(request.message_id, codec.UNWILLING_TO_PERFORM, str(exc))], codec.UNWILLING_TO_PERFORM
        encode, entry = encoder(request.attributes, request.types_only), codec.search_entry_encoded
        out = [entry(request.message_id, e.dn, encode(e)) for e in page.entries]
        out.append(codec.search_done(request.message_id, page.code, page.message, paged_cookie=page.cookie,
                                     paged_size=0))
        return out, page.code
