"""Accounts: argon2 password hashes, roles, first-admin bootstrap and login throttling.

Failed logins are rows in the database (not process memory), so throttling holds across the
several processes of a larger install and survives a restart.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, or_, select
from sqlmodel import Session

from inventory.errors import Conflict, InvalidInput, LoginThrottled, NotFound
from inventory.i18n import N_
from inventory.models import LoginFailure, Role, User
from inventory.models.types import utcnow, valid_id

_hasher = PasswordHasher()
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so both answers take as long.

    Computed on first use, not at import: an argon2 hash costs ~0.1 s and 64 MB.
    """
    return _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    min_password_length: int = 10


_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


def generate_password() -> str:
    """16 letters and digits (about 93 bits), without look-alikes such as O/0 and l/1."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def check_username(username: str) -> str:
    name = username.strip()
    if not _USERNAME.match(name):
        raise InvalidInput(
            N_("User names have 2 to 64 letters, digits, dots, hyphens, underscores or @."),
            fields={"username": [(N_("Use 2 to 64 letters, digits, . _ - or @."), {})]},
        )
    return name


def check_password(password: str, policy: LoginPolicy) -> str:
    if len(password) < policy.min_password_length:
        raise InvalidInput(
            N_("The password must have at least %(min)d characters."),
            fields={
                "password": [
                    (N_("Use at least %(min)d characters."), {"min": policy.min_password_length})
                ]
            },
            min=policy.min_password_length,
        )
    if len(password) > 1024:
        raise InvalidInput(
            N_("The password is too long."),
            fields={"password": [(N_("The password is too long."), {})]},
        )
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def get_user(*, session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if valid_id(user_id) else None
    if user is None:
        raise NotFound(N_("No user with id %(id)s."), id=user_id)
    return user


def find_user(*, session: Session, username: str) -> User | None:
    return session.scalars(
        select(User).where(func.lower(User.username) == username.strip().lower())
    ).first()


def list_users(*, session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(func.lower(User.username))).all()


def count_admins(*, session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.admin, User.active.is_(True))  # type: ignore[attr-defined]
        )
        or 0
    )


def create_user(
    *,
    session: Session,
    username: str,
    role: Role,
    password: str | None = None,
    policy: LoginPolicy = LoginPolicy(),
    locale: str | None = None,
) -> tuple[User, str | None]:
    """Create an account; returns it and the generated password when none was given."""
    name = check_username(username)
    if find_user(session=session, username=name):
        raise Conflict(
            N_("A user called %(name)s already exists."),
            fields={"username": [(N_("This name is taken."), {})]},
            name=name,
        )
    generated = None
    if password is None:
        password = generated = generate_password()
    check_password(password, policy)
    user = User(
        username=name,
        password_hash=hash_password(password),
        role=Role(role),
        locale=locale,
        session_token=secrets.token_hex(8),
    )
    session.add(user)
    session.commit()
    return user, generated


def ensure_first_admin(
    *, session: Session, password: str | None, policy: LoginPolicy = LoginPolicy()
) -> tuple[User, str | None] | None:
    """Create `admin` when no account exists yet; None when there already are accounts."""
    if session.scalar(select(func.count()).select_from(User)):
        return None
    return create_user(
        session=session, username="admin", role=Role.admin, password=password, policy=policy
    )


def set_password(
    *, session: Session, user_id: int, password: str, policy: LoginPolicy = LoginPolicy()
) -> User:
    user = get_user(session=session, user_id=user_id)
    check_password(password, policy)
    user.password_hash = hash_password(password)
    user.session_token = secrets.token_hex(8)  # other sessions of this account end
    session.commit()
    return user


def update_user(
    *,
    session: Session,
    user_id: int,
    role: Role | None = None,
    active: bool | None = None,
    locale: str | None | bool = False,
) -> User:
    """Change role, activity or language; the last active admin cannot be demoted or disabled."""
    user = get_user(session=session, user_id=user_id)
    # Only an active admin counts: demoting one that is disabled leaves the active ones as they are.
    demoting = role is not None and role != Role.admin and user.role == Role.admin and user.active
    disabling = active is False and user.role == Role.admin and user.active
    if (demoting or disabling) and count_admins(session=session) <= 1:
        raise InvalidInput(N_("Vigie needs at least one active administrator."))
    if role is not None:
        user.role = Role(role)
    if active is not None and active != user.active:
        user.active = active
        user.session_token = secrets.token_hex(8)
    if locale is not False:
        user.locale = locale or None  # type: ignore[assignment]
    session.commit()
    return user


def _client_key(client: str) -> str:
    return (client or "unknown")[:64]


def authenticate(
    *,
    session: Session,
    username: str,
    password: str,
    client: str,
    policy: LoginPolicy = LoginPolicy(),
) -> User | None:
    """The user if the password matches; None otherwise. Raises LoginThrottled when locked out.

    Failures count per account name and per client address, so guessing one account from many
    addresses and many accounts from one address are both slowed down.
    """
    now = utcnow()
    since = now - policy.window
    name = username.strip()[:64]
    client = _client_key(client)
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - 4 * policy.window))  # type: ignore[arg-type]
    recent = (
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(
                LoginFailure.at >= since,  # type: ignore[arg-type]
                or_(
                    func.lower(LoginFailure.username) == name.lower(), LoginFailure.client == client
                ),
            )
        )
        or 0
    )
    if recent >= policy.max_failures:
        session.commit()
        minutes = max(1, int(policy.window.total_seconds() // 60))
        raise LoginThrottled(
            N_("Too many failed attempts. Wait %(minutes)d minutes and try again."), minutes=minutes
        )
    user = find_user(session=session, username=name)
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
        ok = user is not None and user.active
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        session.add(LoginFailure(username=name, client=client, at=now))
        session.commit()
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.execute(delete(LoginFailure).where(func.lower(LoginFailure.username) == name.lower()))
    user.last_login_at = now
    session.commit()
    return user


def load_session_user(*, session: Session, session_id: str) -> User | None:
    """The user behind a session cookie id `<user id>:<session token>`, if still valid."""
    user_id, _, token = session_id.partition(":")
    if not (user_id.isascii() and user_id.isdigit() and valid_id(int(user_id))):
        return None
    user = session.get(User, int(user_id))
    if (
        user is None
        or not user.active
        or not secrets.compare_digest(
            user.session_token.encode(),
            token.encode(),  # bytes: compare_digest refuses non-ASCII str
        )
    ):
        return None
    return user
