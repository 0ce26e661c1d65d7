"""Accounts and the record of failed logins used for throttling."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from inventory.models.types import UTCDateTime, utcnow


class Role(StrEnum):
    """Least privilege: viewers read, auditors also audit and accept risks, admins do everything."""

    viewer = "viewer"
    auditor = "auditor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: "Role") -> bool:
        return self.rank >= needed.rank


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    password_hash: str = Field(max_length=255)
    role: Role = Field(sa_column=Column(String(16), nullable=False))
    locale: str | None = Field(default=None, max_length=8)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Changing it (password reset, deactivation) invalidates every open session of the account.
    session_token: str = Field(default="", max_length=64)

    # Flask-Login protocol, kept here so the web layer needs no wrapper class.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"


class LoginFailure(SQLModel, table=True):
    """One failed login; counted per account and per client address within a window."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, index=True)
    client: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
