"""Standalone outpost configuration (outpost/config.py) and the ``ak outpost`` command line."""

import subprocess
import sys

import pytest

from outpost.config import Listen, OutpostConfigError, load
from tests.support.server import REPO

BASE = {"AUTHENTIK_HOST": "https://auth.example.com", "AUTHENTIK_TOKEN": "tok-123"}


def test_minimal_configuration_and_authentik_defaults():
    config = load(BASE)
    assert config.authentik_host == "https://auth.example.com/" and config.token == "tok-123"
    assert not config.insecure and config.host_browser == "" and config.log_level == "info"
    assert (config.listen_http, config.listen_https, config.listen_metrics) == (
        Listen("0.0.0.0", 9000), Listen("0.0.0.0", 9443), Listen("0.0.0.0", 9300))
    assert (config.listen_ldap, config.listen_ldaps, config.listen_radius) == (
        Listen("0.0.0.0", 3389), Listen("0.0.0.0", 6636), Listen("0.0.0.0", 1812))
    assert config.redis_url is None and len(config.trusted_proxy_cidrs) == 6


def test_every_variable_is_read():
    config = load({**BASE, "AUTHENTIK_HOST": "http://core:9000/sub/path", "AUTHENTIK_INSECURE": "true",
                   "AUTHENTIK_HOST_BROWSER": "https://login.example.com", "AUTHENTIK_LOG_LEVEL": "DEBUG",
                   "AUTHENTIK_LISTEN__HTTP": "127.0.0.1:19000", "AUTHENTIK_LISTEN__HTTPS": "[::1]:19443",
                   "AUTHENTIK_LISTEN__METRICS": ":19300", "AUTHENTIK_LISTEN__LDAP": "127.0.0.1:13389",
                   "AUTHENTIK_LISTEN__LDAPS": "127.0.0.1:16636", "AUTHENTIK_LISTEN__RADIUS": "127.0.0.1:11812",
                   "AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS": "10.0.0.0/8", "AUTHENTIK_REDIS__HOST": "redis",
                   "AUTHENTIK_REDIS__PASSWORD": "pw", "AUTHENTIK_REDIS__DB": "2"})
    assert config.authentik_host == "http://core:9000/sub/path/" and config.insecure
    assert config.host_browser == "https://login.example.com" and config.log_level == "debug"
    assert config.listen_http == Listen("127.0.0.1", 19000) and config.listen_https == Listen("::1", 19443)
    assert config.listen_metrics == Listen("0.0.0.0", 19300) and config.listen_radius.port == 11812
    assert config.listen_ldap.port == 13389 and config.listen_ldaps.port == 16636
    assert [str(n) for n in config.trusted_proxy_cidrs] == ["10.0.0.0/8"]
    assert config.redis_url == "redis://:pw@redis:6379/2"


def test_tls_cert_file_must_load(tmp_path):
    from protocols import tls

    good = tmp_path / "good.pem"
    good.write_bytes(tls.self_signed_pem(("localhost",)))
    assert load({**BASE, "AUTHENTIK_PROXY__TLS_CERT_FILE": str(good)}).tls_cert_file == str(good)
    assert load(BASE).tls_cert_file == ""
    assert load({**BASE, "AUTHENTIK_LDAP__TLS_CERT_FILE": str(good)}).ldap_tls_cert_file == str(good)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    for variable in ("AUTHENTIK_PROXY__TLS_CERT_FILE", "AUTHENTIK_LDAP__TLS_CERT_FILE"):
        for path in (bad, tmp_path / "missing.pem"):
            with pytest.raises(OutpostConfigError) as info:
                load({**BASE, variable: str(path)})
            assert info.value.problems == [info.value.problems[0]]
            assert f"{variable}='{path}'" in info.value.problems[0]
            assert "one PEM file with the certificate and its private key" in info.value.problems[0]


