"""PKCE (RFC 7636) with S256 only: ``plain`` is refused (Security BCP §2.1.1), public clients must
send a challenge at the authorization endpoint, and a code issued with a challenge is never redeemed
without the matching verifier (authlib's CodeChallenge checks that at the token endpoint)."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge


class S256CodeChallenge(CodeChallenge):
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if challenge and method != "S256":
            raise InvalidRequestError(f"code_challenge_method {method or 'plain (the default)'!r} is not "
                                      "allowed: send code_challenge_method=S256")
        if not challenge and grant.request.client.is_public:
            raise InvalidRequestError("public clients must use PKCE: send code_challenge and "
                                      "code_challenge_method=S256")
        return super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge_method(self, authorization_code):
        # Only S256 codes are ever stored; never fall back to plain for a stored code.
        return "S256"
