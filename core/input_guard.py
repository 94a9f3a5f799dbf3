"""Refuse request input that no view can use, before any view runs, with a 400 that names it.

Two kinds, each a 500 with a traceback per request before (issue 8 item 11):

- NUL characters. PostgreSQL text cannot hold them: psycopg raises DataError at the first query
  that carries one (a username at the login flow, a filter in the REST API, a client_id at the
  token endpoint). No valid value contains one, so they are refused on every database alike, in
  the URL path, the query string, form bodies and JSON bodies.
- JSON nested deeper than ``MAX_JSON_DEPTH``. Python's parser raises RecursionError past about a
  thousand levels, and a document just under that breaks the serialisers that walk it later. The
  REST API, the flow executor and every other JSON consumer sit behind this one check.

``find_problem()`` decides over plain values; ``InputGuardMiddleware`` only translates its answer,
in the error format of the endpoint family (RFC 6749 §5.2 at the OAuth2 endpoints, ``{"detail"}``
in the REST API, text elsewhere). Multipart bodies (file uploads) are left to their handlers.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl

from django.http import HttpResponse, JsonResponse

LOGGER = logging.getLogger("gatehouse.input")
MAX_JSON_DEPTH = 64
NUL = "\x00"
FORM = "application/x-www-form-urlencoded"


def _nul_message(where: str, name: str = "") -> str:
    named = f" ({name[:64].replace(NUL, '')!r})" if name else ""
    return (f"the {where}{named} contains a NUL character (byte 0, %00); no valid value contains one "
            "and the database cannot store it: remove it")


def _pairs_problem(pairs: list[tuple[str, str]], where: str) -> str | None:
    for key, value in pairs:
        if NUL in key or NUL in value:
            return _nul_message(where, key)
    return None


def _json_problem(value, strings: bool) -> str | None:
    """Depth (and, when ``strings``, NULs) of a parsed JSON document, walked without recursion."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels; send a flatter document"
        if isinstance(node, dict):
            if strings and any(NUL in key for key in node):
                return _nul_message("JSON body", next(key for key in node if NUL in key))
            node = node.values()
        for item in node:
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))
            elif strings and isinstance(item, str) and NUL in item:
                return _nul_message("JSON body")
    return None


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def find_problem(path: str, query: str, content_type: str, body: bytes | None) -> str | None:
    """What is wrong with this input, for a person, or None. ``path`` is the decoded URL path,
    ``query`` the raw query string, ``content_type`` without parameters."""
    if NUL in path:
        return _nul_message("URL path")
    problem = _pairs_problem(parse_qsl(query, keep_blank_values=True), "query parameter") if query else None
    if problem or not body:
        return problem
    if content_type == FORM:
        return _pairs_problem(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True), "form field")
    if _is_json(content_type):
        try:
            document = json.loads(body)
        except RecursionError:
            return f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels; send a flatter document"
        except ValueError:
            return None  # not JSON at all: the view says so in its own words
        if not isinstance(document, (dict, list)):
            return _nul_message("JSON body") if isinstance(document, str) and NUL in document else None
        # A NUL can reach a decoded string only as the escape \u0000 (raw control characters are
        # invalid JSON), and nesting needs brackets: skip what the bytes already rule out.
        strings = b"\\u0000" in body
        if not strings and body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
            return None
        return _json_problem(document, strings)
    return None


def _oauth_description(message: str) -> str:
    """RFC 6749 §5.2: error_description holds %x20-21 / %x23-5B / %x5D-7E only."""
    return "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "?" for c in message)


def _answer(path: str, message: str) -> HttpResponse:
    if path.startswith("/application/o/"):
        return JsonResponse({"error": "invalid_request", "error_description": _oauth_description(message)},
                            status=400)
    if path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=400)
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


class InputGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        content_type = request.content_type or ""
        body = request.body if request.method in ("POST", "PUT", "PATCH", "DELETE") and (
            content_type == FORM or _is_json(content_type)) else None
        problem = find_problem(request.path, request.META.get("QUERY_STRING", ""), content_type, body)
        if problem is None:
            return self.get_response(request)
        LOGGER.info("request refused: %s", problem, extra={"path": request.path.replace(NUL, "\\x00")[:200]})
        return _answer(request.path, problem)
