"""The admin's Redirect URIs field: one URI per line, as people paste them (seed 001: "Redirect URIs:
https://grafana.example.com/login/generic_oauth"), stored as the API's ``[{"matching_mode", "url"}]``.

authentik's form shows each redirect URI as a row with a matching mode ("Strict" by default, or "Regex") beside
its URL. Here the mode is written on the line: a plain line is strict (compared exactly), a line that starts with
``regex:`` is a regular expression (``regex:https://.*\\.example\\.com/callback``). A value that starts with
``[`` is read as the API's JSON list, as before. Each line is checked by the API's own check
(core/oidc/api.py ``validate_redirect_uris``), and an error names the line.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django import forms
from rest_framework.exceptions import ValidationError as APIValidationError

REGEX_PREFIX = "regex:"
HELP = ("One redirect URI per line, compared exactly (authentik's \"Strict\" matching mode). To match a pattern, "
        "start the line with regex: (e.g. regex:https://.*\\.example\\.com/oauth/callback).")


def to_lines(value) -> str:
    """The stored list, one URI per line (regex entries with their ``regex:`` prefix)."""
    if isinstance(value, str):
        return value
    lines = []
    for entry in value or []:
        if isinstance(entry, dict):
            prefix = REGEX_PREFIX if entry.get("matching_mode") == "regex" else ""
            lines.append(f"{prefix}{entry.get('url', '')}")
    return "\n".join(lines)


def _entry(number: int, line: str) -> dict:
    if line.lower().startswith(REGEX_PREFIX):
        return {"matching_mode": "regex", "url": line[len(REGEX_PREFIX):].strip()}
    if any(c.isspace() for c in line) or not urlsplit(line).scheme:
        raise forms.ValidationError(f"line {number}: {line!r} is not a URI (it needs a scheme such as https:// and "
                                    "no spaces); write one URI per line, e.g. https://grafana.example.com/login/"
                                    "generic_oauth, or start the line with regex: for a pattern")
    return {"matching_mode": "strict", "url": line}


def from_lines(text: str) -> list[dict]:
    """``[{"matching_mode", "url"}]`` from the field's text; ValidationError naming the bad line."""
    from core.oidc.api import validate_redirect_uris

    text = (text or "").strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"the value starts with [ but is not JSON ({exc.msg} at line {exc.lineno}): "
                                        "write one URI per line instead, or a JSON list like "
                                        '[{"matching_mode": "strict", "url": "https://..."}]') from None
        try:
            return validate_redirect_uris(value)
        except APIValidationError as exc:
            raise forms.ValidationError([str(m) for m in exc.detail]) from None
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        entry = _entry(number, line)
        try:
            validate_redirect_uris([entry])  # the API's check (a regex must compile), line by line
        except APIValidationError as exc:
            message = "; ".join(str(m).removeprefix("entry 0: ") for m in exc.detail)
            raise forms.ValidationError(f"line {number}: {message}") from None
        entries.append(entry)
    return entries


class RedirectURIsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3, "cols": 80, "spellcheck": "false"})

    def __init__(self, **kwargs):
        for name in ("encoder", "decoder", "max_length"):  # the model's JSONField passes these
            kwargs.pop(name, None)
        kwargs.setdefault("help_text", HELP)
        kwargs.setdefault("label", "Redirect URIs")
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return to_lines(value)  # what was typed (a str) is shown again as it was

    def to_python(self, value):
        return from_lines(super().to_python(value))

    def has_changed(self, initial, data):
        try:
            return from_lines(data or "") != (initial or [])
        except forms.ValidationError:
            return True
