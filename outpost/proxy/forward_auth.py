"""aiohttp handlers: forward auth for each flavour, /start, /callback, /sign_out (DESIGN.md §2, reference §2.3-2.5).

Thin: forward auth is the pipeline's (outpost/proxy/pipeline.py: parse, authenticate, decide, respond);
/start, /callback and /sign_out find the application by their Host and call the login's answers
(outpost/proxy/login.py) with the cookie's session (never the Authorization header's).
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from aiohttp import web

from outpost.proxy import login, pipeline
from outpost.proxy.apps import AppConfig, UnknownHost, no_app_body
from outpost.proxy.state import OUTPOST_KEY, ProxyOutpost
from protocols import forward as fw

__all__ = ["OUTPOST_KEY", "ProxyOutpost", "callback", "forward_auth", "sign_out", "start"]

LOGGER = logging.getLogger("gatehouse.outpost.proxy")


async def forward_auth(request: web.Request) -> web.StreamResponse:
    """``/outpost.goauthentik.io/auth/{traefik,caddy,nginx,envoy...}``."""
    return await pipeline.forward_auth(request.app[OUTPOST_KEY], request, request.match_info["flavour"])


def _direct_app(request: web.Request) -> AppConfig:
    """The application for a request made directly to /outpost.goauthentik.io/* (by its Host header). Raises
    pipeline.Refused."""
    outpost = request.app[OUTPOST_KEY]
    pipeline.require_configuration(outpost)
    scheme = "https" if request.secure else "http"
    for candidate in (scheme, "https" if scheme == "http" else "http"):
        try:
            return outpost.apps.lookup(request.host, candidate)
        except UnknownHost:
            continue
    raise pipeline.Refused(400, json=no_app_body(request.host))


def start_rd(raw_query: str) -> str | None:
    """The ``rd`` of a /start request. nginx's error_page recipe (configs/nginx, authentik's docs) appends the
    original URL unencoded: ``/start?rd=http://app/x?a=1&b=2``, so a plain query parse would cut it at the
    first ``&`` and lose ``b=2`` after login. A raw absolute URL as the first parameter is therefore taken
    whole (everything after ``rd=``); an encoded one (``rd=https%3A...``) or a later ``rd`` is parsed as usual.
    validate_redirect() still decides whether it may be used."""
    if raw_query.startswith(("rd=http://", "rd=https://")):
        return raw_query[len("rd="):]
    values = [v for k, v in parse_qsl(raw_query, keep_blank_values=True) if k == "rd"]
    return values[0] if values else None


async def start(request: web.Request) -> web.StreamResponse:
    """``/outpost.goauthentik.io/start?rd=...``: ``rd`` is used only if it passes validate_redirect."""
    try:
        app = _direct_app(request)
    except pipeline.Refused as refused:
        return refused.answer()
    redirect = app.external_host
    rd = start_rd(request.rel_url.raw_query_string)
    if rd:
        try:
            redirect = fw.validate_redirect(rd, app.external_host, cookie_domain=app.cookie_domain,
                                            domain_mode=app.domain_mode)
        except fw.RedirectRefused as exc:
            LOGGER.info("rd refused for %s: %s", app.name, exc)
    auth = await pipeline.authenticate(request.app[OUTPOST_KEY], app, request, use_header=False)
    return login.start_login(app, auth, redirect)


async def callback(request: web.Request) -> web.StreamResponse:
    try:
        app = _direct_app(request)
    except pipeline.Refused as refused:
        return refused.answer()
    outpost = request.app[OUTPOST_KEY]
    auth = await pipeline.authenticate(outpost, app, request, use_header=False)
    return await login.complete_login(outpost, app, auth, dict(request.query))


async def sign_out(request: web.Request) -> web.StreamResponse:
    try:
        app = _direct_app(request)
    except pipeline.Refused as refused:
        return refused.answer()
    outpost = request.app[OUTPOST_KEY]
    auth = await pipeline.authenticate(outpost, app, request, use_header=False)
    return await login.sign_out(outpost, app, auth)
