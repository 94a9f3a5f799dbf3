"""Template helpers for the flow page and the portal: errors placed under their field, the TOTP
QR code as inline SVG with its secret as text, and a re-filled value after a failed submit.

The flow page renders authentik's challenge dicts (reference §5.1) as they are; these filters only
read them, so the view and the executor stay free of presentation.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django import template
from django.utils.safestring import mark_safe

register = template.Library()

# The challenge fields each component renders as an input; an error for any other key (for
# example ``non_field_errors``, or a hidden ``token``) is shown at the top of the card.
INPUT_FIELDS = {
    "ak-stage-identification": ("uid_field", "password"),
    "ak-stage-password": ("password",),
    "ak-stage-authenticator-validate": ("code",),
    "ak-stage-authenticator-totp": ("code",),
}


def _strings(errors) -> list[str]:
    return [str(e.get("string", e)) if isinstance(e, dict) else str(e) for e in errors or []]


def _input_keys(challenge: dict) -> set[str]:
    component = challenge.get("component", "")
    if component == "ak-stage-prompt":
        return {f.get("field_key") for f in challenge.get("fields") or []
                if f.get("type") not in ("static", "separator", "hidden")}
    return set(INPUT_FIELDS.get(component, ()))


@register.filter
def field_errors(challenge, key: str) -> list[str]:
    """The messages for the input named ``key`` (shown right under it)."""
    if not isinstance(challenge, dict):
        return []
    return _strings((challenge.get("response_errors") or {}).get(key))


@register.filter
def other_errors(challenge) -> list[str]:
    """Messages that belong to no visible input (shown at the top of the card)."""
    if not isinstance(challenge, dict):
        return []
    shown = _input_keys(challenge)
    return [s for key, errs in (challenge.get("response_errors") or {}).items() if key not in shown
            for s in _strings(errs)]


@register.filter
def posted(request, key: str) -> str:
    """The value the person just submitted for ``key`` (never used for password inputs)."""
    if request is None or getattr(request, "method", "") != "POST":
        return ""
    return request.POST.get(key, "")


@register.filter
def totp_secret(config_url: str) -> str:
    """The base32 ``secret`` of an otpauth:// URL, in groups of four for typing by hand."""
    secret = (parse_qs(urlsplit(config_url or "").query).get("secret") or [""])[0]
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


@register.filter
def qr_svg(data: str) -> str:
    """``data`` as an inline SVG QR code (segno). Safe to mark: segno emits only path geometry, the
    data itself never appears in the markup."""
    if not data:
        return ""
    import segno

    svg = segno.make(data, error="m").svg_inline(scale=1, omitsize=True, border=4, light="#fff", dark="#000",
                                                  svgclass="qr-code")
    return mark_safe(svg.replace("<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1))  # noqa: S308


@register.filter
def device_classes(challenges) -> set[str]:
    """The device classes offered by an ``ak-stage-authenticator-validate`` challenge."""
    return {d.get("device_class") for d in challenges or [] if isinstance(d, dict)}


@register.filter
def flow_title(challenge) -> str:
    """The flow's title. authentik titles authorization flows "Redirecting to %(app)s"; when the
    challenge arrives unformatted, the placeholder reads as "the application" rather than raw."""
    info = challenge.get("flow_info") if isinstance(challenge, dict) else None
    title = (info or {}).get("title") or "Gatehouse"
    return title.replace("%(app)s", "the application")
