"""protocols/outpost.py: the wire schema both ends import (reference §1.2-§1.4)."""

import hashlib
import json
import random
from urllib.parse import parse_qs, urlsplit

import pytest

from protocols import outpost as p

UUID = "6d1c2b3a-0000-4000-8000-000000000001"
INSTANCE = "0f0e0d0c-1111-4222-8333-444455556666"


# --- frames ----------------------------------------------------------------------------------------


def test_ack_is_exactly_authentiks_frame():
    assert json.loads(p.ack().encode()) == {"instruction": 0, "args": {}}
    assert p.ack().encode() == '{"instruction":0,"args":{}}'


@pytest.mark.parametrize("message", [
    p.ack(), p.trigger_update(), p.session_end("ab" * 32),
    p.hello("2025.10.0", INSTANCE, "host-1", golangVersion="go1.24"),
    p.Message(3, {"sub_type": "logout", "session_id": "x"}),
])
def test_round_trip(message):
    assert p.Message.decode(message.encode()) == message
    assert p.Message.decode(message.encode().encode()) == message  # bytes too


def test_op_codes_are_authentiks():
    assert [int(i) for i in p.Instruction] == [0, 1, 2, 3, 4]
    assert p.Instruction.SESSION_END.name == "SESSION_END"


def test_hello_args_carry_instance_and_hostname():
    args = p.hello("1.0", INSTANCE, "h").args
    assert args["uuid"] == INSTANCE and args["hostname"] == "h" and args["version"] == "1.0"
    assert "buildHash" in args


def test_session_end_args_are_authentiks():
    assert p.session_end("deadbeef").args == {"type": "event.session.end", "session_id": "deadbeef"}


def test_missing_args_become_empty():
    assert p.Message.decode('{"instruction":2}') == p.Message(2, {})
    assert p.Message.decode('{"instruction":2,"args":null}').args == {}


def test_unknown_instruction_is_kept_but_not_known():
    message = p.Message.decode('{"instruction":99,"args":{"a":1}}')
    assert message.instruction == 99 and message.known is None
    assert p.Message.decode('{"instruction":4,"args":{}}').known is p.Instruction.SESSION_END


@pytest.mark.parametrize("frame", [
    "", "not json", "[]", "1", '"x"', "null", '{"args":{}}', '{"instruction":"1","args":{}}',
    '{"instruction":1.5}', '{"instruction":true}', '{"instruction":1,"args":[1]}', '{"instruction":1,"args":"x"}',
    b"\xff\xfe", "{" * 10,
])
def test_bad_frames_raise_protocol_error(frame):
    with pytest.raises(p.ProtocolError):
        p.Message.decode(frame)


def test_oversized_frame_is_refused_before_parsing():
    frame = json.dumps({"instruction": 1, "args": {"x": "a" * p.MAX_FRAME_BYTES}})
    with pytest.raises(p.ProtocolError, match="exceeds"):
        p.Message.decode(frame)


def test_protocol_error_is_a_value_error():
    assert issubclass(p.ProtocolError, ValueError)


# --- session id ------------------------------------------------------------------------------------


def test_hash_session_key_is_sha256_hex():
    assert p.hash_session_key("abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(p.hash_session_key("k" * 32)) == 64


# --- websocket URL (reference §1.2, authentik internal/outpost/ak/api_event_test.go) ----------------


def _split(url):
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


@pytest.mark.parametrize(("host", "scheme", "netloc", "path"), [
    ("http://localhost:9000", "ws", "localhost:9000", f"/ws/outpost/{UUID}/"),
    ("http://localhost:9000/", "ws", "localhost:9000", f"/ws/outpost/{UUID}/"),
    ("https://localhost:9443", "wss", "localhost:9443", f"/ws/outpost/{UUID}/"),
    ("http://localhost:9000/foo/bar", "ws", "localhost:9000", f"/foo/bar/ws/outpost/{UUID}/"),
    ("http://localhost:9000/foo/bar/", "ws", "localhost:9000", f"/foo/bar/ws/outpost/{UUID}/"),
    ("https://auth.example.com", "wss", "auth.example.com", f"/ws/outpost/{UUID}/"),
])
def test_websocket_url_vectors(host, scheme, netloc, path):
    got = _split(p.websocket_url(host, UUID, INSTANCE, 3))
    assert got == (scheme, netloc, path, {"instance_uuid": INSTANCE, "attempt": "3"})


def test_websocket_url_merges_the_hosts_query():
    got = _split(p.websocket_url("http://localhost:9000/foo/bar/?foo=bar", UUID, INSTANCE))
    assert got[2] == f"/foo/bar/ws/outpost/{UUID}/"
    assert got[3] == {"foo": "bar", "instance_uuid": INSTANCE, "attempt": "0"}


def test_websocket_url_ours_win_over_a_hosts_instance_uuid():
    got = _split(p.websocket_url("http://h/?instance_uuid=evil&attempt=9", UUID, INSTANCE, 1))
    assert got[3] == {"instance_uuid": INSTANCE, "attempt": "1"}


def test_websocket_path_has_the_trailing_slash():
    assert p.websocket_path(UUID) == f"/ws/outpost/{UUID}/"


# --- backoff -------------------------------------------------------------------------------------


def test_reconnect_delay_is_capped_at_five_seconds():
    rng = random.Random(1)
    delays = [p.reconnect_delay(attempt, rng=rng) for attempt in range(0, 200)]
    assert max(delays) <= p.RECONNECT_CAP == 5.0
    assert all(d > 0 for d in delays)


def test_reconnect_delay_grows_then_stays_within_the_cap_band():
    rng = random.Random(2)
    assert 0.25 <= p.reconnect_delay(0, rng=rng) <= 0.5
    assert 0.5 <= p.reconnect_delay(1, rng=rng) <= 1.0
    for attempt in (4, 10, 1000, 10**9):  # huge attempt counts do not overflow
        assert p.RECONNECT_CAP / 2 <= p.reconnect_delay(attempt, rng=rng) <= p.RECONNECT_CAP


def test_reconnect_delay_custom_cap():
    assert p.reconnect_delay(50, cap=1.0, rng=random.Random(3)) <= 1.0


# --- pagination ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    ({"pagination": {"next": 2}}, 2), ({"pagination": {"next": 0}}, 0), ({"pagination": {}}, 0), ({}, 0),
    ({"pagination": {"next": None}}, 0), ({"pagination": {"next": "3"}}, 3), ({"pagination": {"next": "x"}}, 0),
])
def test_next_page(body, expected):
    assert p.next_page(body) == expected


def test_paths_are_authentiks():
    assert p.INSTANCES_PATH == "/api/v3/outposts/instances/"
    assert p.CONFIG_PATHS == {"proxy": "/api/v3/outposts/proxy/", "ldap": "/api/v3/outposts/ldap/",
                              "radius": "/api/v3/outposts/radius/"}
