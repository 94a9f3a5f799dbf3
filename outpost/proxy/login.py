"""The login's own answers (reference §2.3-2.5): the redirect into the core's authorize endpoint, the OIDC
callback that opens a session, and sign-out. The pipeline's table (outpost/proxy/pipeline.py) answers the
LOGIN_REDIRECT, HANDLE_CALLBACK and HANDLE_SIGN_OUT verdicts with them; /start, /callback and /sign_out
(outpost/proxy/forward_auth.py) call them directly."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from outpost.proxy import headers as hdr
from outpost.proxy import oauth
from outpost.proxy.apps import AppConfig
from outpost.proxy.session import Session, cookie_attributes, new_session_id, sign_cookie
from outpost.proxy.state import Authentication, ProxyOutpost
from protocols import forward as fw

LOGGER = logging.getLogger("gatehouse.outpost.proxy")
CATCH_UP_TIMEOUT = 3.0


def redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


def nameless(app: AppConfig) -> web.Response:
    """A login whose claims name no one: 500 and one log line naming the provider and the missing scope."""
    LOGGER.error("%s", hdr.missing_username(app))
    return text(500, "configuration error: the login carries no username")


def set_cookie(response: web.StreamResponse, app: AppConfig, session_id: str, max_age: int | None) -> None:
    response.set_cookie(app.cookie_name, sign_cookie(session_id, cookie_secret=app.cookie_secret,
                                                     client_id=app.client_id),
                        **cookie_attributes(secure=app.secure, cookie_domain=app.cookie_domain, max_age=max_age))


def clear_cookie(response: web.StreamResponse, app: AppConfig) -> None:
    response.del_cookie(app.cookie_name, path="/", domain=app.cookie_domain or None)


def start_login(app: AppConfig, auth: Authentication, target_url: str) -> web.Response:
    """302 into the core's authorize endpoint, the login bound to the browser's signed cookie.

    A browser with a live session keeps its cookie untouched (authentik's /start adds the login state to the
    session it has): a start link (a bookmark, a second tab, another site's link) never signs the user out;
    a login that completes replaces the session (``complete_login``), an abandoned one leaves it. Should the
    cookie (its Max-Age is the token's) expire before the login can come back, the same value is re-sent for
    STATE_TTL: the binding survives, and an expired session still counts for nothing (decide() reads its
    expiry). Any other browser keeps its pre-login id (or gets a new one) for STATE_TTL."""
    session = auth.session
    if auth.cookie_id and session is not None and not auth.header_auth and not session.expired():
        response = redirect(oauth.authorize_url(app, auth.cookie_id, target_url))
        if session.expires_at - time.time() < oauth.STATE_TTL:
            set_cookie(response, app, auth.cookie_id, oauth.STATE_TTL)
        return response
    prelogin = auth.cookie_id or new_session_id()
    response = redirect(oauth.authorize_url(app, prelogin, target_url))
    set_cookie(response, app, prelogin, oauth.STATE_TTL)
    return response


async def complete_login(outpost: ProxyOutpost, app: AppConfig, auth: Authentication,
                         query: dict[str, str]) -> web.StreamResponse:
    """The OIDC callback: redeem the code bound to this browser's pre-login id, open a fresh session."""
    try:
        state = oauth.parse_state(app, query.get("state"), auth.cookie_id)
        if outpost.http is None:
            raise oauth.OAuthError("no HTTP client configured", 500)
        tokens = await oauth.redeem(app, outpost.http, outpost.jwks, code=query.get("code"), state=state,
                                    prelogin_id=state.sid)
    except oauth.OAuthError as exc:
        LOGGER.warning("login callback refused for %s: %s", app.name, exc)
        return text(exc.status, "login failed; start again from the application" if exc.status == 400
                    else "identity provider error")
    session = Session(new_session_id(), app.client_id, tokens.claims, tokens.access_token, tokens.id_token,
                      expires_at=tokens.expires_at)  # a fresh id: the pre-login id is never promoted (THREATS 7)
    if not session.username:  # never stored: once the provider is fixed, the next attempt is a fresh login
        return nameless(app)
    await outpost.store.put(session)
    if auth.session is not None and not auth.header_auth:
        await outpost.store.delete(auth.session.id)  # the session this login replaces (/start while signed in)
    await _catch_up(outpost, app, session)
    try:
        target = fw.validate_redirect(state.redirect, app.external_host, cookie_domain=app.cookie_domain,
                                      domain_mode=app.domain_mode) if state.redirect else app.external_host
    except fw.RedirectRefused:
        target = app.external_host
    response = redirect(target)
    set_cookie(response, app, session.id, int(tokens.expires_at - time.time()))
    return response


async def _catch_up(outpost: ProxyOutpost, app: AppConfig, session: Session) -> None:
    """The core approved this login at /authorize, but the outpost's access lists may predate it (a user
    created or added to the group a moment ago): refetch once, bounded, so the first request after the login
    is decided on a configuration at least as new as the login. Only for subjects the lists don't allow, so
    a normal login costs nothing; the decision itself stays with the (refreshed) lists: fail closed."""
    access = app.access
    if access is None or access.allows(session.sub) or outpost.refresh is None:
        return
    try:
        await asyncio.wait_for(outpost.refresh(), CATCH_UP_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - the redirect goes out anyway; the next request decides
        LOGGER.warning("could not refresh the configuration after a login: %s", exc or type(exc).__name__)
    else:
        current = outpost.apps.by_client_id(app.client_id)
        if current is not None and current.access is not None and not current.access.allows(session.sub):
            LOGGER.info("login of %r accepted by the core, but %s's access lists do not allow it",
                        session.sub, app.name)


async def sign_out(outpost: ProxyOutpost, app: AppConfig, auth: Authentication) -> web.StreamResponse:
    """Always ends at the provider's end-session endpoint (the core's invalidation flow), with the
    id_token_hint when this browser has a session here. Without one authentik's outpost starts a new login,
    which succeeds silently while the core session lives: the user who clicked "sign out" stayed signed in."""
    session = auth.session
    if session is None or auth.header_auth:
        response = redirect(oauth.end_session_url(app, ""))
    else:
        await outpost.store.delete_by_sub(session.sub)
        await outpost.store.delete(session.id)
        response = redirect(oauth.end_session_url(app, session.id_token or session.raw_token))
    clear_cookie(response, app)
    return response
