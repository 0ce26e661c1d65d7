"""Least privilege per role, security headers, no external resources, and friendly error pages."""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from inventory import create_app
from inventory.models import Asset, AssetChange, User
from inventory.services import assets as asset_service
from inventory.settings import load_settings
from tests.conftest import TEST_SECRET, FormClient
from tests.factories import PASSWORD, make_asset, make_user

pytestmark = pytest.mark.usefixtures("fast_hashing")

ROLES = ("viewer", "auditor", "admin")
NEW_ASSET = {
    "name": "New PACS",
    "addresses": "10.20.0.1",
    "kind": "pacs",
    "criticality": "high",
    "exposure": "internal",
}

# (method, URL template, least role that may use it, form data). {asset}, {archived} and {user}
# are filled in by the test; "viewer" pages are read-only.
ROUTES: list[tuple[str, str, str, dict | None]] = [
    ("GET", "/assets", "viewer", None),
    ("GET", "/assets?archived=1&q=pacs", "viewer", None),
    ("GET", "/assets/{asset}", "viewer", None),
    ("GET", "/assets/export.csv", "viewer", None),
    ("GET", "/assets/export.json", "viewer", None),
    ("GET", "/account", "viewer", None),
    ("GET", "/findings", "viewer", None),
    ("GET", "/findings?status=all&severity=high&kind=pacs", "viewer", None),
    ("GET", "/assets/new", "admin", None),
    ("POST", "/assets/new", "admin", NEW_ASSET),
    ("GET", "/assets/{asset}/edit", "admin", None),
    ("POST", "/assets/{asset}/edit", "admin", {**NEW_ASSET, "name": "Renamed"}),
    ("GET", "/assets/{asset}/archive", "admin", None),
    ("POST", "/assets/{asset}/archive", "admin", {}),
    ("POST", "/assets/{archived}/restore", "admin", {}),
    ("GET", "/assets/import", "admin", None),
    ("POST", "/assets/import", "admin", {"file": b"name,addresses\nImported,10.30.0.1\n"}),
    ("POST", "/assets/import/confirm", "admin", {"token": "x"}),
    ("GET", "/admin/users", "admin", None),
    ("GET", "/admin/users/new", "admin", None),
    ("POST", "/admin/users/new", "admin", {"username": "newbie", "role": "admin", "password": ""}),
    ("GET", "/admin/users/{user}", "admin", None),
    ("POST", "/admin/users/{user}", "admin", {"role": "admin", "active": "y"}),
]
MATRIX = [(method, url, need, data, role) for method, url, need, data in ROUTES for role in ROLES]


def login_as(client: FormClient, session: Session, role: str) -> User:
    user = make_user(session, role, username=f"the-{role}")
    assert client.login(user.username, PASSWORD).status_code == 302
    return user


def snapshot(engine) -> tuple:
    """What a refused request must leave alone: assets, their history, accounts."""
    with Session(engine) as check:
        return (
            check.scalar(select(func.count()).select_from(Asset)),
            sorted((a.name, a.archived_at is None) for a in check.scalars(select(Asset))),
            check.scalar(select(func.count()).select_from(AssetChange)),
            sorted((u.username, u.role, u.active) for u in check.scalars(select(User))),
        )


# --- roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "need", "data", "role"),
    MATRIX,
    ids=[f"{m} {u} as {r}" for m, u, _, _, r in MATRIX],
)
def test_each_role_gets_exactly_its_rights(client, session, engine, method, url, need, data, role):
    asset = make_asset(session, name="PACS radiology")
    archived = make_asset(session, name="Old NAS")
    asset_service.archive_asset(session=session, asset_id=archived.id, actor="tests")
    other = make_user(session, "viewer", username="someone")
    login_as(client, session, role)
    url = url.format(asset=asset.id, archived=archived.id, user=other.id)
    before = snapshot(engine)

    if method == "GET":
        response = client.get(url)
    else:
        form = dict(data or {})
        if "file" in form:
            form["file"] = (io.BytesIO(form["file"]), "assets.csv")
        response = client.submit(url, form, page="/account")
    body = response.get_data(as_text=True)  # also ends a streamed download (and its transaction)

    allowed = {"viewer": 0, "auditor": 1, "admin": 2}[role] >= {
        "viewer": 0,
        "auditor": 1,
        "admin": 2,
    }[need]
    if allowed:
        assert response.status_code in (200, 302), body[:500]
    else:
        assert response.status_code == 403
        assert "Your role does not allow this." in body
        assert snapshot(engine) == before


