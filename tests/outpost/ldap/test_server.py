"""The LDAP outpost server with real clients against a fake core link (tests/outpost/ldap/conftest.py)."""

from __future__ import annotations

import asyncio
import ssl

from protocols.ldap import codec
from tests.outpost.ldap.conftest import BASE, PASSWORD, need_tool, run
from tests.protocols.ldap import client

ALICE = f"cn=alice,ou=users,{BASE}"
ADMIN = f"cn=admin,ou=users,{BASE}"


def url(server, index: int = 0) -> str:
    return f"{'ldaps' if index else 'ldap'}://127.0.0.1:{server.port(index)}"


async def test_ldapwhoami_plain_starttls_ldaps(ldap_server):
    need_tool("ldapwhoami")
    server = await ldap_server()
    rc, out, err = await run("ldapwhoami", "-x", "-H", url(server), "-D", ALICE, "-w", PASSWORD)
    assert rc == 0, err
    assert out.strip() == f"dn:cn=alice,ou=users,{BASE.lower()}"
    rc, out, err = await run("ldapwhoami", "-x", "-ZZ", "-H", url(server), "-D", ALICE, "-w", PASSWORD)
    assert rc == 0, err
    rc, out, err = await run("ldapwhoami", "-x", "-H", url(server, 1), "-D", ALICE, "-w", PASSWORD)
    assert rc == 0, err
    assert server.link.calls[-1] == ("ldap", 1, "alice", "127.0.0.1")


async def test_bind_result_codes(ldap_server):
    need_tool("ldapwhoami")
    server = await ldap_server()
    server.link.denied.add("bob")
    rc, _, err = await run("ldapwhoami", "-x", "-H", url(server), "-D", ALICE, "-w", "wrong")
    assert rc == 49, err
    rc, _, err = await run("ldapwhoami", "-x", "-H", url(server), "-D", f"cn=bob,ou=users,{BASE}", "-w", PASSWORD)
    assert rc == 50, err
    rc, _, err = await run("ldapwhoami", "-x", "-H", url(server))  # anonymous
    assert rc == 50, err
    rc, _, err = await run("ldapwhoami", "-x", "-H", url(server), "-D", "cn=alice,dc=elsewhere", "-w", PASSWORD)
    assert rc == 50, err


async def test_require_tls(ldap_server):
    need_tool("ldapwhoami")
    server = await ldap_server(require_tls=True)
    rc, _, err = await run("ldapwhoami", "-x", "-H", url(server), "-D", ALICE, "-w", PASSWORD)
    assert rc == 13, err
    rc, _, err = await run("ldapwhoami", "-x", "-ZZ", "-H", url(server), "-D", ALICE, "-w", PASSWORD)
    assert rc == 0, err
    assert len(server.link.calls) == 1  # the plain bind never reached the core


async def test_ldapsearch_paging_size_limit_substrings(ldap_server):
    need_tool("ldapsearch")
    server = await ldap_server(1100)
    rc, out, err = await run("ldapsearch", "-x", "-LLL", "-H", url(server), "-D", ADMIN, "-w", PASSWORD, "-b",
                             f"ou=users,{BASE}", "-E", "pr=50/noprompt", "(objectClass=user)", "cn")
    assert rc == 0, err
    assert out.count("\ndn: ") + out.startswith("dn: ") == 1100
    rc, out, err = await run("ldapsearch", "-x", "-LLL", "-H", url(server), "-D", ADMIN, "-w", PASSWORD, "-b",
                             BASE, "-z", "5", "(objectClass=user)", "1.1")
    assert rc == 4, err
    assert out.count("dn: ") == 5
    rc, out, err = await run("ldapsearch", "-x", "-LLL", "-H", url(server), "-D", ADMIN, "-w", PASSWORD, "-b",
                             BASE, "(&(objectClass=user)(cn=user10*5))", "cn")
    assert rc == 0, err
    assert sorted(line for line in out.splitlines() if line.startswith("cn:")) == [
        "cn: user1005", "cn: user1015", "cn: user1025", "cn: user1035", "cn: user1045", "cn: user1055",
        "cn: user1065", "cn: user1075", "cn: user1085", "cn: user1095"]


async def test_search_without_permission_sees_self_and_groups(ldap_server):
    need_tool("ldapsearch")
    server = await ldap_server()
    rc, out, err = await run("ldapsearch", "-x", "-LLL", "-H", url(server), "-D", ALICE, "-w", PASSWORD, "-b",
                             BASE, "(|(objectClass=user)(objectClass=group))", "1.1")
    assert rc == 0, err
    dns = sorted(line for line in out.splitlines() if line.startswith("dn:"))
    lower = BASE.lower()
    assert dns == [f"dn: cn=alice,ou=users,{lower}", f"dn: cn=alice,ou=virtual-groups,{lower}"]  # alice (pk 2) is in no group


