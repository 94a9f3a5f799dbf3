"""Secrets never show in a repr (a log line, a traceback's locals, a failed assertion): every dataclass field that
holds one is ``field(repr=False)``, in outpost/, protocols/ and core/ (issue 11)."""

import ast
import re
from pathlib import Path

from outpost.config import load
from outpost.proxy.apps import AppConfig
from outpost.proxy.header_auth import parse_authorization
from outpost.proxy.oauth import State, Tokens
from outpost.proxy.session import Session
from protocols.outpost import AuthRequest
from tests.support.server import REPO

from .proxy.conftest import provider_json

SECRET_FIELD = re.compile(r"secret|password$|(^|_)token$|nonce$|cookie_id$|private_key")


def dataclass_fields(path: Path):
    """(class, field name, source) of every annotated field of a @dataclass in ``path``."""
    source = path.read_text()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        decorators = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
        if not any(getattr(d, "id", getattr(d, "attr", None)) == "dataclass" for d in decorators):
            continue
        for statement in node.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                yield node.name, statement.target.id, ast.get_source_segment(source, statement) or ""


def test_every_secret_field_is_out_of_repr():
    found = []
    for top in ("outpost", "protocols", "core"):
        for path in sorted((REPO / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for cls, name, source in dataclass_fields(path):
                if SECRET_FIELD.search(name) and "repr=False" not in source:
                    found.append(f"{path.relative_to(REPO)}: {cls}.{name}")
    assert not found, "give these fields field(repr=False):\n" + "\n".join(found)


def test_reprs_hold_no_secret():
    config = load({"AUTHENTIK_HOST": "https://auth.example.com", "AUTHENTIK_TOKEN": "outpost-token-1",
                   "AUTHENTIK_REDIS__HOST": "redis", "AUTHENTIK_REDIS__PASSWORD": "redis-password-2"})
    app = AppConfig.from_json(provider_json(client_secret="client-secret-3", cookie_secret="cookie-secret-4"),
                              outpost_name="t")
    session = Session("session-id-5", "client", {"sub": "u"}, raw_token="access-token-6", id_token="id-token-7")
    state = State("prelogin-id-8", "https://app/", "nonce-9", "state-10", 0)
    tokens = Tokens({"sub": "u"}, "access-token-11", "id-token-12", 0.0)
    bearer, basic = parse_authorization("Bearer bearer-13"), parse_authorization("Basic dXNlcjpiYXNpYy0xNA==")
    ask = AuthRequest("user", "ldap-password-15", "10.0.0.1")
    text = " ".join(repr(o) for o in (config, app, session, state, tokens, bearer, basic, ask))
    for secret in ("outpost-token-1", "redis-password-2", "client-secret-3", "cookie-secret-4", "session-id-5",
                   "access-token-6", "id-token-7", "prelogin-id-8", "nonce-9", "state-10", "access-token-11",
                   "id-token-12", "bearer-13", "basic-14", "ldap-password-15"):
        assert secret not in text, secret
    assert "auth.example.com" in text and "user" in text  # the rest is still there
