"""Fixtures of the vulnerability tests: a migrated database (as the CLI wants it) on SQLite and
PostgreSQL, and the `inventory` command run against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from inventory.cli import main
from inventory.db import make_engine, upgrade_schema
from tests.conftest import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A database brought up by the migrations, as `inventory init` leaves it: (url, engine)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cli.db'}"
    else:
        url = create_postgres_database("vigie_vulns")
    engine = make_engine(url)
    upgrade_schema(engine)
    yield url, engine
    engine.dispose()
    if request.param == "postgresql":
        drop_postgres_database(url)


def inventory(url: str, tmp_path: Path, *args: str, **settings: Any) -> Result:
    """`inventory ARGS...` on the database at `url`; `settings` are [vulns] settings given as
    INVENTORY_VULNS_* variables."""
    env = {
        "INVENTORY_DATABASE_URL": url,
        "INVENTORY_GENERAL_VAR_DIR": str(tmp_path / "var"),
        "INVENTORY_CONFIG": "",
        "INVENTORY_VULNS_NVD_API_KEY": "",
        **{f"INVENTORY_VULNS_{key.upper()}": str(value) for key, value in settings.items()},
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
