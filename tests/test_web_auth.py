"""Logging in and out: who gets in, what the session cookie looks like, what stops an attacker."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from inventory import create_app
from inventory.db import make_engine
from inventory.models import Asset, LoginFailure, User
from inventory.services import users as user_service
from inventory.settings import load_settings
from tests.conftest import TEST_SECRET, FormClient
from tests.factories import PASSWORD, make_asset, make_user

pytestmark = pytest.mark.usefixtures("fast_hashing")

# Pages anyone may reach; everything else must send a visitor to the login page.
PUBLIC_RULES = {"/login", "/language", "/healthz", "/static/<path:filename>"}


def _rules() -> list[tuple[str, frozenset[str]]]:
    """Every route of the application (built once, on a database it never opens)."""
    settings = load_settings(
        {"general": {"environment": "test"}, "web": {"secret_key": TEST_SECRET}}, environ={}
    )
    app = create_app(settings=settings, engine=make_engine("sqlite://"))
    return sorted(
        (rule.rule, frozenset(rule.methods or ()) - {"HEAD", "OPTIONS"})
        for rule in app.url_map.iter_rules()
    )


RULES = _rules()
PROTECTED = [(rule, methods) for rule, methods in RULES if rule not in PUBLIC_RULES]
WRITES = [(rule, method) for rule, methods in PROTECTED for method in sorted(methods - {"GET"})]


def concrete(rule: str) -> str:
    """A real URL for a rule: placeholders filled with plausible values."""
    url = re.sub(r"<int(?:\([^)]*\))?:[^>]+>", "1", rule)
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "csv" if m.group(1) == "fmt" else "x", url)


def logged_in(client: FormClient) -> bool:
    """True when the client's session opens the inventory instead of bouncing to the login page."""
    return client.get("/assets").status_code == 200


def location_path(response) -> str:
    return urlsplit(response.headers["Location"]).path


def another_client(app) -> FormClient:
    """A second browser on the same application."""
    app.test_client_class = FormClient
    return app.test_client()  # type: ignore[return-value]


def assert_refused_to_visitor(response, url: str) -> None:
    """Pages send a visitor to the login page; the API answers 401 in JSON."""
    if url.startswith("/api/"):
        assert response.status_code == 401, (url, response.status_code)
        assert response.get_json()["code"] == "unauthorized"
    else:
        assert response.status_code == 302, (url, response.status_code)
        assert location_path(response) == "/login"


# --- every page needs a login ---------------------------------------------------------------


def test_the_route_list_is_complete():
    """The parametrized checks below cover real routes (guards against an empty list)."""
    rules = {rule for rule, _ in RULES}
    assert {"/assets", "/assets/new", "/admin/users", "/account", "/logout"} <= rules
    assert PUBLIC_RULES <= rules


@pytest.mark.parametrize(
    ("rule", "methods"), PROTECTED, ids=[f"{'|'.join(sorted(m))} {r}" for r, m in PROTECTED]
)
def test_every_page_needs_a_login(client, session, rule, methods):
    make_asset(session)
    make_user(session, "admin", username="alice")
    url = concrete(rule)
    if "GET" in methods:
        response = client.get(url)
    elif url.startswith("/api/"):
        response = client.open(url, method=sorted(methods)[0], json={"name": "x"})
    else:
        response = client.submit(url, {}, page="/login")
    assert_refused_to_visitor(response, url)


@pytest.mark.parametrize(("rule", "method"), WRITES, ids=[f"{m} {r}" for r, m in WRITES])
def test_anonymous_changes_are_refused_and_change_nothing(client, session, engine, rule, method):
    """Even with a valid CSRF token, an anonymous POST is sent to the login page."""
    asset = make_asset(session, name="keep-me")
    data = {
        "name": "intruder",
        "addresses": "10.9.9.9",
        "kind": "pacs",
        "criticality": "low",
        "exposure": "public",
        "username": "intruder",
        "role": "admin",
        "password": "x" * 20,
    }
    url = concrete(rule)
    if url.startswith("/api/"):
        response = client.open(url, method=method, json=data)
    else:
        response = client.submit(url, data, page="/login")
    assert_refused_to_visitor(response, url)
    with Session(engine) as check:
        assert check.scalar(select(func.count()).select_from(Asset)) == 1
        assert check.get(Asset, asset.id).archived_at is None
        assert check.scalar(select(func.count()).select_from(User)) == 0