async def test_root_dse_and_subschema(ldap_server):
    need_tool("ldapsearch")
    server = await ldap_server()
    bound = ("-D", ALICE, "-w", PASSWORD)
    rc, out, err = await run("ldapsearch", "-x", "-LLL", "-H", url(server), *bound, "-b", "", "-s", "base", "+")
    assert rc == 0, err
    assert f"namingContexts: {BASE.lower()}" in out and "supportedControl: 1.2.840.113556.1.4.319" in out
    rc, out, err = await run("ldapsearch", "-x", "-LLL", "-H", url(server), *bound, "-b", "cn=subschema", "-s",
                             "base", "objectClass=*", "objectClasses")
    assert rc == 0 and "posixAccount" in out, err
    # without any bind request (as SSSD reads the Root DSE): the Root DSE answers, the directory does not
    reply = await _raw(server, client.search(1, "", scope=0) + client.search(2, BASE, "(cn=alice)") + client.unbind(3))
    out = client.decode_all(reply)
    assert out[0]["op"] == "searchResEntry" and out[0]["attributes"]["vendorName"] == ["goauthentik.io"]
    assert out[1]["code"] == 0 and out[2]["code"] == 50


async def test_ldap3_sync_client_schema_loader(ldap_server):
    import ldap3

    server = await ldap_server()
    port = server.port(0)

    def use() -> dict:
        srv = ldap3.Server("127.0.0.1", port=port, get_info=ldap3.ALL, connect_timeout=10)
        conn = ldap3.Connection(srv, ADMIN, PASSWORD, auto_bind=True, receive_timeout=20)
        assert srv.schema is not None and "posixAccount" in srv.schema.object_classes
        assert BASE.lower() in [c.lower() for c in srv.info.naming_contexts]
        conn.search(f"ou=users,{BASE}", "(&(objectClass=user)(cn=alice))", attributes=[ldap3.ALL_ATTRIBUTES,
                                                                                      ldap3.ALL_OPERATIONAL_ATTRIBUTES])
        entry = conn.entries[0].entry_attributes_as_dict
        who = conn.extend.standard.who_am_i()
        assert conn.compare(ALICE, "mail", "ALICE@example.com") is True
        assert conn.delete(ALICE) is False and conn.result["result"] == 53
        conn.unbind()
        # a second connection on the same Server re-reads the schema, checking the names it asks for
        # (objectClasses, attributeTypes...) against the schema it loaded first
        again = ldap3.Connection(srv, ALICE, PASSWORD, auto_bind=True, receive_timeout=20)
        assert again.search(BASE, "(cn=alice)", attributes=["*"]) and again.entries
        again.unbind()
        return {"entry": entry, "who": who}

    got = await asyncio.to_thread(use)
    assert got["who"] == f"dn:cn=admin,ou=users,{BASE.lower()}"
    assert got["entry"]["uidNumber"] == [2002] and got["entry"]["ak-active"] == [True]
    assert got["entry"]["memberOf"] == []


async def _raw(server, data: bytes, read_until_close: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port(0))
    writer.write(data)
    await writer.drain()
    out = await asyncio.wait_for(reader.read(), 20) if read_until_close else b""
    writer.close()
    return out


async def test_garbage_gets_notice_then_server_still_answers(ldap_server):
    server = await ldap_server()
    for garbage in (b"GET / HTTP/1.1\r\n\r\n", b"\x30\x84\xff\xff\xff\xff", b"\x30\x05\x02\x01\x01\x04\x00",
                    bytes(range(256))):
        reply = await _raw(server, garbage)
        [notice] = client.decode_all(reply)
        assert notice["code"] == 2 and notice["name"] == codec.NOTICE_OF_DISCONNECTION_OID
    # truncated: the server waits (idle timeout), it does not crash; a complete request still works after
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port(0))
    writer.write(client.bind(1, ALICE, PASSWORD)[:-4])
    await writer.drain()
    reply = await _raw(server, client.bind(1, ALICE, PASSWORD) + client.extended(2, codec.WHOAMI_OID) + client.unbind(3))
    bind, who = client.decode_all(reply)
    assert bind["code"] == 0 and who["value"] == f"dn:cn=alice,ou=users,{BASE.lower()}".encode()
    writer.close()


async def test_idle_connection_is_closed(ldap_server):
    server = await ldap_server(idle_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port(0))
    assert await asyncio.wait_for(reader.read(), 20) == b""  # closed by the server
    writer.close()


