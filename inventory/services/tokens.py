"""API tokens for automation: created for a user, acting with that user's role, revocable."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlmodel import Session

from inventory.errors import InvalidInput, NotFound
from inventory.i18n import N_
from inventory.models import ApiToken, User
from inventory.models.types import utcnow

TOKEN_PREFIX = "vigie_"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(*, session: Session, user_id: int, name: str) -> tuple[ApiToken, str]:
    """A new token; the secret is returned once and never stored."""
    label = name.strip()
    if not label or len(label) > 100:
        raise InvalidInput(
            N_("Give the token a name of 1 to 100 characters."),
            fields={"name": [(N_("Give the token a name of 1 to 100 characters."), {})]},
        )
    if session.get(User, user_id) is None:
        raise NotFound(N_("No user with id %(id)s."), id=user_id)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user_id, name=label, digest=_digest(secret), prefix=secret[:12])
    session.add(token)
    session.commit()
    return token, secret


def list_tokens(*, session: Session, user_id: int | None = None) -> Sequence[ApiToken]:
    statement = select(ApiToken).order_by(ApiToken.created_at.desc())  # type: ignore[attr-defined,union-attr]
    if user_id is not None:
        statement = statement.where(ApiToken.user_id == user_id)
    return session.scalars(statement).all()


def revoke_token(*, session: Session, token_id: int, user_id: int | None = None) -> ApiToken:
    """Revoke a token (only the owner's own when user_id is given)."""
    token = session.get(ApiToken, token_id)
    if token is None or (user_id is not None and token.user_id != user_id):
        raise NotFound(N_("No token with id %(id)s."), id=token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.commit()
    return token


def user_for_token(*, session: Session, secret: str) -> User | None:
    """The active user behind a valid, unrevoked token, or None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = session.scalars(select(ApiToken).where(ApiToken.digest == _digest(secret))).first()
    if token is None or token.revoked_at is not None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    now = utcnow()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now  # at most one write a minute per token
        session.commit()
    return user
