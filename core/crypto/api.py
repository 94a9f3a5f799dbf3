"""REST API for certificate/key pairs (authentik ``authentik/crypto/api.py``: same path, fields and actions).

The PEM texts are write-only; the answer carries what authentik derives from them (fingerprints, expiry,
subject, key type). The private key is shown again only through ``view_private_key`` (a ``secret_view``
event), as authentik does. A managed pair (the OIDC default signing keys, core/oidc/keys.py) cannot be
deleted or edited: Gatehouse re-creates and relies on it.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID
from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.api.permissions import ScopedQuerysetMixin, ViewAccess
from core.crypto.models import CertificateKeyPair
from core.events.record import record

KEY_TYPES = ((rsa.RSAPublicKey, "rsa"), (ec.EllipticCurvePublicKey, "ec"), (dsa.DSAPublicKey, "dsa"),
             (ed25519.Ed25519PublicKey, "ed25519"), (ed448.Ed448PublicKey, "ed448"))
DOWNLOAD = OpenApiParameter("download", OpenApiTypes.BOOL, description="answer as a file download")
CERTIFICATE_DATA = inline_serializer("CertificateData", {"data": serializers.CharField()})


def load_certificate(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise ValidationError({"certificate_data": [f"not a PEM certificate ({exc}); paste the "
                                                    "-----BEGIN CERTIFICATE----- block"]}) from None


def parse_certificate(pair) -> x509.Certificate | None:
    """The pair's certificate, or None when its PEM does not parse (the API answers nulls, the admin says so)."""
    try:
        return x509.load_pem_x509_certificate(pair.certificate_data.encode())
    except ValueError:
        return None


def load_key(pem: str):
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValidationError({"key_data": [f"not an unencrypted PEM private key ({exc})"]}) from None


def _public_bytes(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class CertificateKeyPairSerializer(serializers.ModelSerializer):
    pk = serializers.UUIDField(source="kp_uuid", read_only=True)
    fingerprint_sha256 = serializers.SerializerMethodField()
    fingerprint_sha1 = serializers.SerializerMethodField()
    cert_expiry = serializers.SerializerMethodField()
    cert_subject = serializers.SerializerMethodField()
    private_key_available = serializers.SerializerMethodField()
    key_type = serializers.SerializerMethodField()
    certificate_download_url = serializers.SerializerMethodField()
    private_key_download_url = serializers.SerializerMethodField()
    certificate_data = serializers.CharField(write_only=True, trim_whitespace=False)
    key_data = serializers.CharField(write_only=True, required=False, allow_blank=True, allow_null=True,
                                     trim_whitespace=False)

    class Meta:
        model = CertificateKeyPair
        fields = ["pk", "name", "fingerprint_sha256", "fingerprint_sha1", "cert_expiry", "cert_subject",
                  "private_key_available", "key_type", "certificate_download_url", "private_key_download_url",
                  "managed", "certificate_data", "key_data"]
        read_only_fields = ["managed"]

    def _cert(self, pair) -> x509.Certificate | None:
        return parse_certificate(pair)

    def get_fingerprint_sha256(self, pair) -> str | None:
        cert = self._cert(pair)
        return cert.fingerprint(hashes.SHA256()).hex() if cert else None

    def get_fingerprint_sha1(self, pair) -> str | None:
        cert = self._cert(pair)
        return cert.fingerprint(hashes.SHA1()).hex() if cert else None  # noqa: S303 - a display fingerprint

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_cert_expiry(self, pair) -> str | None:
        cert = self._cert(pair)
        return serializers.DateTimeField().to_representation(cert.not_valid_after_utc) if cert else None

    def get_cert_subject(self, pair) -> str | None:
        cert = self._cert(pair)
        return cert.subject.rfc4514_string() if cert else None

    def get_private_key_available(self, pair) -> bool:
        return bool(pair.key_data)

    def get_key_type(self, pair) -> str | None:
        cert = self._cert(pair)
        key = cert.public_key() if cert else None
        return next((name for kind, name in KEY_TYPES if isinstance(key, kind)), None)

    def _url(self, pair, what: str) -> str:
        return f"/api/v3/crypto/certificatekeypairs/{pair.pk}/{what}/?download"

    def get_certificate_download_url(self, pair) -> str:
        return self._url(pair, "view_certificate")

    def get_private_key_download_url(self, pair) -> str:
        return self._url(pair, "view_private_key")

    def validate(self, attrs):
        if attrs.get("key_data", "") is None:
            attrs["key_data"] = ""  # authentik's client sends null for "no private key"
        if self.instance is not None and self.instance.managed:
            raise ValidationError({"managed": [f"certificate {self.instance.name!r} is managed by Gatehouse "
                                               f"({self.instance.managed}); create another pair instead"]})
        cert_pem = attrs.get("certificate_data", getattr(self.instance, "certificate_data", ""))
        key_pem = attrs.get("key_data", getattr(self.instance, "key_data", ""))
        cert = load_certificate(cert_pem)
        if key_pem:
            key = load_key(key_pem)
            if _public_bytes(key.public_key()) != _public_bytes(cert.public_key()):
                raise ValidationError({"key_data": ["this private key does not belong to the certificate"]})
        return attrs


class CertificateGenerationSerializer(serializers.Serializer):
    """authentik ``CertificateGenerationSerializer``: a self-signed pair made by the core."""

    common_name = serializers.CharField()
    subject_alt_name = serializers.CharField(required=False, allow_blank=True,
                                             help_text="comma-separated DNS names")
    validity_days = serializers.IntegerField(min_value=1, max_value=36500)
    alg = serializers.ChoiceField(choices=["rsa", "ecdsa", "ed25519", "ed448"], default="rsa")

    def validate_common_name(self, value):
        if CertificateKeyPair.objects.filter(name=value).exists():
            raise ValidationError(f"a certificate named {value!r} exists; pick another common name")
        return value


def generate(data: dict) -> tuple[str, str]:
    """(certificate PEM, key PEM) of a new self-signed pair."""
    key = {"rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
           "ecdsa": lambda: ec.generate_private_key(ec.SECP256R1()),
           "ed25519": ed25519.Ed25519PrivateKey.generate,
           "ed448": ed448.Ed448PrivateKey.generate}[data["alg"]]()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, data["common_name"])])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=data["validity_days"])))
    alt_names = [n.strip() for n in data.get("subject_alt_name", "").split(",") if n.strip()]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in alt_names]),
                                        critical=False)
    digest = None if data["alg"] in ("ed25519", "ed448") else hashes.SHA256()
    cert = builder.sign(key, digest)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


