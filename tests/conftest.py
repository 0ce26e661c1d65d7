"""Fixtures: every database test runs on SQLite and on the real PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (override with INVENTORY_TEST_POSTGRES_URL). Each test
session creates its own database there and drops it at the end. Where PostgreSQL cannot be reached
the PostgreSQL half is skipped with the reason, unless INVENTORY_REQUIRE_POSTGRES=1 (CI), where it
fails instead.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, SQLModel

import inventory.models  # noqa: F401 - registers the tables
from inventory import create_app
from inventory.db import make_engine
from inventory.settings import Settings, load_settings

PG_ADMIN_URL = os.environ.get(
    "INVENTORY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("INVENTORY_REQUIRE_POSTGRES") == "1"
ARTIFACTS = Path(__file__).parent / "artifacts"
TEST_SECRET = "test-secret-" + "x" * 40


# --- PostgreSQL, once per test session ------------------------------------------------------


def create_postgres_database(prefix: str, *, template: str | None = None) -> str:
    """A new, empty PostgreSQL database (optionally a copy of `template`); returns its URL.

    Skips the calling test with the reason when the server cannot be reached, or fails it when
    INVENTORY_REQUIRE_POSTGRES=1 (CI).
    """
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    suffix = f' TEMPLATE "{template}"' if template else ""
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}"
        if REQUIRE_PG:
            pytest.fail(message + " (INVENTORY_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    finally:
        admin.dispose()
    return re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN_URL)


def drop_postgres_database(url: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = url.rsplit("/", 1)[1]
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    url = create_postgres_database("vigie_test")
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    yield url
    drop_postgres_database(url)


def _truncate(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        # A connection leaked by the previous test would make TRUNCATE wait forever: fail instead.
        connection.execute(text("SET LOCAL lock_timeout = '20s'"))
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


# --- per test -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if db_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'inventory.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(database_url: str, db_backend: str) -> Iterator[Engine]:
    """An empty schema: a new SQLite file, or the session's PostgreSQL database truncated."""
    engine = make_engine(database_url)
    if db_backend == "sqlite":
        SQLModel.metadata.create_all(engine)
    else:
        _truncate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        {
            "general": {"environment": "test", "var_dir": str(tmp_path / "var"), "timezone": "UTC"},
            "database": {"url": database_url},
            "web": {"secret_key": TEST_SECRET},
        },
        environ={},
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Flask:
    app = create_app(settings=settings, engine=engine)
    app.config["TESTING"] = True
    return app


class FormClient(FlaskClient):
    """A test client that fills in the CSRF token the way a browser form would."""

    def csrf_token(self, page: str = "/login") -> str:
        html = self.get(page).get_data(as_text=True)
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
            r'name="csrf_token" value="([^"]+)"', html
        )
        assert match, f"no CSRF token on {page}"
        return match.group(1)

    def submit(
        self,
        url: str,
        data: dict[str, Any] | None = None,
        *,
        page: str | None = None,
        **kwargs: Any,
    ) -> Any:
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf_token(page or url))
        return self.post(url, data=data, **kwargs)

    def login(self, username: str, password: str) -> Any:
        return self.submit("/login", {"username": username, "password": password})


@pytest.fixture
def client(app: Flask) -> FormClient:
    app.test_client_class = FormClient
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheaper argon2 parameters (still argon2) for web tests that create and log in many accounts.

    Hashes made this way verify like any other; only the cost differs, so a test run stays short.
    """
    from argon2 import PasswordHasher

    from inventory.services import users

    monkeypatch.setattr(
        users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
