"""Certificates in the admin (authentik: System -> Certificates): each pair with its expiry, subject and
fingerprints, read from the PEM with the API's own functions (core/crypto/api.py). The private key is never
shown: its field is always empty, and left empty on a change it keeps the stored key. A managed pair (the OIDC
signing keys Gatehouse re-creates) is read-only, as in the API."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from django import forms
from django.contrib import admin
from rest_framework.exceptions import ValidationError as APIValidationError

from core.crypto.api import _public_bytes, load_certificate, load_key, parse_certificate
from core.crypto.models import CertificateKeyPair


class CertificateKeyPairForm(forms.ModelForm):
    key_data = forms.CharField(
        required=False, strip=False, label="Private key",
        widget=forms.Textarea(attrs={"rows": 6, "autocomplete": "off", "placeholder": "-----BEGIN PRIVATE KEY-----"}),
        help_text="PEM, unencrypted. Never shown again; on a change, leave it empty to keep the current key.")

    class Meta:
        model = CertificateKeyPair
        fields = ("name", "certificate_data", "key_data")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["key_data"] = ""  # never sent to the browser

    def clean(self):
        data = super().clean()
        cert_pem = data.get("certificate_data") or ""
        key_pem = data.get("key_data") or self.instance.key_data or ""
        try:
            cert = load_certificate(cert_pem)
            if key_pem:
                key = load_key(key_pem)
                if _public_bytes(key.public_key()) != _public_bytes(cert.public_key()):
                    self.add_error("key_data", "this private key does not belong to the certificate")
        except APIValidationError as exc:  # the API's messages, by field
            for field, messages in exc.detail.items():
                self.add_error(field, [str(m) for m in messages])
        data["key_data"] = key_pem
        return data


@admin.register(CertificateKeyPair)
class CertificateKeyPairAdmin(admin.ModelAdmin):
    form = CertificateKeyPairForm
    list_display = ("name", "expiry", "subject", "private_key", "managed")
    search_fields = ("name",)
    readonly_fields = ("expiry", "subject", "fingerprint_sha256", "fingerprint_sha1", "private_key", "managed")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "certificate_data", "key_data")
        if obj.managed:  # the view-only page shows every field's value: never the key's
            return ("name", "certificate_data", *self.readonly_fields)
        return ("name", "certificate_data", "key_data", *self.readonly_fields)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and not (obj is not None and obj.managed)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not (obj is not None and obj.managed)

    @admin.display(description="Expiry")
    def expiry(self, pair) -> str:
        cert = parse_certificate(pair)
        return f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC" if cert else "not a valid certificate"

    @admin.display(description="Subject")
    def subject(self, pair) -> str:
        cert = parse_certificate(pair)
        return cert.subject.rfc4514_string() if cert else "-"

    @admin.display(description="Fingerprint (SHA256)")
    def fingerprint_sha256(self, pair) -> str:
        cert = parse_certificate(pair)
        return cert.fingerprint(hashes.SHA256()).hex(":") if cert else "-"

    @admin.display(description="Fingerprint (SHA1)")
    def fingerprint_sha1(self, pair) -> str:
        cert = parse_certificate(pair)
        return cert.fingerprint(hashes.SHA1()).hex(":") if cert else "-"  # noqa: S303 - a display fingerprint

    @admin.display(description="Private key", boolean=True)
    def private_key(self, pair) -> bool:
        return bool(pair.key_data)