async def test_failed_binds_are_throttled_per_user_and_address(ldap_server):
    server = await ldap_server()
    for i in range(7):
        reply = await _raw(server, client.bind(1, ALICE, "wrong") + client.unbind(2))
        assert client.decode_all(reply)[0]["code"] == 49
    assert len(server.link.calls) == 5  # after 5 failures the core is not asked any more from this address
    reply = await _raw(server, client.bind(1, ADMIN, PASSWORD) + client.unbind(2))
    assert client.decode_all(reply)[0]["code"] == 0  # another user from the same address is not locked out


async def test_session_end_closes_the_connection(ldap_server):
    server = await ldap_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port(0))
    writer.write(client.bind(1, ALICE, PASSWORD))
    await writer.drain()
    first = await asyncio.wait_for(reader.read(4096), 20)
    assert client.decode_all(first)[0]["code"] == 0
    assert server.handlers.end_session("session-alice") == 1
    assert await asyncio.wait_for(reader.read(), 20) == b""
    writer.close()


async def test_starttls_over_raw_socket_then_unbind_in_clear_is_not_reset(ldap_server):
    server = await ldap_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port(0))
    writer.write(client.extended(1, codec.STARTTLS_OID))
    await writer.drain()
    [resp] = client.decode_all(await asyncio.wait_for(reader.read(4096), 20))
    assert resp["code"] == 0
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    await writer.start_tls(context)
    writer.write(client.bind(2, ALICE, PASSWORD))
    await writer.drain()
    assert client.decode_all(await asyncio.wait_for(reader.read(4096), 20))[0]["code"] == 0
    writer.write(client.unbind(3))
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 20) == b""
    writer.close()


async def test_equality_on_cn_is_pushed_down_to_the_core(ldap_server):
    server = await ldap_server(50)
    reply = await _raw(server, client.bind(1, ADMIN, PASSWORD) + client.search(2, BASE, "(&(objectClass=user)(cn=USER0042))",
                                                                             attributes=["cn"]) + client.unbind(3))
    out = client.decode_all(reply)
    assert [o.get("dn") for o in out[1:]] == [f"cn=user0042,ou=users,{BASE.lower()}", None]
    assert "/api/v3/core/users/?search=user0042" in server.link.paths


async def test_a_deactivated_bound_user_cannot_search(ldap_server):
    server = await ldap_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port(0))
    writer.write(client.bind(1, ALICE, PASSWORD))
    await writer.drain()
    assert client.decode_all(await asyncio.wait_for(reader.read(4096), 20))[0]["code"] == 0
    next(u for u in server.link.users if u["username"] == "alice")["is_active"] = False
    writer.write(client.search(2, BASE, "(cn=admin)", attributes=["cn"]))
    await writer.drain()
    assert client.decode_all(await asyncio.wait_for(reader.read(4096), 20))[-1]["code"] == 50
    writer.close()


async def test_metrics_by_operation_and_code(ldap_server):
    from prometheus_client import CollectorRegistry

    from outpost.ldap.metrics import LDAPMetrics

    server = await ldap_server()
    registry = CollectorRegistry()
    server.handlers.observe = LDAPMetrics(registry, lambda: "ldap-outpost").observe
    await _raw(server, client.bind(1, ALICE, "wrong") + client.unbind(2))
    await _raw(server, client.bind(1, ALICE, PASSWORD) + client.search(2, BASE, "(cn=alice)") + client.unbind(3))
    value = registry.get_sample_value
    assert value("gatehouse_outpost_ldap_operations_total", {"type": "bind", "code": "49"}) == 1
    assert value("gatehouse_outpost_ldap_operations_total", {"type": "bind", "code": "0"}) == 1
    assert value("authentik_outpost_ldap_requests_count",
                 {"outpost_name": "ldap-outpost", "type": "search", "app": "app"}) == 1
    assert value("authentik_outpost_ldap_requests_rejected_total", {"outpost_name": "ldap-outpost", "type": "bind",
                                                                     "reason": "invalid_credentials", "app": ""}) == 1


