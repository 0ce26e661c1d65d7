"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL.

When a model changes without a new migration, test_migrations_match_the_models lists the drift.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, SQLModel

import inventory.models  # noqa: F401 - registers the tables
from inventory.db import alembic_config, make_engine, schema_is_current, upgrade_schema
from inventory.services import assets as asset_service
from tests.conftest import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database with no schema at all: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    url = create_postgres_database("vigie_migrations")
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_postgres_database(url)


def drift(engine: Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def test_migrations_match_the_models(blank_engine):
    # The comparison sees the models: on an empty database every table is missing.
    missing = {diff[1].name for diff in drift(blank_engine) if diff[0] == "add_table"}
    assert missing == {table.name for table in SQLModel.metadata.sorted_tables}
    upgrade_schema(blank_engine)
    assert drift(blank_engine) == []


def test_upgrade_is_idempotent_and_tracked(blank_engine):
    assert not schema_is_current(blank_engine)
    upgrade_schema(blank_engine)
    assert schema_is_current(blank_engine)
    tables = set(inspect(blank_engine).get_table_names())
    upgrade_schema(blank_engine)  # `inventory init` twice
    assert schema_is_current(blank_engine)
    assert set(inspect(blank_engine).get_table_names()) == tables
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= tables
    heads = ScriptDirectory.from_config(alembic_config(blank_engine)).get_heads()
    with blank_engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        assert versions.all() == heads


def test_one_head_and_an_unbroken_chain(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    script = ScriptDirectory.from_config(alembic_config(engine))
    assert len(script.get_heads()) == 1  # two heads: `inventory init` would refuse to upgrade
    revisions = list(script.walk_revisions())
    assert [r.down_revision for r in revisions].count(None) == 1
    engine.dispose()


def test_migrated_schema_keeps_its_rules(blank_engine):
    """The partial unique index on live names comes from the migration, not only create_all."""
    upgrade_schema(blank_engine)
    with Session(blank_engine, expire_on_commit=False) as session:
        data = asset_service.validate_asset({"name": "PACS", "addresses": "10.0.0.1"})
        first = asset_service.create_asset(session=session, data=data, actor="t")
        asset_service.archive_asset(session=session, asset_id=first.id, actor="t")
        asset_service.create_asset(session=session, data=data, actor="t")  # name freed
        with pytest.raises(Exception, match="(?i)unique"):
            asset_service.create_asset(session=session, data=data, actor="t", check=False)
        session.rollback()


def test_downgrade_removes_everything(blank_engine):
    from alembic import command

    upgrade_schema(blank_engine)
    command.downgrade(alembic_config(blank_engine), "base")
    assert set(inspect(blank_engine).get_table_names()) <= {"alembic_version"}
    assert not schema_is_current(blank_engine)
    upgrade_schema(blank_engine)
    assert drift(blank_engine) == []