@pytest.mark.parametrize("role", ["viewer", "auditor"])
def test_readers_see_no_buttons_for_what_they_cannot_do(client, session, role):
    asset = make_asset(session, name="PACS radiology")
    login_as(client, session, role)
    listing = client.get("/assets").get_data(as_text=True)
    page = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    for html in (listing, page):
        assert (
            "/assets/new" not in html
            and "/assets/import" not in html
            and "/admin/users" not in html
        )
    assert f"/assets/{asset.id}/edit" not in page and f"/assets/{asset.id}/archive" not in page
    assert "/assets/export.csv" in listing  # reading includes exporting


def test_admin_sees_the_buttons(client, session):
    asset = make_asset(session, name="PACS radiology")
    login_as(client, session, "admin")
    listing = client.get("/assets").get_data(as_text=True)
    page = client.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "/assets/new" in listing and "/assets/import" in listing and "/admin/users" in listing
    assert f"/assets/{asset.id}/edit" in page and f"/assets/{asset.id}/archive" in page


# --- headers and resources ------------------------------------------------------------------


def main_pages(client: FormClient, session: Session) -> dict[str, str]:
    """Every main page as an admin sees it, plus the login page as a visitor sees it."""
    asset = make_asset(session, name="PACS radiology", tags="dicom")
    pages = {"/login": client.get("/login")}
    user = login_as(client, session, "admin")
    for url in [
        "/assets",
        "/assets?archived=1",
        f"/assets/{asset.id}",
        "/assets/new",
        f"/assets/{asset.id}/edit",
        f"/assets/{asset.id}/archive",
        "/assets/import",
        "/admin/users",
        "/admin/users/new",
        f"/admin/users/{user.id}",
        "/account",
        "/account/tokens",
        "/findings",
        "/assets/999999",
    ]:
        pages[url] = client.get(url)
    return pages


def test_security_headers_on_every_page(client, session):
    for url, response in main_pages(client, session).items():
        csp = response.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp, url
        assert "frame-ancestors 'none'" in csp, url
        assert not re.search(r"https?:|\*|'unsafe-inline'|'unsafe-eval'", csp), (url, csp)
        assert response.headers.get("X-Frame-Options") == "DENY", url
        assert response.headers.get("X-Content-Type-Options") == "nosniff", url
        assert "no-store" in response.headers.get("Cache-Control", ""), url


def test_downloads_are_not_cached_either(client, session):
    make_asset(session, name="PACS radiology")
    login_as(client, session, "viewer")
    for fmt in ("csv", "json"):
        response = client.get(f"/assets/export.{fmt}")
        assert "PACS radiology" in response.get_data(as_text=True)
        assert "no-store" in response.headers.get("Cache-Control", "")
        assert response.headers.get("X-Content-Type-Options") == "nosniff"


EXTERNAL = re.compile(
    r"""(?:src|href|action|srcset|poster|formaction)\s*=\s*["']?\s*((?:[a-z][a-z0-9+.-]*:)?//[^"'\s>]*)""",
    re.IGNORECASE,
)


