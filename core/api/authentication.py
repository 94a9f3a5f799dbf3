"""``Authorization: Bearer <token key>`` for the REST API (authentik ``authentik/api/authentication.py``).

Keys are looked up by sha256 (``Token.authenticate``), so a lookup leaks nothing about near misses.
A request without the header falls through to the session cookie; a request WITH a header that does
not name a live API token is refused outright (403), never treated as anonymous.
"""

from __future__ import annotations

import logging

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from core.accounts.models import Token, TokenIntents

LOGGER = logging.getLogger("gatehouse.api")


class InvalidToken(exceptions.PermissionDenied):
    """403, as authentik answers a bad bearer token (a 401 would invite a browser login prompt)."""

    default_code = "invalid_token"


class BearerTokenAuthentication(BaseAuthentication):
    keyword = "bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword.encode():
            if header[0].lower() == b"basic":
                return None  # not ours; another authenticator may want it
            raise InvalidToken("Authorization header must be 'Bearer <token key>'")
        if len(header) != 2:
            raise InvalidToken("Authorization header must be 'Bearer <token key>' with one key and no spaces in it")
        try:
            key = header[1].decode()
        except UnicodeDecodeError:
            raise InvalidToken("token key is not valid UTF-8: copy the key again from the token's view_key") from None
        token = Token.authenticate(key, (TokenIntents.INTENT_API,))
        # The token's identifier names it; its key never appears in a log line.
        LOGGER.debug("API token " + ("accepted" if token else "refused"), extra={
            "path": request.path, **({"token": token.identifier, "user": token.user.username} if token else {})})
        if token is None:
            raise InvalidToken("token invalid, expired, not an API token, or its user is inactive: "
                               "create a new token with intent 'api' (or renew this one) and use its key")
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="authentik"'
