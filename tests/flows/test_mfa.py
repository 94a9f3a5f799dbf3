"""TOTP and static-code enrolment and login through the executor; single use and replay refusal."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from django.test import Client

from core.flows import models as fm
from core.flows.models import StaticDevice, StaticToken, TOTPDevice
from core.flows.stages.devices import totp_step
from tests.flows.conftest import login

pytestmark = pytest.mark.django_db


def _enrol_flow(flows, kind: str):
    if kind == "totp":
        stage = fm.AuthenticatorTOTPStage.objects.create(name="setup-totp", digits=6)
    else:
        stage = fm.AuthenticatorStaticStage.objects.create(name="setup-static", token_count=3, token_length=10)
    return flows.flow(f"setup-{kind}", "stage_configuration", [stage],
                      authentication="require_authenticated")


def _logged_in(flows, executor):
    flows.authentication()
    client = Client()
    assert login(executor("default-authentication-flow", client=client), "alice", "correct horse")["component"] \
        == "xak-flow-redirect"
    return client


def _code(secret: str, at: float) -> str:
    return pyotp.TOTP(secret).at(at)


def test_totp_enrolment_then_login(flows, alice, executor):
    client = _logged_in(flows, executor)
    _enrol_flow(flows, "totp")
    ex = executor("setup-totp", client=client)
    challenge = ex.get()
    assert challenge["component"] == "ak-stage-authenticator-totp"
    url = urlsplit(challenge["config_url"])
    assert url.scheme == "otpauth" and url.netloc == "totp"
    secret = parse_qs(url.query)["secret"][0]
    bad = ex.post(component="ak-stage-authenticator-totp", code="000000" if _code(secret, time.time()) != "000000"
                  else "111111")
    assert bad["response_errors"]["code"]
    done = ex.post(component="ak-stage-authenticator-totp", code=_code(secret, time.time()))
    assert done["component"] == "xak-flow-redirect"
    device = TOTPDevice.objects.get(user=alice)
    assert device.confirmed

    # a fresh login now needs the code; the enrolment code itself is already spent
    ex = executor("default-authentication-flow")
    mfa = login(ex, "alice", "correct horse")
    assert mfa["component"] == "ak-stage-authenticator-validate"
    assert [c["device_class"] for c in mfa["device_challenges"]] == ["totp"]
    selected = mfa["device_challenges"][0]
    # use the next time step so the code is certainly fresh
    code = pyotp.TOTP(secret).generate_otp(device.last_t + 1)
    with_step = totp_step(secret, 6, 30, code)
    if with_step is None:  # the next step is outside the accepted window only right at a boundary
        pytest.skip("clock boundary")
    done = ex.post(component="ak-stage-authenticator-validate", selected_challenge=selected, code=code)
    assert done["component"] == "xak-flow-redirect"


def test_totp_replay_refused(flows, alice, executor):
    flows.authentication()
    secret = pyotp.random_base32()
    TOTPDevice.objects.create(user=alice, key=secret, confirmed=True)
    now = time.time()
    code = _code(secret, now)
    ex = executor("default-authentication-flow")
    mfa = login(ex, "alice", "correct horse")
    assert ex.post(component="ak-stage-authenticator-validate", selected_challenge=mfa["device_challenges"][0],
                   code=code)["component"] == "xak-flow-redirect"
    # the same code again (inside its 30 s window) from another client
    ex2 = executor("default-authentication-flow")
    mfa2 = login(ex2, "alice", "correct horse")
    again = ex2.post(component="ak-stage-authenticator-validate", selected_challenge=mfa2["device_challenges"][0],
                     code=code)
    assert again["component"] == "ak-stage-authenticator-validate"
    assert again["response_errors"]["code"][0]["string"] == "Invalid Token"


def test_totp_step_window():
    secret = pyotp.random_base32()
    now = 1_700_000_000
    totp = pyotp.TOTP(secret)
    assert totp_step(secret, 6, 30, totp.at(now), now) == now // 30
    assert totp_step(secret, 6, 30, totp.at(now - 30), now) == now // 30 - 1
    assert totp_step(secret, 6, 30, totp.at(now - 90), now) is None
    assert totp_step(secret, 6, 30, "12345", now) is None
    assert totp_step(secret, 6, 30, "abcdef", now) is None


def test_static_enrolment_and_single_use(flows, alice, executor):
    client = _logged_in(flows, executor)
    _enrol_flow(flows, "static")
    ex = executor("setup-static", client=client)
    challenge = ex.get()
    assert challenge["component"] == "ak-stage-authenticator-static"
    codes = challenge["codes"]
    assert len(codes) == 3 and all(len(c) == 10 for c in codes)
    assert ex.post(component="ak-stage-authenticator-static")["component"] == "xak-flow-redirect"
    assert StaticToken.objects.filter(device__user=alice).count() == 3

    ex = executor("default-authentication-flow")
    mfa = login(ex, "alice", "correct horse")
    assert [c["device_class"] for c in mfa["device_challenges"]] == ["static"]
    assert ex.post(component="ak-stage-authenticator-validate", selected_challenge=mfa["device_challenges"][0],
                   code=codes[0])["component"] == "xak-flow-redirect"

    ex = executor("default-authentication-flow")
    mfa = login(ex, "alice", "correct horse")
    reused = ex.post(component="ak-stage-authenticator-validate", selected_challenge=mfa["device_challenges"][0],
                     code=codes[0])
    assert reused["response_errors"]["code"]
    assert ex.post(component="ak-stage-authenticator-validate", selected_challenge=mfa["device_challenges"][0],
                   code=codes[1])["component"] == "xak-flow-redirect"
    assert StaticToken.objects.filter(device__user=alice).count() == 1


def test_code_without_selected_challenge(flows, alice, executor):
    """The login page's plain form sends only a code: TOTP and static devices are tried."""
    flows.authentication()
    device = StaticDevice.objects.create(user=alice, confirmed=True)
    StaticToken.objects.create(device=device, token="abcd1234")
    ex = executor("default-authentication-flow")
    login(ex, "alice", "correct horse")
    assert ex.post(component="ak-stage-authenticator-validate", code="abcd1234")["component"] == \
        "xak-flow-redirect"


