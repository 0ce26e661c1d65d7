"""User management by administrators: create (generated or typed password), change role, disable."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from inventory.models import User
from inventory.services import users as user_service
from tests.conftest import FormClient
from tests.factories import PASSWORD, make_user
from tests.html import element, field_errors

pytestmark = pytest.mark.usefixtures("fast_hashing")


def shown(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def stored(engine, username: str) -> User | None:
    with Session(engine) as check:
        return check.scalars(
            select(User).where(func.lower(User.username) == username.lower())
        ).first()


def can_log_in(app, username: str, password: str) -> bool:
    app.test_client_class = FormClient
    browser = app.test_client()
    return browser.login(username, password).status_code == 302


@pytest.fixture
def admin(client, session) -> User:
    user = make_user(session, "admin", username="alice")
    assert client.login("alice", PASSWORD).status_code == 302
    return user


def test_users_page_lists_accounts(client, session, admin):
    make_user(session, "viewer", username="vera")
    response = client.get("/admin/users")
    assert response.status_code == 200
    text = shown(response)
    assert "alice" in text and "vera" in text and "Viewer" in text and "Administrator" in text


def test_create_with_a_generated_password_shown_once(app, client, session, engine, admin):
    response = client.submit(
        "/admin/users/new", {"username": "bob", "role": "auditor", "password": ""}
    )
    assert response.status_code == 200
    secret = re.sub(
        r"<[^>]+>", "", element(response.get_data(as_text=True), "generated-password")
    ).strip()
    assert len(secret) >= 12 and " " not in secret
    assert "Account bob was created." in shown(response)
    assert secret not in client.get("/admin/users").get_data(as_text=True)  # not shown again
    user = stored(engine, "bob")
    assert user.role == "auditor" and user.active and secret not in user.password_hash
    assert can_log_in(app, "bob", secret)


def test_create_with_a_typed_password(app, client, session, engine, admin):
    response = client.submit(
        "/admin/users/new",
        {"username": "carol", "role": "viewer", "password": "a typed passphrase"},
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/users")
    assert "Account carol was created." in shown(client.get("/admin/users"))
    assert stored(engine, "carol").role == "viewer"
    assert can_log_in(app, "carol", "a typed passphrase")


def test_too_short_password_is_shown_next_to_the_field(client, session, engine, admin):
    response = client.submit(
        "/admin/users/new", {"username": "dave", "role": "viewer", "password": "short"}
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Use at least 10 characters." in field_errors(html, "password")
    assert field_errors(html, "username") == ""
    assert stored(engine, "dave") is None


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("alice", "This name is taken."),
        ("ALICE", "This name is taken."),
        ("bad name!", "Use 2 to 64 letters, digits, . _ - or @."),
        ("x", "Use 2 to 64 letters, digits, . _ - or @."),
        ("", "Enter a user name."),
        ("a\x00b", "Use 2 to 64 letters, digits, . _ - or @."),
    ],
)
def test_bad_user_names_are_shown_next_to_the_field(
    client, session, engine, admin, username, message
):
    response = client.submit(
        "/admin/users/new",
        {"username": username, "role": "viewer", "password": "a typed passphrase"},
    )
    assert response.status_code == 400
    assert message in field_errors(response.get_data(as_text=True), "username")
    with Session(engine) as check:
        assert check.scalar(select(func.count()).select_from(User)) == 1


def test_unknown_role_is_refused(client, session, engine, admin):
    response = client.submit(
        "/admin/users/new", {"username": "eve", "role": "superuser", "password": ""}
    )
    assert response.status_code == 400
    assert field_errors(response.get_data(as_text=True), "role")
    assert stored(engine, "eve") is None


def test_edit_page_is_prefilled(client, session, admin):
    user = make_user(session, "auditor", username="bob")
    html = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert re.search(r'<option selected value="auditor">|<option value="auditor" selected', html)
    assert "checked" in element(html, "field-active")


def test_change_role(client, session, engine, admin):
    user = make_user(session, "viewer", username="bob")
    response = client.submit(f"/admin/users/{user.id}", {"role": "auditor", "active": "y"})
    assert response.status_code == 302
    assert "Account bob was updated." in shown(client.get("/admin/users"))
    assert stored(engine, "bob").role == "auditor"


def test_disable_ends_the_users_session_and_refuses_logins(app, client, session, engine, admin):
    user = make_user(session, "viewer", username="bob")
    app.test_client_class = FormClient
    bobs_browser = app.test_client()
    bobs_browser.login("bob", PASSWORD)
    assert bobs_browser.get("/assets").status_code == 200
    response = client.submit(f"/admin/users/{user.id}", {"role": "viewer"})  # "active" unticked
    assert response.status_code == 302
    assert not stored(engine, "bob").active
    assert "Disabled" in shown(client.get("/admin/users"))
    assert bobs_browser.get("/assets").status_code == 302
    assert not can_log_in(app, "bob", PASSWORD)
    # And enabled again.
    client.submit(f"/admin/users/{user.id}", {"role": "viewer", "active": "y"})
    assert can_log_in(app, "bob", PASSWORD)


def test_set_a_new_password_for_someone(app, client, session, admin):
    user = make_user(session, "viewer", username="bob")
    response = client.submit(
        f"/admin/users/{user.id}",
        {"role": "viewer", "active": "y", "password": "reset by the admin"},
    )
    assert response.status_code == 302
    assert can_log_in(app, "bob", "reset by the admin")
    assert not can_log_in(app, "bob", PASSWORD)


def test_too_short_new_password_changes_nothing(client, session, engine, admin):
    user = make_user(session, "viewer", username="bob")
    response = client.submit(
        f"/admin/users/{user.id}", {"role": "admin", "active": "y", "password": "short"}
    )
    assert response.status_code == 400
    assert "Use at least 10 characters." in field_errors(
        response.get_data(as_text=True), "password"
    )
    bob = stored(engine, "bob")
    assert bob.role == "viewer", "the role change is not saved alongside a refused password"
    assert (
        user_service.authenticate(session=session, username="bob", password=PASSWORD, client="t")
        is not None
    )


@pytest.mark.parametrize(
    "change",
    [
        {"role": "viewer", "active": "y"},
        {"role": "admin"},
        {"role": "auditor", "active": "y", "password": "a brand new one!"},
    ],
)
def test_the_last_admin_cannot_be_demoted_or_disabled(client, session, engine, admin, change):
    response = client.submit(f"/admin/users/{admin.id}", change)
    assert response.status_code == 400
    assert "Vigie needs at least one active administrator." in shown(response)
    assert "Something went wrong" not in shown(response)
    alice = stored(engine, "alice")
    assert alice.role == "admin" and alice.active
    assert alice.password_hash == admin.password_hash, "nothing is half-saved"
    assert client.get("/admin/users").status_code == 200  # still logged in, still admin


def test_an_admin_can_be_demoted_when_another_remains(client, session, engine, admin):
    other = make_user(session, "admin", username="root")
    response = client.submit(f"/admin/users/{other.id}", {"role": "viewer", "active": "y"})
    assert response.status_code == 302
    assert stored(engine, "root").role == "viewer"


def test_admin_changing_their_own_password_stays_logged_in(app, client, session, admin):
    response = client.submit(
        f"/admin/users/{admin.id}",
        {"role": "admin", "active": "y", "password": "my own new password"},
    )
    assert response.status_code == 302
    assert client.get("/admin/users").status_code == 200
    assert can_log_in(app, "alice", "my own new password")


def test_unknown_user_is_a_404(client, session, admin):
    assert client.get("/admin/users/999999").status_code == 404
    assert (
        client.submit("/admin/users/999999", {"role": "viewer"}, page="/admin/users").status_code
        == 404
    )
