"""drf-spectacular pieces: the Bearer security scheme and the enum names of our choice sets.

Imported by core/api/urls.py so the extension is registered before any schema is generated.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

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
