"""AUTHENTIK_DEBUGGER=true starts debugpy, which runs any code a client sends: it listens where
AUTHENTIK_LISTEN__DEBUG_PY says, on loopback by default (authentik's own fallback), never on every address
unasked, and the log says where. Without debugpy, the hint installs the checkout's extra, never a package
named "gatehouse" from the index (issue 8, item 22)."""

import logging
import sys
import types

import pytest

from core.config import load
from core.server import StartupError, _start_debugger


@pytest.fixture
def fake_debugpy(monkeypatch):
    calls = []
    module = types.SimpleNamespace(listen=lambda address: calls.append(address))
    monkeypatch.setitem(sys.modules, "debugpy", module)
    return calls


def _config(tmp_path, **env):
    return load({"AUTHENTIK_DATA_DIR": str(tmp_path), "AUTHENTIK_DEBUGGER": "true", **env})


def test_listens_on_loopback_by_default_and_says_where(tmp_path, fake_debugpy, caplog):
    with caplog.at_level(logging.INFO, logger="gatehouse.server"):
        _start_debugger(_config(tmp_path))
    assert fake_debugpy == [("127.0.0.1", 9901)]
    record = next(r for r in caplog.records if r.getMessage().startswith("debugger listening"))
    assert record.address == "127.0.0.1:9901" and record.variable == "AUTHENTIK_LISTEN__DEBUG_PY"


def test_honours_authentik_listen_debug_py(tmp_path, fake_debugpy):
    _start_debugger(_config(tmp_path, AUTHENTIK_LISTEN__DEBUG_PY="0.0.0.0:5678"))
    assert fake_debugpy == [("0.0.0.0", 5678)]


def test_a_bad_address_is_a_configuration_error(tmp_path):
    with pytest.raises(Exception, match="AUTHENTIK_LISTEN__DEBUG_PY='nope'"):
        _config(tmp_path, AUTHENTIK_LISTEN__DEBUG_PY="nope")


def test_a_busy_port_stops_the_start_with_the_variable(tmp_path, monkeypatch):
    def busy(address):
        raise RuntimeError("Can't listen for client connections: [Errno 98] Address already in use")

    monkeypatch.setitem(sys.modules, "debugpy", types.SimpleNamespace(listen=busy))
    with pytest.raises(StartupError, match="AUTHENTIK_LISTEN__DEBUG_PY=127.0.0.1:9901"):
        _start_debugger(_config(tmp_path))


def test_missing_debugpy_hint_installs_the_checkout_extra(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "debugpy", None)  # import fails
    with caplog.at_level(logging.WARNING, logger="gatehouse.server"):
        _start_debugger(_config(tmp_path))
    text = caplog.text
    assert "pip install -e '.[debug]'" in text and "gatehouse[debug]" not in text
