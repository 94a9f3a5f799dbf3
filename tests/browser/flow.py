"""Driving the flow pages in Chromium: wait for a path, submit the flow form, log in (with an MFA code when
asked), sign out. Shared by the journeys (test_journeys.py) and the admin's seed steps (test_admin_seed_steps.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

LOGIN_PATH = "/if/flow/default-authentication-flow/"
WAIT_MS = 15_000


def on_path(page, path: str) -> None:
    page.wait_for_url(lambda url: urlsplit(url).path == path, timeout=WAIT_MS)


def submit(page) -> None:
    page.click("form#flow-form button[type=submit]")


def sign_in(page, base: str, username: str, password: str, code_for=None, start: str = "/if/user/") -> None:
    """Log in through the flow pages; ``code_for()`` answers the MFA code prompt when one comes."""
    page.goto(base + start)
    on_path(page, LOGIN_PATH)
    page.fill("#uid_field", username)
    submit(page)
    page.fill("#password", password)
    submit(page)
    if code_for is not None:
        page.fill("#code", code_for())
        submit(page)


def sign_out(page) -> None:
    page.click("header.bar a:has-text('Sign out')")
    page.click("[data-component='xak-user-logout'] button:has-text('Sign out')")  # the confirmation
    on_path(page, LOGIN_PATH)
