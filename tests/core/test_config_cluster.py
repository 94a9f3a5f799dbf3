"""AUTHENTIK_POSTGRESQL__* and AUTHENTIK_REDIS__* for clustered deployments: read replicas, PgBouncer,
connection lifetime, TLS (core/config.py, core/dbrouter.py)."""

from types import SimpleNamespace

import pytest

from core import dbrouter
from core.config import ConfigError, load

PG = {"AUTHENTIK_POSTGRESQL__HOST": "primary.db", "AUTHENTIK_POSTGRESQL__USER": "ak",
      "AUTHENTIK_POSTGRESQL__PASSWORD": "pw", "AUTHENTIK_POSTGRESQL__NAME": "authentik"}


def cfg(tmp_path, **env):
    return load({"AUTHENTIK_DATA_DIR": str(tmp_path), "AUTHENTIK_SECRET_KEY": "k" * 40, **env})


def problems(tmp_path, **env) -> list[str]:
    with pytest.raises(ConfigError) as err:
        cfg(tmp_path, **env)
    return err.value.problems


def test_defaults_unchanged(tmp_path):
    pg = cfg(tmp_path, **PG).postgresql
    assert (pg.conn_max_age, pg.conn_health_checks, pg.use_pgbouncer, pg.disable_server_side_cursors) == (
        60, True, False, False)
    assert pg.read_replicas == ()
    db = dbrouter.databases(pg)
    assert list(db) == ["default"]
    assert db["default"]["OPTIONS"] == {"sslmode": "prefer", "connect_timeout": 10}
    assert db["default"]["CONN_MAX_AGE"] == 60 and db["default"]["CONN_HEALTH_CHECKS"] is True


def test_read_replicas_inherit_the_primary(tmp_path):
    pg = cfg(tmp_path, **PG, AUTHENTIK_POSTGRESQL__SSLMODE="require",
             AUTHENTIK_POSTGRESQL__READ_REPLICAS__0__HOST="replica-a",
             AUTHENTIK_POSTGRESQL__READ_REPLICAS__1__HOST="replica-b",
             AUTHENTIK_POSTGRESQL__READ_REPLICAS__1__PORT="6432",
             AUTHENTIK_POSTGRESQL__READ_REPLICAS__1__USER="reader",
             AUTHENTIK_POSTGRESQL__READ_REPLICAS__1__CONN_MAX_AGE="null").postgresql
    a, b = pg.read_replicas
    assert (a.host, a.port, a.user, a.password, a.sslmode) == ("replica-a", 5432, "ak", "pw", "require")
    assert (b.host, b.port, b.user, b.conn_max_age) == ("replica-b", 6432, "reader", None)
    db = dbrouter.databases(pg)
    assert list(db) == ["default", "replica_0", "replica_1"]
    assert db["replica_1"]["PORT"] == 6432 and db["replica_1"]["NAME"] == "authentik"
    assert db["replica_0"]["TEST"] == {"MIRROR": "default"}
    assert "pw" not in repr(pg)


def test_replicas_are_numbered_not_ordered_by_text(tmp_path):
    env = {f"AUTHENTIK_POSTGRESQL__READ_REPLICAS__{n}__HOST": f"r{n}" for n in (10, 2)}
    assert [r.host for r in cfg(tmp_path, **PG, **env).postgresql.read_replicas] == ["r2", "r10"]


def test_bad_replica_variables_are_named(tmp_path):
    found = problems(tmp_path, **PG, AUTHENTIK_POSTGRESQL__READ_REPLICAS__X__HOST="r",
                     AUTHENTIK_POSTGRESQL__READ_REPLICAS__0__HOSTNAME="r",
                     AUTHENTIK_POSTGRESQL__READ_REPLICAS__1__PORT="five")
    assert len(found) == 3
    assert any("READ_REPLICAS__X__HOST" in p and "<n>" in p for p in found)
    assert any("READ_REPLICAS__0__HOSTNAME" in p and "HOST, PORT" in p for p in found)
    assert any("READ_REPLICAS__1__PORT='five'" in p for p in found)


def test_replicas_without_a_primary_are_refused(tmp_path):
    [problem] = problems(tmp_path, AUTHENTIK_POSTGRESQL__READ_REPLICAS__0__HOST="r")
    assert "AUTHENTIK_POSTGRESQL__HOST" in problem