def test_not_configured_deny(flows, alice, executor):
    flows.authentication()
    fm.AuthenticatorValidateStage.objects.filter(name="default-authentication-flow-mfa").update(
        not_configured_action="deny")
    answer = login(executor("default-authentication-flow"), "alice", "correct horse")
    assert answer["component"] == "ak-stage-access-denied"


def test_not_configured_configure_injects_setup(flows, alice, executor):
    flows.authentication()
    setup = fm.AuthenticatorStaticStage.objects.create(name="inject-static", token_count=2)
    validate = fm.AuthenticatorValidateStage.objects.get(name="default-authentication-flow-mfa")
    validate.not_configured_action = "configure"
    validate.save()
    validate.configuration_stages.add(setup)
    ex = executor("default-authentication-flow")
    answer = login(ex, "alice", "correct horse")
    assert answer["component"] == "ak-stage-authenticator-static"
    assert ex.post(component="ak-stage-authenticator-static")["component"] == "xak-flow-redirect"
    assert StaticDevice.objects.filter(user=alice, confirmed=True).exists()


def test_webauthn_setup_challenge_shape(flows, alice, executor):
    client = _logged_in(flows, executor)
    flows.flow("setup-webauthn", "stage_configuration",
               [fm.AuthenticatorWebAuthnStage.objects.create(name="setup-webauthn")])
    challenge = executor("setup-webauthn", client=client).get()
    assert challenge["component"] == "ak-stage-authenticator-webauthn"
    registration = challenge["registration"]
    assert registration["rp"]["id"] == "testserver"
    assert registration["user"]["name"] == "alice"
    assert registration["challenge"]
    bad = executor("setup-webauthn", client=client).post(component="ak-stage-authenticator-webauthn",
                                                         response={"id": "x"})
    assert bad["response_errors"]["response"]
