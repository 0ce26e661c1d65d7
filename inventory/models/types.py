"""Column types: netaddr objects and aware UTC datetimes in Python, portable SQL underneath."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import netaddr
from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class IPAddressType(TypeDecorator[netaddr.IPAddress]):
    """A host address stored in its canonical text form (compressed IPv6, dotted IPv4)."""

    impl = String(45)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return str(netaddr.IPAddress(str(value)))

    def process_result_value(self, value: str | None, dialect: Dialect) -> netaddr.IPAddress | None:
        return None if value is None else netaddr.IPAddress(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Datetimes are always aware and in UTC in Python, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# Primary keys are SQL INTEGER: a larger id (from a URL, say) names no row, and PostgreSQL
# refuses to even compare it, so services answer "not found" before asking the database.
MAX_ID = 2**31 - 1


def valid_id(value: int) -> bool:
    return 0 < value <= MAX_ID
