"""drf-spectacular pieces: the Bearer security scheme and the enum names of our choice sets.

Imported by core/api/urls.py so the extension is registered before any schema is generated.
"""

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import force_instance

LDAP_MODES = [("direct", "Direct"), ("cached", "Cached")]

# Choice sets that share a field name ("type") or values (search_mode/bind_mode) get stable names.
CUSTOM_SETTINGS = {
    "ENUM_NAME_OVERRIDES": {
        "UserTypeEnum": "core.accounts.models.UserTypes",
        "OutpostTypeEnum": "core.outposts.models.OutpostType",
        "LDAPAPIAccessMode": LDAP_MODES,
    },
}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.authentication.BearerTokenAuthentication"
    name = "authentik"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API token key>"}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, except that an answer's fields are all required, as authentik's schema says.

    A serializer renders every field it has (a null where there is no value), so the answer always carries
    them; drf-spectacular marks only the fields a request must send. The exception is a field declared
    ``required=False`` on a read-only field (``Token.key``: only in the answer that created the token).
    """

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction != "response":
            return schema
        serializer = force_instance(serializer)
        optional = {name for name, field in serializer.fields.items()
                    if field.read_only and getattr(field, "_kwargs", {}).get("required") is False}
        required = [name for name in schema.get("properties", {}) if name not in optional]
        if required:
            schema["required"] = required
        return schema
