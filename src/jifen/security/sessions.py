"""Console sessions: the cookie holds a random token, the table only its SHA-256 digest (a stolen
database copy opens no session). Each session has its own CSRF token (synchronizer pattern), ends after
30 idle minutes or 12 hours in all, and is revoked by signing out, by disabling the user or by a new
password."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from jifen.config import get_settings
from jifen.db import Base, BigId, UTCDateTime, utcnow
from jifen.security.users import ConsoleUser

TOUCH_EVERY = dt.timedelta(seconds=60)  # last_seen_at is written at most once a minute per session


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, user: ConsoleUser, now: dt.datetime) -> tuple[ConsoleSession, str]:
    """A new session; returns it and the token for the cookie (never stored)."""
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(user_id=user.id, token_hash=digest(token), csrf_token=secrets.token_urlsafe(32),
                         created_at=now, last_seen_at=now)
    session.add(row)
    session.flush()
    return row, token


@dataclass(frozen=True)
class Active:
    session_id: int
    csrf: str
    user: ConsoleUser
    touch: bool  # last_seen_at is due to be written


def expired(row: ConsoleSession, now: dt.datetime) -> bool:
    settings = get_settings()
    return (row.revoked_at is not None
            or now - row.last_seen_at > dt.timedelta(minutes=settings.console_idle_minutes)
            or now - row.created_at > dt.timedelta(hours=settings.console_session_hours))


def lookup(session: Session, token: str | None, now: dt.datetime) -> Active | None:
    """The live session of this cookie token, or None (unknown, revoked, idle, too old, user disabled)."""
    if not token:
        return None
    found = session.execute(select(ConsoleSession, ConsoleUser).join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
                            .where(ConsoleSession.token_hash == digest(token))).first()
    if found is None:
        return None
    row, user = found
    if expired(row, now) or user.disabled_at is not None:
        return None
    return Active(row.id, row.csrf_token, user, now - row.last_seen_at >= TOUCH_EVERY)


def touch(session: Session, session_id: int, now: dt.datetime) -> None:
    session.execute(update(ConsoleSession).where(ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None))
                    .values(last_seen_at=now))


def revoke(session: Session, session_id: int, now: dt.datetime) -> None:
    session.execute(update(ConsoleSession).where(ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None))
                    .values(revoked_at=now))


def revoke_all(session: Session, user_id: int, now: dt.datetime) -> int:
    return cast(CursorResult[Any], session.execute(update(ConsoleSession).where(ConsoleSession.user_id == user_id,
                                                        ConsoleSession.revoked_at.is_(None))
                           .values(revoked_at=now))).rowcount
