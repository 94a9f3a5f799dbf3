"""CSV user import (the admin's Users -> Import): malformed CSV is refused with its line number and nothing is
imported. An unbalanced quote used to make the csv module swallow every following row into one field, so the
import said "1 created" and the other users silently became part of a name."""

import pytest

from core.accounts.csv_import import import_users
from core.accounts.models import User

pytestmark = pytest.mark.django_db


def test_unbalanced_quote_is_refused_with_its_line_and_nothing_is_imported():
    text = ('username,email,name\n'
            'alice,alice@example.com,"Alice\n'
            'bob,bob@example.com,Bob\n'
            'carol,carol@example.com,Carol\n')
    result = import_users(text)
    assert not result.created and not result.updated
    assert result.errors and "line 2" in result.errors[0] and "quote" in result.errors[0], result.errors
    assert not User.objects.filter(username__in=["alice", "bob", "carol"]).exists()


def test_a_quote_closed_rows_later_is_refused_too():
    # The quote closes on line 4: the csv module reads lines 2-4 as one record with a 3-line name.
    text = ('username,email,name\n'
            'alice,alice@example.com,"Alice\n'
            'bob,bob@example.com,Bob\n'
            'carol,carol@example.com,Carol"\n'
            'dave,dave@example.com,Dave\n')
    result = import_users(text)
    assert not result.created
    assert any("line 2" in e for e in result.errors), result.errors
    assert not User.objects.filter(username__in=["alice", "bob", "carol", "dave"]).exists()


def test_stray_quote_inside_a_field_is_refused_with_its_line():
    result = import_users('username,email\nalice,alice@example.com\nbob,"bob"@example.com\n')
    assert not result.created
    assert any("line 3" in e for e in result.errors), result.errors
    assert not User.objects.filter(username="alice").exists()


def test_well_formed_quotes_still_import():
    result = import_users('username,email,name\n"erin",erin@example.com,"Erin, the ""second"""\n')
    assert result.errors == [] and result.created == ["erin"]
    assert User.objects.get(username="erin").name == 'Erin, the "second"'


def test_blank_lines_and_windows_line_ends_keep_their_line_numbers():
    result = import_users('username,email\r\nfrank,frank@example.com\r\n\r\ngina,not-an-email\r\n')
    assert result.errors == ["line 4: email 'not-an-email' is not an email address"]
    assert import_users('username,email\r\nfrank,frank@example.com\r\n\r\ngina,gina@example.com\r\n').created \
        == ["frank", "gina"]
