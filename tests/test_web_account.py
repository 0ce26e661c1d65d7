"""The user's own account: interface language (and the browser's), and changing one's password."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import pytest
from babel.support import Translations
from sqlalchemy import select
from sqlmodel import Session

import inventory
from inventory.models import User
from tests.factories import PASSWORD, make_user
from tests.html import field_errors

pytestmark = pytest.mark.usefixtures("fast_hashing")

TRANSLATIONS = Path(inventory.__file__).parent / "translations"


def french(message: str) -> str | None:
    """The French text the compiled catalogue gives for a message, if it has one yet."""
    catalogue = Translations.load(str(TRANSLATIONS), ["fr"], domain="messages")
    text = catalogue.gettext(message)
    return text if text != message else None


def lang_of(response) -> str:
    found = re.search(r'<html[^>]*\blang="([^"]+)"', response.get_data(as_text=True))
    assert found, "no lang attribute on <html>"
    return found.group(1)


def saved_locale(engine, username: str) -> str | None:
    with Session(engine) as check:
        return check.scalars(select(User.locale).where(User.username == username)).one()


@pytest.fixture
def vera(client, session) -> User:
    user = make_user(session, "viewer", username="vera")
    assert client.login("vera", PASSWORD).status_code == 302
    return user


# --- language -------------------------------------------------------------------------------


def test_account_page(client, vera):
    response = client.get("/account")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for field in ("field-lang-locale", "field-pw-current", "field-pw-password", "field-pw-confirm"):
        assert f'id="{field}"' in html
    assert "vera" in html


def test_choosing_french_turns_the_pages_french(client, engine, vera):
    response = client.submit("/account/language", {"lang-locale": "fr"}, page="/account")
    assert response.status_code == 302
    assert saved_locale(engine, "vera") == "fr"
    for url in ("/assets", "/account", "/assets/999999"):
        page = client.get(url)
        assert lang_of(page) == "fr", url
    text = html_lib.unescape(client.get("/assets").get_data(as_text=True))
    for message in ("Assets", "Log out", "Export CSV"):
        translated = french(message)
        if translated:  # the French catalogue is being written; what it has must show
            assert translated in text, message


def test_the_choice_beats_the_browser(client, engine, vera):
    client.submit("/account/language", {"lang-locale": "en"}, page="/account")
    assert lang_of(client.get("/assets", headers={"Accept-Language": "fr"})) == "en"
    client.submit("/account/language", {"lang-locale": "fr"}, page="/account")
    assert lang_of(client.get("/assets", headers={"Accept-Language": "en"})) == "fr"


def test_same_as_my_browser(client, engine, vera):
    client.submit("/account/language", {"lang-locale": "fr"}, page="/account")
    client.submit("/account/language", {"lang-locale": ""}, page="/account")
    assert saved_locale(engine, "vera") is None
    assert lang_of(client.get("/assets", headers={"Accept-Language": "fr-FR,fr;q=0.9"})) == "fr"
    assert lang_of(client.get("/assets", headers={"Accept-Language": "en-GB"})) == "en"


def test_unknown_language_is_not_saved(client, engine, vera):
    response = client.submit("/account/language", {"lang-locale": "de"}, page="/account")
    assert response.status_code in (302, 400)
    assert saved_locale(engine, "vera") is None
    assert lang_of(client.get("/assets")) == "en"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr", "fr"),
        ("fr-FR,fr;q=0.9,en;q=0.5", "fr"),
        ("fr-CA", "fr"),
        ("en-US,en;q=0.8", "en"),
        ("de-DE", "en"),
        ("", "en"),
        ("en;q=0.1,fr;q=0.9", "fr"),
        ("*", "en"),
        ("fr;q=garbage", "en"),
    ],
)
def test_a_visitor_gets_the_browsers_language(client, header, expected):
    response = client.get("/login", headers={"Accept-Language": header})
    assert response.status_code == 200
    assert lang_of(response) == expected


def test_a_visitor_in_french_sees_the_login_page_in_french(client):
    text = html_lib.unescape(
        client.get("/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    )
    translated = french("Log in to Vigie")
    if translated:
        assert translated in text


def test_language_chosen_on_the_login_page_is_kept_after_login(client, session):
    make_user(session, "viewer", username="vera")
    response = client.submit("/language", {"lang": "fr", "next": "/login"}, page="/login")
    assert response.status_code == 302
    assert lang_of(client.get("/login", headers={"Accept-Language": "en"})) == "fr"
    assert client.login("vera", PASSWORD).status_code == 302
    assert lang_of(client.get("/assets", headers={"Accept-Language": "en"})) == "fr"
    client.submit("/logout", page="/assets")
    assert lang_of(client.get("/login", headers={"Accept-Language": "en"})) == "fr"


def test_a_logged_in_user_without_a_choice_follows_the_browser(client, vera):
    assert lang_of(client.get("/assets", headers={"Accept-Language": "fr"})) == "fr"
    assert lang_of(client.get("/assets", headers={"Accept-Language": "en"})) == "en"


def test_validation_errors_in_french(client, session):
    make_user(session, "admin", username="alice")
    client.login("alice", PASSWORD)
    client.submit("/account/language", {"lang-locale": "fr"}, page="/account")
    response = client.submit(
        "/assets/new", {"name": "", "kind": "other", "criticality": "low", "exposure": "internal"}
    )
    assert response.status_code == 400
    assert lang_of(response) == "fr"
    translated = french("A name is required.")
    if translated:
        assert translated in field_errors(response.get_data(as_text=True), "name")


# --- password -------------------------------------------------------------------------------

NEW = "a brand new passphrase"


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (
            {"pw-current": "not my password", "pw-password": NEW, "pw-confirm": NEW},
            "pw-current",
            "This is not your current password.",
        ),
        (
            {"pw-current": PASSWORD, "pw-password": NEW, "pw-confirm": NEW + "!"},
            "pw-confirm",
            "The two passwords differ.",
        ),
        (
            {"pw-current": PASSWORD, "pw-password": "short", "pw-confirm": "short"},
            "pw-password",
            "Use at least 10 characters.",
        ),
        (
            {"pw-current": "", "pw-password": NEW, "pw-confirm": NEW},
            "pw-current",
            "Enter your current password.",
        ),
        (
            {"pw-current": PASSWORD, "pw-password": "", "pw-confirm": ""},
            "pw-password",
            "Enter a new password.",
        ),
    ],
)
def test_password_change_errors_next_to_the_field(client, session, vera, form, field, message):
    response = client.submit("/account/password", form, page="/account")
    assert response.status_code == 400
    assert message in field_errors(response.get_data(as_text=True), field)
    assert client.get("/assets").status_code == 200  # still logged in
    client.submit("/logout", page="/assets")
    assert client.login("vera", PASSWORD).status_code == 302, "the password did not change"


def test_password_change(client, session, vera):
    response = client.submit(
        "/account/password",
        {"pw-current": PASSWORD, "pw-password": NEW, "pw-confirm": NEW},
        page="/account",
    )
    assert response.status_code == 302
    assert "Your password was changed." in html_lib.unescape(
        client.get("/account").get_data(as_text=True)
    )
    client.submit("/logout", page="/assets")
    assert client.login("vera", PASSWORD).status_code == 401
    assert client.login("vera", NEW).status_code == 302
