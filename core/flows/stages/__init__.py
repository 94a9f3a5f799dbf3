"""One module per stage kind; ``view_for`` maps a concrete stage model to its view class."""

from __future__ import annotations

from core.flows import models
from core.flows.stages.authenticator_static import AuthenticatorStaticStageView
from core.flows.stages.authenticator_totp import AuthenticatorTOTPStageView
from core.flows.stages.authenticator_validate import AuthenticatorValidateStageView
from core.flows.stages.authenticator_webauthn import AuthenticatorWebAuthnStageView
from core.flows.stages.consent import ConsentStageView
from core.flows.stages.deny import DenyStageView
from core.flows.stages.email import EmailStageView
from core.flows.stages.identification import IdentificationStageView
from core.flows.stages.password import PasswordStageView
from core.flows.stages.prompt import PromptStageView
from core.flows.stages.user_login import UserLoginStageView
from core.flows.stages.user_logout import UserLogoutStageView
from core.flows.stages.user_write import UserWriteStageView

VIEWS = {
    models.IdentificationStage: IdentificationStageView,
    models.PasswordStage: PasswordStageView,
    models.AuthenticatorValidateStage: AuthenticatorValidateStageView,
    models.AuthenticatorTOTPStage: AuthenticatorTOTPStageView,
    models.AuthenticatorStaticStage: AuthenticatorStaticStageView,
    models.AuthenticatorWebAuthnStage: AuthenticatorWebAuthnStageView,
    models.PromptStage: PromptStageView,
    models.UserWriteStage: UserWriteStageView,
    models.UserLoginStage: UserLoginStageView,
    models.UserLogoutStage: UserLogoutStageView,
    models.ConsentStage: ConsentStageView,
    models.DenyStage: DenyStageView,
    models.EmailStage: EmailStageView,
}


def view_for(stage):
    """The view class for a concrete stage model, or None (an unknown kind fails closed)."""
    return VIEWS.get(type(stage))