async def test_cached_search_mode_reads_once_and_follows_changes(ldap_server):
    server = await ldap_server(40, search_mode="cached")
    link = server.link
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port(0))

    async def ask(message: bytes) -> list[dict]:
        writer.write(message)
        await writer.drain()
        data = b""
        while True:  # until the searchResDone (or bindResponse) arrives
            data += await asyncio.wait_for(reader.read(65536), 20)
            try:
                out = client.decode_all(data)
            except Exception:  # noqa: BLE001 - a partial message: read on
                continue
            if out and out[-1]["op"] != "searchResEntry":
                return out

    assert (await ask(client.bind(1, ADMIN, PASSWORD)))[0]["code"] == 0
    for i in range(3):
        out = await ask(client.search(2 + i, BASE, "(objectClass=user)", attributes=["1.1"]))
        assert len(out) == 41
    assert sum("users" in p for p in link.paths) == 1  # one read of the users for three searches
    assert set(link.page_sizes) == {1000}  # the API's largest page
    # a refetch does not stall searches: the previous copy answers until the new one is built
    link.hold = asyncio.Event()
    link.users.append({**link.users[-1], "pk": 99, "username": "newcomer", "email": "n@example.com"})
    link.changed()
    assert len(await ask(client.search(9, BASE, "(cn=newcomer)", attributes=["cn"]))) == 1  # not yet
    link.hold.set()
    for _ in range(200):
        out = await ask(client.search(10, BASE, "(cn=newcomer)", attributes=["cn"]))
        if len(out) > 1:  # the user and its virtual group
            break
        await asyncio.sleep(0.05)
    assert out[0]["attributes"] == {"cn": ["newcomer"]}
    # ... but a revocation is immediate: during a refetch the bound user is read from the core itself
    link.hold.clear()
    next(u for u in link.users if u["username"] == "admin")["is_active"] = False
    link.changed()
    assert server.handlers.cached.stale
    assert (await ask(client.search(11, BASE, "(cn=newcomer)")))[-1]["code"] == 50
    link.hold.set()
    writer.close()


async def test_cached_bind_mode(ldap_server):
    server = await ldap_server(bind_mode="cached")
    link, cache = server.link, server.handlers.bind_cache

    async def bind(password: str) -> int:
        return client.decode_all(await _raw(server, client.bind(1, ALICE, password) + client.unbind(2)))[0]["code"]

    assert await bind(PASSWORD) == 0 and await bind(PASSWORD) == 0
    assert len(link.calls) == 1 and len(cache) == 1  # the second bind never reached the core
    assert PASSWORD.encode() not in repr(cache._entries).encode()  # a salted scrypt digest, not the password
    assert await bind("wrong") == 49 and len(link.calls) == 2  # a different password asks the core; not cached
    link.changed()  # any user/group/policy change in the core (TRIGGER_UPDATE) empties the cache
    assert len(cache) == 0
    assert await bind(PASSWORD) == 0 and len(link.calls) == 3
    server.handlers.end_session("session-alice")  # the core session of that bind ended
    assert len(cache) == 0
    assert await bind(PASSWORD) == 0 and len(link.calls) == 4
    # a one-time code is never cached: the same password;code again would replay it
    cache.clear()
    before = len(link.calls)
    for _ in range(2):
        await bind(PASSWORD + ";123456")
    assert len(link.calls) == before + 2 and len(cache) == 0


async def test_core_away_during_a_search_is_operations_error(ldap_server):
    from outpost.core_link import LinkError

    server = await ldap_server()

    async def away(path):
        raise LinkError("GET /api/v3/core/users/ answered HTTP 502")

    reply = await _raw(server, client.bind(1, ADMIN, PASSWORD) + client.unbind(9))
    assert client.decode_all(reply)[0]["code"] == 0
    server.link._all_pages = away
    reply = await _raw(server, client.bind(1, ADMIN, PASSWORD) + client.search(2, BASE, "(cn=alice)")
                       + client.unbind(3))
    assert [o["code"] for o in client.decode_all(reply)] == [0, 1]


async def test_cached_search_without_permission_sees_self_and_groups(ldap_server):
    """Cached mode keeps no JSON: the restricted view is cut from the indexed directory, as direct mode builds it."""
    views = {}
    for mode in ("direct", "cached"):
        server = await ldap_server(search_mode=mode)
        reply = await _raw(server, client.bind(1, f"cn=bob,ou=users,{BASE}", PASSWORD)
                           + client.search(2, BASE, "(objectClass=*)") + client.unbind(3))
        views[mode] = [(m["dn"], m["attributes"]) for m in client.decode_all(reply) if m["op"] == "searchResEntry"]
    lower = BASE.lower()
    assert [dn for dn, _ in views["cached"]] == [lower, f"ou=users,{lower}", f"ou=groups,{lower}",
                                                 f"ou=virtual-groups,{lower}", f"cn=bob,ou=users,{lower}",
                                                 f"cn=staff,ou=groups,{lower}", f"cn=bob,ou=virtual-groups,{lower}"]
    assert views["cached"] == views["direct"]
    staff = dict(views["cached"])[f"cn=staff,ou=groups,{lower}"]
    assert staff["member"] == [f"cn=bob,ou=users,{lower}"]  # the member list reduced to the bound user