def test_no_page_loads_anything_from_another_site(client, session):
    """Hospital networks are often offline: no CDN, no web font, no external script."""
    for url, response in main_pages(client, session).items():
        html = response.get_data(as_text=True)
        assert "<html" in html, url
        external = [
            m for m in EXTERNAL.findall(html) if urlsplit(m).hostname not in (None, "localhost")
        ]
        assert not external, (url, external)
        assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*https?:""", html, re.IGNORECASE), url
    css = client.get("/static/app.css").get_data(as_text=True)
    assert not re.search(r"@import|url\(\s*['\"]?\s*(?:https?:)?//", css, re.IGNORECASE)


def test_the_scan_finds_an_external_reference():
    """The pattern above does catch the references it is meant to catch."""
    html = '<script src="https://cdn.example/x.js"></script><link href="//fonts.example/f.css">'
    assert [urlsplit(m).hostname for m in EXTERNAL.findall(html)] == [
        "cdn.example",
        "fonts.example",
    ]


# --- error pages ----------------------------------------------------------------------------


def assert_friendly(response, status: int, message: str) -> None:
    html = response.get_data(as_text=True)
    assert response.status_code == status
    assert message in html
    assert "<html" in html and "Back to the inventory" in html
    assert "Traceback" not in html and 'File "' not in html


@pytest.mark.parametrize(
    "url",
    [
        "/assets/999999",
        "/assets/0",
        "/assets/99999999999999999999",
        "/assets/99999999999999999999/edit",
        "/admin/users/999999",
        "/admin/users/99999999999999999999",
        "/assets/export.xml",
        "/no/such/page",
    ],
)
def test_not_found_page(client, session, url):
    login_as(client, session, "admin")
    assert_friendly(client.get(url), 404, "This page does not exist (or no longer does).")


def test_not_found_for_a_visitor_too(client):
    assert_friendly(client.get("/no/such/page"), 404, "This page does not exist")


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/logout"),
        ("POST", "/assets/export.csv"),
        ("GET", "/assets/1/restore"),
        ("DELETE", "/assets"),
    ],
)
def test_method_not_allowed_page(client, session, method, url):
    make_asset(session)
    login_as(client, session, "admin")
    response = client.open(url, method=method, data={"csrf_token": client.csrf_token("/account")})
    assert_friendly(response, 405, "This action is not available here.")


def test_upload_larger_than_the_limit_is_refused(engine, database_url, tmp_path):
    settings = load_settings(
        {
            "general": {"environment": "test", "var_dir": str(tmp_path / "var"), "timezone": "UTC"},
            "database": {"url": database_url},
            "web": {"secret_key": TEST_SECRET, "max_upload_mb": 1},
        },
        environ={},
    )
    app = create_app(settings=settings, engine=engine)
    app.config["TESTING"] = True
    app.test_client_class = FormClient
    client = app.test_client()
    with Session(engine, expire_on_commit=False) as session:
        login_as(client, session, "admin")
    rows = "".join(
        f"big-{n},10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}\n" for n in range(1, 70_000)
    )
    content = ("name,addresses\n" + rows).encode()
    assert 1024 * 1024 < len(content) < 2 * 1024 * 1024
    response = client.submit(
        "/assets/import", {"file": (io.BytesIO(content), "big.csv")}, page="/assets/import"
    )
    assert_friendly(response, 413, "The file is too large.")
    with Session(engine) as check:
        assert check.scalar(select(func.count()).select_from(Asset)) == 0
    uploads = tmp_path / "var" / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    # Under the limit, the same form works.
    small = client.submit(
        "/assets/import",
        {"file": (io.BytesIO(b"name\nsmall\n"), "small.csv")},
        page="/assets/import",
    )
    assert small.status_code == 200


def test_unexpected_error_shows_the_friendly_page_without_details(app, client, session):
    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("secret detail /etc/passwd")

    response = client.get("/boom-for-test")
    assert_friendly(response, 500, "Something went wrong on our side.")
    html = response.get_data(as_text=True)
    assert "secret detail" not in html and "RuntimeError" not in html

    as_json = client.get("/boom-for-test", headers={"Accept": "application/json"})
    assert as_json.status_code == 500
    assert as_json.get_json()["code"] == "internal"
    assert "secret detail" not in as_json.get_data(as_text=True)


def test_unexpected_error_for_a_logged_in_user(app, client, session):
    @app.get("/boom-for-test")
    def boom():
        raise KeyError("boom")

    login_as(client, session, "viewer")
    response = client.get("/boom-for-test")
    assert_friendly(response, 500, "Something went wrong on our side.")
    assert "the-viewer" in response.get_data(as_text=True)  # still the normal page layout


def test_database_error_mid_request_is_a_friendly_page(app, client, session):
    """A failed statement (e.g. PostgreSQL aborting the transaction) still renders the page."""
    from sqlalchemy import text

    from inventory.db import get_session

    @app.get("/broken-sql-for-test")
    def broken():
        get_session().execute(text("SELECT * FROM no_such_table"))
        return "unreachable"

    login_as(client, session, "viewer")
    response = client.get("/broken-sql-for-test")
    assert_friendly(response, 500, "Something went wrong on our side.")
    assert "no_such_table" not in response.get_data(as_text=True)
    assert client.get("/assets").status_code == 200