class CertificateKeyPairFilter(filters.FilterSet):
    has_key = filters.BooleanFilter(method="filter_has_key", help_text="only pairs with a private key")
    key_type = filters.MultipleChoiceFilter(method="filter_key_type", choices=[(n, n) for _k, n in KEY_TYPES])

    class Meta:
        model = CertificateKeyPair
        fields = ["name", "managed"]

    def filter_has_key(self, qs, name, value):
        return qs.exclude(key_data="") if value else qs.filter(key_data="")

    def filter_key_type(self, qs, name, value):
        # the type is in the PEM, not in a column: decided per pair (there are few)
        serializer = CertificateKeyPairSerializer()
        return qs.filter(pk__in=[p.pk for p in qs if serializer.get_key_type(p) in value])


class CertificateKeyPairViewSet(ScopedQuerysetMixin, viewsets.ModelViewSet):
    """Superusers manage every pair; an outpost reads the pairs its providers name (``certificate``), as
    authentik grants it view_certificatekeypair / view_certificate / view_private_key on them."""

    queryset = CertificateKeyPair.objects.all()
    serializer_class = CertificateKeyPairSerializer
    permission_classes = [ViewAccess]
    outpost_actions = {"list", "retrieve", "view_certificate", "view_private_key"}

    def scope_outpost(self, qs, outpost):
        from core.providers.ldap.models import LDAPProvider
        from core.providers.proxy.models import ProxyProvider
        from core.providers.radius.models import RadiusProvider

        named = set()
        for model in (LDAPProvider, ProxyProvider, RadiusProvider):
            named.update(model.objects.filter(outposts=outpost, certificate__isnull=False)
                         .values_list("certificate_id", flat=True))
        return qs.filter(pk__in=named)
    filterset_class = CertificateKeyPairFilter
    search_fields = ["name"]
    ordering_fields = ["name"]
    ordering = ["name"]

    def perform_destroy(self, instance):
        if instance.managed:
            raise ValidationError({"managed": [f"certificate {instance.name!r} is managed by Gatehouse "
                                               f"({instance.managed}) and cannot be deleted"]})
        instance.delete()

    def _pem(self, request, pair, text: str, suffix: str):
        if "download" in request.query_params:
            response = HttpResponse(text, content_type="application/x-pem-file")
            response["Content-Disposition"] = f'attachment; filename="{pair.name}_{suffix}.pem"'
            return response
        return Response({"data": text})

    @extend_schema(parameters=[DOWNLOAD], filters=False, responses=CERTIFICATE_DATA)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def view_certificate(self, request, pk=None):
        pair = self.get_object()
        record("secret_view", user=request.user, certificate=pair.name, what="certificate")
        return self._pem(request, pair, pair.certificate_data, "certificate")

    @extend_schema(parameters=[DOWNLOAD], filters=False, responses=CERTIFICATE_DATA)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def view_private_key(self, request, pk=None):
        pair = self.get_object()
        record("secret_view", user=request.user, certificate=pair.name, what="private key")
        return self._pem(request, pair, pair.key_data, "private_key")

    @extend_schema(request=CertificateGenerationSerializer, responses=CertificateKeyPairSerializer)
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def generate(self, request):
        body = CertificateGenerationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        cert_pem, key_pem = generate(body.validated_data)
        pair = CertificateKeyPair.objects.create(name=body.validated_data["common_name"], certificate_data=cert_pem,
                                                 key_data=key_pem)
        return Response(CertificateKeyPairSerializer(pair).data, status=status.HTTP_200_OK)
