"""``/api/v3/``: authentik's REST paths (router below), the OpenAPI schema, and /root/config/.

The flow executor (``/api/v3/flows/executor/``) is mounted before this module by core/urls.py.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny
from rest_framework.routers import DefaultRouter

from core.accounts.api import ApplicationViewSet, GroupViewSet, ProviderViewSet, UserViewSet
from core.accounts.api_sessions import AuthenticatedSessionViewSet
from core.accounts.api_tokens import TokenViewSet
from core.api.root import ConfigView
from core.api.schema import CUSTOM_SETTINGS
from core.crypto.api import CertificateKeyPairViewSet
from core.events.api import EventViewSet
from core.flows.api import FlowStageBindingViewSet, FlowViewSet, StageViewSet
from core.oidc.api import OAuth2ProviderViewSet, ScopeMappingViewSet
from core.outposts.api import OutpostViewSet
from core.policies.api import (
    ExpressionPolicyViewSet,
    PasswordPolicyViewSet,
    PolicyBindingViewSet,
    PolicyViewSet,
    ReputationPolicyViewSet,
)
from core.providers.ldap.api import LDAPOutpostConfigViewSet, LDAPProviderViewSet
from core.providers.proxy.api import ProxyOutpostConfigViewSet, ProxyProviderViewSet
from core.providers.radius.api import (
    RadiusOutpostConfigViewSet,
    RadiusProviderPropertyMappingViewSet,
    RadiusProviderViewSet,
)


class Router(DefaultRouter):
    include_root_view = False
    include_format_suffixes = False


router = Router()
router.register("core/users", UserViewSet, basename="user")
router.register("core/groups", GroupViewSet, basename="group")
router.register("core/applications", ApplicationViewSet, basename="application")
router.register("core/tokens", TokenViewSet, basename="token")
router.register("core/authenticated_sessions", AuthenticatedSessionViewSet, basename="authenticatedsession")
router.register("providers/all", ProviderViewSet, basename="provider")
router.register("providers/oauth2", OAuth2ProviderViewSet, basename="oauth2provider")
router.register("providers/proxy", ProxyProviderViewSet, basename="proxyprovider")
router.register("providers/ldap", LDAPProviderViewSet, basename="ldapprovider")
router.register("providers/radius", RadiusProviderViewSet, basename="radiusprovider")
router.register("propertymappings/provider/scope", ScopeMappingViewSet, basename="scopemapping")
router.register("propertymappings/provider/radius", RadiusProviderPropertyMappingViewSet,
                basename="radiusproviderpropertymapping")
router.register("outposts/instances", OutpostViewSet, basename="outpost")
router.register("outposts/proxy", ProxyOutpostConfigViewSet, basename="proxyoutpostconfig")
router.register("outposts/ldap", LDAPOutpostConfigViewSet, basename="ldapoutpostconfig")
router.register("outposts/radius", RadiusOutpostConfigViewSet, basename="radiusoutpostconfig")
router.register("events/events", EventViewSet, basename="event")
router.register("policies/all", PolicyViewSet, basename="policy")
router.register("policies/bindings", PolicyBindingViewSet, basename="policybinding")
router.register("policies/expression", ExpressionPolicyViewSet, basename="expressionpolicy")
router.register("policies/password", PasswordPolicyViewSet, basename="passwordpolicy")
router.register("policies/reputation", ReputationPolicyViewSet, basename="reputationpolicy")
router.register("flows/instances", FlowViewSet, basename="flow")
router.register("flows/bindings", FlowStageBindingViewSet, basename="flowstagebinding")
router.register("stages/all", StageViewSet, basename="stage")
router.register("crypto/certificatekeypairs", CertificateKeyPairViewSet, basename="certificatekeypair")

urlpatterns = [
    path("root/config/", ConfigView.as_view(), name="config"),
    # Public, as authentik's: the schema describes the API, it holds no data.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny], custom_settings=CUSTOM_SETTINGS), name="schema"),
    *router.urls,
]