def test_index_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302 and location_path(response) == "/login"


def test_public_pages_open_without_login(client):
    assert client.get("/login").status_code == 200
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/static/app.css").status_code == 200
    response = client.submit("/language", {"lang": "fr", "next": "/login"}, page="/login")
    assert response.status_code == 302 and location_path(response) == "/login"


def test_the_login_redirect_comes_back_to_the_page_asked_for(client, session):
    make_user(session, "viewer", username="vera")
    bounce = client.get("/assets?q=pacs&kind=nas")
    login_url = bounce.headers["Location"]
    assert "next=" in login_url
    response = client.submit(login_url, {"username": "vera", "password": PASSWORD})
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.path == "/assets" and "q=pacs" in target.query and "kind=nas" in target.query


# --- logging in -----------------------------------------------------------------------------


def test_login_with_the_right_password(client, session):
    make_user(session, "viewer", username="vera")
    response = client.login("vera", PASSWORD)
    assert response.status_code == 302 and location_path(response) == "/assets"
    page = client.get("/assets").get_data(as_text=True)
    assert "vera" in page and "Log out" in page


def test_user_names_are_not_case_sensitive(client, session):
    make_user(session, "viewer", username="Vera")
    assert client.login("vERA", PASSWORD).status_code == 302
    assert logged_in(client)


@pytest.mark.parametrize(
    ("username", "password"),
    [("vera", "wrong password"), ("nobody", PASSWORD), ("vera", PASSWORD.upper())],
)
def test_login_refused_with_a_clear_message(client, session, username, password):
    make_user(session, "viewer", username="vera")
    response = client.login(username, password)
    assert response.status_code == 401
    assert "Wrong user name or password." in response.get_data(as_text=True)
    assert not logged_in(client)


def test_empty_login_form_shows_messages_next_to_fields(client):
    response = client.login("", "")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Enter your user name." in html and "Enter your password." in html
    assert not logged_in(client)


def test_login_with_control_characters_is_refused_not_a_crash(client, session):
    make_user(session, "viewer", username="vera")
    response = client.login("ve\x00ra", PASSWORD)
    assert response.status_code in (400, 401)
    assert "Something went wrong" not in response.get_data(as_text=True)
    assert not logged_in(client)


def test_disabled_account_cannot_log_in(client, session):
    user = make_user(session, "viewer", username="vera")
    user_service.update_user(session=session, user_id=user.id, active=False)
    assert client.login("vera", PASSWORD).status_code == 401
    assert not logged_in(client)


def test_login_page_when_already_logged_in_goes_to_the_inventory(client, session):
    make_user(session, "viewer", username="vera")
    client.login("vera", PASSWORD)
    response = client.get("/login")
    assert response.status_code == 302 and location_path(response) == "/assets"


# --- the session cookie ---------------------------------------------------------------------


def test_session_cookie_is_httponly_and_samesite_lax(client, session):
    make_user(session, "viewer", username="vera")
    response = client.login("vera", PASSWORD)
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("vigie_session=")]
    assert cookies, response.headers
    attributes = {
        part.strip().split("=")[0].lower(): part.strip() for part in cookies[-1].split(";")[1:]
    }
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=lax"


def test_login_gives_a_new_session(client, session):
    """No session fixation: the cookie set before login does not carry over."""
    make_user(session, "viewer", username="vera")
    client.get("/login")
    before = client.get_cookie("vigie_session").value
    client.login("vera", PASSWORD)
    after = client.get_cookie("vigie_session").value
    assert before != after


# --- logging out ----------------------------------------------------------------------------


