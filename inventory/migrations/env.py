"""Alembic environment: the engine comes from Vigie (inventory init), never from alembic.ini."""

from alembic import context
from sqlmodel import SQLModel

import inventory.models  # noqa: F401 - registers every table on SQLModel.metadata
from inventory.db import engine_from_settings
from inventory.settings import load_settings

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or engine_from_settings(load_settings())
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        context.run_migrations()


run_migrations_online()