def test_pgbouncer_transaction_pooling(tmp_path):
    pg = cfg(tmp_path, **PG, AUTHENTIK_POSTGRESQL__USE_PGBOUNCER="true").postgresql
    db = dbrouter.databases(pg)["default"]
    assert db["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert db["CONN_MAX_AGE"] is None  # persistent: PgBouncer holds the server connections
    assert db["OPTIONS"]["prepare_threshold"] is None  # no prepared statements through transaction pooling
    explicit = cfg(tmp_path, **PG, AUTHENTIK_POSTGRESQL__USE_PGBOUNCER="true", AUTHENTIK_POSTGRESQL__CONN_MAX_AGE="0",
                   AUTHENTIK_POSTGRESQL__CONN_HEALTH_CHECKS="false").postgresql
    assert (explicit.conn_max_age, explicit.conn_health_checks) == (0, False)


@pytest.mark.parametrize(("name", "value", "expect"), [
    ("AUTHENTIK_POSTGRESQL__USE_PGBOUNCER", "maybe", "true or false"),
    ("AUTHENTIK_POSTGRESQL__CONN_MAX_AGE", "-1", "null"),
    ("AUTHENTIK_POSTGRESQL__CONN_MAX_AGE", "forever", "null"),
    ("AUTHENTIK_POSTGRESQL__CONN_HEALTH_CHECKS", "sometimes", "true or false"),
    ("AUTHENTIK_POSTGRESQL__SSLMODE", "strict", "verify-full"),
    ("AUTHENTIK_POSTGRESQL__SSLROOTCERT", "/nonexistent/ca.pem", "PEM file"),
    ("AUTHENTIK_REDIS__TLS", "y", "true or false"),
    ("AUTHENTIK_REDIS__TLS_REQS", "strict", "none, optional, required"),
])
def test_bad_values_name_the_variable_and_the_fix(tmp_path, name, value, expect):
    env = {**PG, "AUTHENTIK_REDIS__HOST": "redis", name: value}
    [problem] = problems(tmp_path, **env)
    assert problem.startswith(name) and expect in problem


def test_client_certificate_needs_its_key(tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("x")
    [problem] = problems(tmp_path, **PG, AUTHENTIK_POSTGRESQL__SSLCERT=str(cert))
    assert "AUTHENTIK_POSTGRESQL__SSLKEY" in problem
    [problem] = problems(tmp_path, **PG, AUTHENTIK_POSTGRESQL__READ_REPLICAS__0__SSLKEY=str(cert))
    assert "AUTHENTIK_POSTGRESQL__READ_REPLICAS__0__SSLCERT" in problem


def test_ssl_files_reach_libpq(tmp_path):
    files = {}
    for name in ("ca", "cert", "key"):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_text("x")
    pg = cfg(tmp_path, **PG, AUTHENTIK_POSTGRESQL__SSLMODE="verify-full",
             AUTHENTIK_POSTGRESQL__SSLROOTCERT=str(files["ca"]), AUTHENTIK_POSTGRESQL__SSLCERT=str(files["cert"]),
             AUTHENTIK_POSTGRESQL__SSLKEY=str(files["key"])).postgresql
    assert dbrouter.databases(pg)["default"]["OPTIONS"] == {
        "sslmode": "verify-full", "connect_timeout": 10, "sslrootcert": str(files["ca"]),
        "sslcert": str(files["cert"]), "sslkey": str(files["key"])}


def test_redis_password_and_tls_urls(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    plain = cfg(tmp_path, AUTHENTIK_REDIS__HOST="redis", AUTHENTIK_REDIS__PASSWORD="p@ss:/word").redis
    assert plain.url == "redis://:p%40ss%3A%2Fword@redis:6379/0"
    assert "p@ss" not in repr(plain)
    tls = cfg(tmp_path, AUTHENTIK_REDIS__HOST="redis", AUTHENTIK_REDIS__USERNAME="default",
              AUTHENTIK_REDIS__PASSWORD="pw", AUTHENTIK_REDIS__TLS="true", AUTHENTIK_REDIS__TLS_CA_CERT=str(ca),
              AUTHENTIK_REDIS__DB="3").redis
    assert tls.url == f"rediss://default:pw@redis:6379/3?ssl_cert_reqs=required&ssl_ca_certs={str(ca).replace('/', '%2F')}"
    import redis

    kwargs = redis.connection.parse_url(tls.url)  # what redis-py and Django's RedisCache make of it
    assert kwargs["ssl_cert_reqs"] == "required" and kwargs["ssl_ca_certs"] == str(ca)
    assert kwargs["password"] == "pw" and kwargs["username"] == "default" and kwargs["db"] == 3
    none = cfg(tmp_path, AUTHENTIK_REDIS__HOST="redis", AUTHENTIK_REDIS__TLS="true",
               AUTHENTIK_REDIS__TLS_REQS="none").redis
    assert none.url == "rediss://redis:6379/0?ssl_cert_reqs=none"


def test_redis_ca_without_tls_is_refused(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    [problem] = problems(tmp_path, AUTHENTIK_REDIS__HOST="redis", AUTHENTIK_REDIS__TLS_CA_CERT=str(ca))
    assert "AUTHENTIK_REDIS__TLS=true" in problem


# --- the router, on its own -------------------------------------------------------------------------------

def model(label):
    return SimpleNamespace(_meta=SimpleNamespace(label_lower=label))


USER = model("authentik_core.user")


def test_router_without_replicas_is_the_primary():
    router = dbrouter.ReplicaRouter({"default": {}})
    token = dbrouter._pin.set(dbrouter._Pin())
    try:
        assert router.db_for_read(USER) == "default"
    finally:
        dbrouter._pin.reset(token)


def test_router_reads_replicas_until_the_request_writes(monkeypatch):
    from django.db import connections

    monkeypatch.setattr(connections["default"], "in_atomic_block", False)
    router = dbrouter.ReplicaRouter({"default": {}, "replica_0": {}, "replica_1": {}})
    assert router.db_for_read(USER) == "default"  # outside a request
    token = dbrouter._pin.set(dbrouter._Pin())
    try:
        assert {router.db_for_read(USER) for _ in range(50)} == {"replica_0", "replica_1"}
        assert router.db_for_read(model("sessions.session")) == "default"
        assert router.db_for_read(model("authentik_core.token")) == "default"
        monkeypatch.setattr(connections["default"], "in_atomic_block", True)
        assert router.db_for_read(USER) == "default"  # inside a transaction
        monkeypatch.setattr(connections["default"], "in_atomic_block", False)
        assert router.db_for_write(USER) == "default"
        assert router.db_for_read(USER) == "default"  # read-your-writes for the rest of the request
    finally:
        dbrouter._pin.reset(token)
    assert router.allow_migrate("replica_0", "authentik_core") is False
    assert router.allow_migrate("default", "authentik_core") is True


def test_redis_sentinel_url(tmp_path):
    url = "redis+sentinel://:pw@s1:26379,s2:26379/3?mastername=mymaster"
    config = cfg(tmp_path, AUTHENTIK_REDIS__URL=url).redis
    assert config.url == url and config.db == 3 and "pw" not in repr(config)
    assert config.target == "AUTHENTIK_REDIS__URL (Sentinel master 'mymaster' via s1:26379,s2:26379)"


def test_redis_sentinel_url_refused_with_the_variable(tmp_path):
    [problem] = problems(tmp_path, AUTHENTIK_REDIS__URL="redis+sentinel://s1:26379")
    assert problem.startswith("AUTHENTIK_REDIS__URL=") and "mastername" in problem
    [problem] = problems(tmp_path, AUTHENTIK_REDIS__URL="redis+sentinel://s1?mastername=m",
                         AUTHENTIK_REDIS__HOST="redis")
    assert "AUTHENTIK_REDIS__URL and AUTHENTIK_REDIS__HOST are both set" in problem


def test_redis_sentinel_reaches_djangos_cache(tmp_path):
    """Django's RedisCache splits a string LOCATION at commas (the sentinels' separator): a one-item list."""
    from django.core.cache.backends.redis import RedisCache
    from redis.sentinel import SentinelConnectionPool

    url = "redis+sentinel://s1:26379,s2:26379/3?mastername=mymaster"
    cache = RedisCache([url], {"OPTIONS": {"pool_class": "protocols.redis_url.SentinelPool"}})
    pool = cache._cache._get_connection_pool(write=True)
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "mymaster"


def test_no_master_is_said_shortly():
    from core import lifecycle
    from tests.support.server import free_port

    port = free_port()  # nothing listens there
    problem = lifecycle.redis_problem(f"redis+sentinel://:pw@127.0.0.1:{port}/0?mastername=m")
    assert problem == f"redis unreachable: no sentinel named a master that answers (Sentinel master 'm' via " \
                      f"127.0.0.1:{port})"