def test_logout_is_a_post_with_csrf(client, session):
    make_user(session, "viewer", username="vera")
    client.login("vera", PASSWORD)
    assert client.get("/logout").status_code == 405
    assert logged_in(client)
    assert (
        client.post("/logout").status_code == 400
    )  # no CSRF token: a link elsewhere cannot log you out
    assert logged_in(client)
    response = client.submit("/logout", page="/assets")
    assert response.status_code == 302 and location_path(response) == "/login"
    assert "You are logged out." in client.get("/login").get_data(as_text=True)
    assert not logged_in(client)


# --- CSRF -----------------------------------------------------------------------------------


def test_post_without_csrf_token_is_refused_and_changes_nothing(client, session, engine):
    make_user(session, "admin", username="alice")
    client.login("alice", PASSWORD)
    response = client.post(
        "/assets/new",
        data={
            "name": "PACS",
            "addresses": "10.0.0.9",
            "kind": "pacs",
            "criticality": "high",
            "exposure": "internal",
        },
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "This form has expired or was sent from elsewhere." in html
    with Session(engine) as check:
        assert check.scalar(select(func.count()).select_from(Asset)) == 0


def test_post_with_a_forged_csrf_token_is_refused(client, session, engine):
    make_user(session, "admin", username="alice")
    client.login("alice", PASSWORD)
    response = client.post(
        "/admin/users/new",
        data={"csrf_token": "forged", "username": "mallory", "role": "admin", "password": "x" * 20},
    )
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    with Session(engine) as check:
        assert check.scalar(select(User).where(User.username == "mallory")) is None


def test_login_without_csrf_token_is_refused(client, session):
    make_user(session, "viewer", username="vera")
    response = client.post("/login", data={"username": "vera", "password": PASSWORD})
    assert response.status_code == 400
    assert not logged_in(client)


# --- throttling -----------------------------------------------------------------------------


def test_after_five_failures_even_the_right_password_waits(client, session, engine):
    make_user(session, "viewer", username="vera")
    for _ in range(5):
        assert client.login("vera", "wrong password").status_code == 401
    response = client.login("vera", PASSWORD)
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Too many failed attempts. Wait 15 minutes and try again." in html
    assert not logged_in(client)
    with Session(engine) as check:
        assert check.scalar(select(func.count()).select_from(LoginFailure)) == 5


def test_four_failures_still_let_the_right_password_in(client, session):
    make_user(session, "viewer", username="vera")
    for _ in range(4):
        client.login("vera", "wrong password")
    assert client.login("vera", PASSWORD).status_code == 302
    assert logged_in(client)


def test_throttling_counts_per_client_address_across_accounts(client, session):
    make_user(session, "viewer", username="vera")
    for n in range(5):
        client.login(f"guess{n}", "wrong password")
    assert client.login("vera", PASSWORD).status_code == 429


# --- the `next` parameter -------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "http://evil.example",
        "https://evil.example/assets",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:evil.example",
        " //evil.example",
    ],
)
def test_next_cannot_send_the_user_to_another_site(client, session, target):
    make_user(session, "viewer", username="vera")
    response = client.submit(
        "/login",
        {"username": "vera", "password": PASSWORD},
        query_string={"next": target},
        page="/login",
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    # Browsers read a backslash as a slash; whatever the header says must stay on this site.
    parts = urlsplit(location.replace("\\", "/").strip())
    assert not parts.scheme and not parts.netloc, location
    assert parts.path.startswith("/") and not parts.path.startswith("//"), location


@pytest.mark.parametrize("target", ["//evil.example", "http://evil.example"])
def test_next_is_also_checked_when_already_logged_in(client, session, target):
    make_user(session, "viewer", username="vera")
    client.login("vera", PASSWORD)
    response = client.get("/login", query_string={"next": target})
    assert response.status_code == 302
    parts = urlsplit(response.headers["Location"])
    assert not parts.scheme and not parts.netloc
    assert parts.path == "/assets"


def test_language_switch_cannot_redirect_off_site(client):
    response = client.submit("/language", {"lang": "fr", "next": "//evil.example"}, page="/login")
    parts = urlsplit(response.headers["Location"])
    assert not parts.netloc and not parts.scheme


# --- sessions that must end -----------------------------------------------------------------


def test_password_change_ends_the_other_sessions(app, session):
    make_user(session, "viewer", username="vera")
    laptop, phone = another_client(app), another_client(app)
    assert laptop.login("vera", PASSWORD).status_code == 302
    assert phone.login("vera", PASSWORD).status_code == 302
    new = "a brand new passphrase"
    response = laptop.submit(
        "/account/password",
        {"pw-current": PASSWORD, "pw-password": new, "pw-confirm": new},
        page="/account",
    )
    assert response.status_code == 302
    assert logged_in(laptop), "the session that changed the password stays open"
    assert not logged_in(phone), "every other session of the account ends"
    assert phone.login("vera", PASSWORD).status_code == 401
    assert phone.login("vera", new).status_code == 302


def test_password_reset_by_an_admin_ends_the_users_sessions(app, session):
    user = make_user(session, "viewer", username="vera")
    client = another_client(app)
    client.login("vera", PASSWORD)
    user_service.set_password(session=session, user_id=user.id, password="another long password")
    assert not logged_in(client)


def test_disabled_user_is_logged_out_on_the_next_request(client, session):
    user = make_user(session, "admin", username="alice")
    make_user(session, "admin", username="root")
    client.login("alice", PASSWORD)
    assert logged_in(client)
    user_service.update_user(session=session, user_id=user.id, active=False)
    response = client.get("/assets")
    assert response.status_code == 302 and location_path(response) == "/login"


def test_a_forged_session_id_is_not_a_login(client, session):
    """The session id carries a per-account token: knowing a user id is not enough."""
    user = make_user(session, "admin", username="alice")
    with client.session_transaction() as cookie:
        cookie["_user_id"] = f"{user.id}:guessed"
        cookie["_fresh"] = True
    assert not logged_in(client)


def test_behind_a_trusted_proxy_throttling_counts_the_real_client(
    tmp_path, database_url, engine, session
):
    """With web.trusted_proxies = 1, one client's failures do not lock out another client."""
    from inventory import create_app
    from inventory.settings import load_settings
    from tests.conftest import TEST_SECRET, FormClient
    from tests.factories import PASSWORD, make_user

    settings = load_settings(
        {
            "general": {"environment": "test", "var_dir": str(tmp_path / "var")},
            "database": {"url": database_url},
            "web": {"secret_key": TEST_SECRET, "trusted_proxies": 1},
        },
        environ={},
    )
    app = create_app(settings=settings, engine=engine)
    app.test_client_class = FormClient
    make_user(session, "viewer", username="carol")
    attacker = app.test_client()
    attacker.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.9"
    for _ in range(6):
        attacker.login("nobody", "wrong password")
    assert attacker.login("carol", PASSWORD).status_code == 429
    nurse = app.test_client()
    nurse.environ_base["HTTP_X_FORWARDED_FOR"] = "192.0.2.44"
    assert nurse.login("carol", PASSWORD).status_code == 302


def test_a_static_file_answered_after_logout_does_not_log_back_in(client, session):
    """The browser keeps the last cookie it receives: a stylesheet asked for with the logged-in
    cookie and answered after "Log out" must not send that session back (a browser test saw
    an icon do it)."""
    make_user(session, "viewer", username="vera")
    client.login("vera", PASSWORD)
    assert logged_in(client)
    stale = client.get_cookie("vigie_session")
    assert stale is not None
    client.submit("/logout", page="/assets")
    assert not logged_in(client)
    client.set_cookie("vigie_session", stale.value)  # the icon's request left before the logout
    response = client.get("/static/app.css")
    assert response.status_code == 200
    assert "vigie_session" not in response.headers.get("Set-Cookie", "")
    page = client.get("/assets")  # a page does refresh the cookie it was asked with
    assert page.status_code == 200 and "vigie_session" in page.headers.get("Set-Cookie", "")
