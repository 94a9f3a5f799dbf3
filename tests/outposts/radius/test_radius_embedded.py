"""RADIUS inside ``ak server``: a RADIUS provider bound to the embedded outpost is answered on the core's
AUTHENTIK_LISTEN__RADIUS / __RADIUS_ACCOUNTING once bound (nothing listens before)."""

from __future__ import annotations

import functools
import os
import socket
import time

import httpx
import pytest
from pyrad.client import Client, Timeout
from pyrad.packet import AccessAccept, AccessReject, AccessRequest

from protocols.radius.codec import Code, dictionary, encode_request
from tests.outposts.radius.test_radius_e2e import free_udp_port
from tests.support.server import api_call, start_core

pytestmark = pytest.mark.e2e

TOKEN = "radius-embedded-bootstrap-" + "e" * 30  # noqa: S105 - test value
PASSWORD = "Correct-Horse-embedded-5!"  # noqa: S105 - test value
SECRET = b"embedded-secret"


def status_answered(port: int) -> bool:
    data = encode_request(Code.STATUS_SERVER, SECRET, 1, os.urandom(16))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recv(4096)[0] == Code.ACCESS_ACCEPT
        except (TimeoutError, ConnectionRefusedError):
            return False


def pap(port: int, user: str, password: str) -> int | None:
    client = Client(server="127.0.0.1", authport=port, secret=SECRET, dict=dictionary(), retries=1, timeout=10,
                    enforce_ma=True)
    request = client.CreateAuthPacket(code=AccessRequest, User_Name=user)
    request["User-Password"] = request.PwCrypt(password)
    try:
        return client.SendPacket(request).code
    except Timeout:
        return None


def test_embedded_outpost_serves_radius(tmp_path):
    auth_port, acct_port = free_udp_port(), free_udp_port()
    core = start_core(tmp_path / "core", bootstrap_token=TOKEN, env={
        "AUTHENTIK_LISTEN__RADIUS": f"127.0.0.1:{auth_port}",
        "AUTHENTIK_LISTEN__RADIUS_ACCOUNTING": f"127.0.0.1:{acct_port}"})
    try:
        with httpx.Client(base_url=core.url + "/api/v3", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=30) as api:
            call = functools.partial(api_call, api)

            user = call("POST", "/core/users/", json={"username": "erin", "name": "Erin", "email": "e@example.test"})
            call("POST", f"/core/users/{user['pk']}/set_password/", json={"password": PASSWORD})
            flow = call("GET", "/flows/instances/", params={"slug": "default-authentication-flow"})["results"][0]
            provider = call("POST", "/providers/radius/", json={
                "name": "embedded-radius", "authorization_flow": flow["pk"], "client_networks": "127.0.0.0/8",
                "shared_secret": SECRET.decode()})
            call("POST", "/core/applications/", json={"name": "Embedded VPN", "slug": "embedded-vpn",
                                                      "provider": provider["pk"]})
            assert not status_answered(auth_port)  # nothing listens before a RADIUS provider is bound
            embedded = call("GET", "/outposts/instances/",
                            params={"managed": "goauthentik.io/outposts/embedded"})["results"][0]
            call("PATCH", f"/outposts/instances/{embedded['pk']}/",
                 json={"providers": [*embedded["providers"], provider["pk"]]})
            deadline = time.monotonic() + 30
            while not status_answered(auth_port):
                assert time.monotonic() < deadline, f"no RADIUS answer from ak server:\n{core.tail()}"
                time.sleep(0.2)
            assert pap(auth_port, "erin", PASSWORD) == AccessAccept
            assert pap(auth_port, "erin", "wrong") == AccessReject
    finally:
        core.stop()
