"""The database: an engine built from settings, a session per request, and the schema upgrade.

SQLite gets WAL (readers do not block the writer), foreign keys and a busy timeout on every
connection; PostgreSQL is used as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

if TYPE_CHECKING:
    from flask import Flask

    from inventory.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, *, busy_timeout_ms: int = 5000, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def engine_from_settings(settings: Settings) -> Engine:
    return make_engine(
        settings.database_url, busy_timeout_ms=settings.database.sqlite_busy_timeout_ms
    )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for code outside a request (CLI, jobs); services commit their own work."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the latest migration; a no-op when already there."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def init_app(app: Flask, engine: Engine) -> None:
    """Attach the engine; each request gets one session, closed when the request ends."""
    from flask import g

    app.extensions["inventory.engine"] = engine

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def get_session() -> Session:
    """The current request's session (web layer only)."""
    from flask import current_app, g

    if "db_session" not in g:
        g.db_session = Session(current_app.extensions["inventory.engine"], expire_on_commit=False)
    return g.db_session  # type: ignore[no-any-return]


def schema_is_current(engine: Engine) -> bool:
    """True when the database is at the latest migration (so the app can use it)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    return current == heads