def test_all_errors_are_reported_at_once_naming_each_variable():
    with pytest.raises(OutpostConfigError) as info:
        load({"AUTHENTIK_HOST": "ftp://core", "AUTHENTIK_INSECURE": "maybe", "AUTHENTIK_LOG_LEVEL": "loud",
              "AUTHENTIK_HOST_BROWSER": "login.example.com", "AUTHENTIK_LISTEN__HTTP": "nope",
              "AUTHENTIK_LISTEN__METRICS": "1.2.3.4:99999", "AUTHENTIK_LISTEN__RADIUS": "300.1.1.1:1812",
              "AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS": "10.0.0.0/8,bogus", "AUTHENTIK_REDIS__HOST": "r",
              "AUTHENTIK_REDIS__PORT": "x"})
    problems = info.value.problems
    for variable in ("AUTHENTIK_HOST=", "AUTHENTIK_TOKEN", "AUTHENTIK_INSECURE", "AUTHENTIK_LOG_LEVEL",
                     "AUTHENTIK_HOST_BROWSER", "AUTHENTIK_LISTEN__HTTP", "AUTHENTIK_LISTEN__METRICS",
                     "AUTHENTIK_LISTEN__RADIUS", "AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS", "AUTHENTIK_REDIS__PORT"):
        assert sum(variable in p for p in problems) == 1, (variable, problems)
    assert len(problems) == 10


@pytest.mark.parametrize("host", ["", "core:9000", "https://", "http://host:notaport/", "unix:///tmp/s"])
def test_bad_hosts(host):
    with pytest.raises(OutpostConfigError, match="AUTHENTIK_HOST"):
        load({**BASE, "AUTHENTIK_HOST": host})


def test_token_never_in_repr_or_errors():
    assert "tok-123" not in repr(load(BASE))
    with pytest.raises(OutpostConfigError) as info:
        load({**BASE, "AUTHENTIK_TOKEN": "abc def", "AUTHENTIK_LOG_LEVEL": "x"})
    assert "abc def" not in str(info.value)


def test_config_is_frozen():
    config = load(BASE)
    with pytest.raises(AttributeError):
        config.token = "x"


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "outpost", *args], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **(env or {})}, timeout=60)


def test_cli_config_errors_exit_2_with_one_message():
    result = run_cli("proxy", env={"AUTHENTIK_HOST": "nope"})
    assert result.returncode == 2
    assert "AUTHENTIK_HOST='nope'" in result.stderr and "AUTHENTIK_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_workers_are_checked():
    result = run_cli("proxy", "--workers", "2", env=BASE)
    assert result.returncode == 2 and "AUTHENTIK_REDIS__HOST" in result.stderr
    result = run_cli("proxy", "--workers", "0", env=BASE)
    assert result.returncode == 2 and "--workers 0" in result.stderr


def test_cli_unknown_kind_is_a_usage_error():
    result = run_cli("rac", env=BASE)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_ak_outpost_dispatches_to_the_outpost_cli():
    result = subprocess.run([sys.executable, "-m", "core.cli", "outpost", "proxy"], cwd=REPO, capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 2 and "AUTHENTIK_HOST is not set" in result.stderr


def test_redis_tls_as_the_core(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    config = load({**BASE, "AUTHENTIK_REDIS__HOST": "redis", "AUTHENTIK_REDIS__USERNAME": "default",
                   "AUTHENTIK_REDIS__PASSWORD": "p@ss", "AUTHENTIK_REDIS__TLS": "true",
                   "AUTHENTIK_REDIS__TLS_CA_CERT": str(ca)})
    assert config.redis_url == (f"rediss://default:p%40ss@redis:6379/0?ssl_cert_reqs=required&ssl_ca_certs="
                                f"{str(ca).replace('/', '%2F')}")
    with pytest.raises(OutpostConfigError) as err:
        load({**BASE, "AUTHENTIK_REDIS__HOST": "redis", "AUTHENTIK_REDIS__TLS": "true",
              "AUTHENTIK_REDIS__TLS_REQS": "strict", "AUTHENTIK_REDIS__TLS_CA_CERT": "/nonexistent.pem"})
    assert "AUTHENTIK_REDIS__TLS_REQS" in str(err.value) and "AUTHENTIK_REDIS__TLS_CA_CERT" in str(err.value)


def test_redis_sentinel_url_as_the_core():
    url = "redis+sentinel://s1:26379,s2:26379/1?mastername=mymaster"
    assert load({**BASE, "AUTHENTIK_REDIS__URL": url}).redis_url == url
    with pytest.raises(OutpostConfigError, match="AUTHENTIK_REDIS__URL=.*no mastername"):
        load({**BASE, "AUTHENTIK_REDIS__URL": "redis+sentinel://s1"})
    with pytest.raises(OutpostConfigError, match="both set"):
        load({**BASE, "AUTHENTIK_REDIS__URL": url, "AUTHENTIK_REDIS__HOST": "redis"})
