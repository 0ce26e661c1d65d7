"""Test data builders: accounts and assets created through the real services."""

from __future__ import annotations

import itertools
from typing import Any

from sqlmodel import Session

from inventory.models import Asset, Role, User
from inventory.services import assets as asset_service
from inventory.services.users import LoginPolicy, create_user

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def make_user(
    session: Session,
    role: Role | str = Role.admin,
    username: str | None = None,
    password: str = PASSWORD,
) -> User:
    user, _ = create_user(
        session=session,
        username=username or f"user{next(_counter)}",
        role=Role(role),
        password=password,
        policy=LoginPolicy(),
    )
    return user


def make_asset(session: Session, actor: str = "tests", **fields: Any) -> Asset:
    n = next(_counter)
    raw: dict[str, Any] = {"name": f"asset-{n}", "addresses": f"10.0.{n // 250}.{n % 250 + 1}"}
    raw.update(fields)
    data = asset_service.validate_asset(raw)
    return asset_service.create_asset(session=session, data=data, actor=actor)
