"""Users and their API tokens (only a token's sha256 is stored)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from nas.store.models import ApiToken, User, utcnow

TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def create_user(s: Session, *, name: str) -> User:
    if not name or len(name) > 100:
        raise ValueError(f"user name must be 1-100 characters, got {name!r}")
    user = User(name=name)
    s.add(user)
    s.flush()
    return user


def get_user(s: Session, *, name: str) -> User | None:
    return s.scalar(select(User).where(User.name == name))


def get_or_create_user(s: Session, *, name: str) -> User:
    return get_user(s, name=name) or create_user(s, name=name)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(s: Session, *, user_id: int) -> str:
    """A new API token for ``user_id``; the plaintext is returned once, only its hash is stored."""
    token = "nas_" + secrets.token_urlsafe(32)
    s.add(ApiToken(user_id=user_id, token_hash=hash_token(token)))
    s.flush()
    return token


def live_token(s: Session, *, token: str) -> ApiToken | None:
    """The stored row of a token that exists and is not revoked, or None."""
    return s.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
    )


def token_touch_due(last_used_at: datetime | None) -> bool:
    """Whether a token last used at ``last_used_at`` is due to be marked used again (once a minute)."""
    return last_used_at is None or utcnow() - last_used_at > TOKEN_TOUCH_INTERVAL


def user_for_token(s: Session, *, token: str) -> User | None:
    """The user a live token belongs to (and marks the token used), or None."""
    row = live_token(s, token=token)
    if row is None:
        return None
    # At most one write a minute per token: every API request authenticates.
    if token_touch_due(row.last_used_at):
        row.last_used_at = utcnow()
    return s.get(User, row.user_id)


def revoke_token(s: Session, *, token: str) -> bool:
    row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        return False
    row.revoked = True
    return True
