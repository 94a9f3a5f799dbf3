import pytest

from core.config import ConfigError, load


def test_defaults_are_embedded(tmp_path):
    cfg = load({"AUTHENTIK_DATA_DIR": str(tmp_path)})
    assert cfg.postgresql is None and cfg.redis is None
    assert cfg.listen_http.port == 9000 and cfg.listen_https.port == 9443 and cfg.listen_metrics.port == 9300
    assert (tmp_path / "secret_key").exists()
    assert load({"AUTHENTIK_DATA_DIR": str(tmp_path)}).secret_key == cfg.secret_key  # generated once


def test_every_bad_value_is_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as err:
        load({"AUTHENTIK_DATA_DIR": str(tmp_path), "AUTHENTIK_LOG_LEVEL": "loud",
              "AUTHENTIK_POSTGRESQL__HOST": "db", "AUTHENTIK_POSTGRESQL__PORT": "five",
              "AUTHENTIK_LISTEN__HTTP": "nope", "AUTHENTIK_DEBUGGER": "maybe"})
    text = str(err.value)
    for name in ("AUTHENTIK_LOG_LEVEL", "AUTHENTIK_POSTGRESQL__PORT", "AUTHENTIK_LISTEN__HTTP", "AUTHENTIK_DEBUGGER"):
        assert name in text
    assert len(err.value.problems) == 4


def test_backends_from_authentik_names(tmp_path):
    cfg = load({"AUTHENTIK_DATA_DIR": str(tmp_path), "AUTHENTIK_SECRET_KEY": "k" * 40,
                "AUTHENTIK_POSTGRESQL__HOST": "pg", "AUTHENTIK_POSTGRESQL__USER": "u",
                "AUTHENTIK_REDIS__HOST": "r", "AUTHENTIK_REDIS__DB": "2",
                "AUTHENTIK_LISTEN__HTTP": "[::1]:9100", "AUTHENTIK_ERROR_REPORTING__ENABLED": "false"})
    assert cfg.postgresql.host == "pg" and cfg.postgresql.port == 5432 and cfg.postgresql.user == "u"
    assert cfg.redis.url == "redis://r:6379/2"
    assert str(cfg.listen_http) == "[::1]:9100"
    assert "k" * 40 not in repr(cfg)  # secrets never in logs


def test_web_threads(tmp_path):
    assert load({"AUTHENTIK_DATA_DIR": str(tmp_path)}).web_threads == 4
    assert load({"AUTHENTIK_DATA_DIR": str(tmp_path), "AUTHENTIK_WEB__THREADS": "8"}).web_threads == 8
    with pytest.raises(ConfigError) as err:
        load({"AUTHENTIK_DATA_DIR": str(tmp_path), "AUTHENTIK_WEB__THREADS": "0"})
    assert "AUTHENTIK_WEB__THREADS" in str(err.value)
