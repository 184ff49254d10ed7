"""Console users: a username and an argon2id password per programme, one role from service.ROLES,
per-account lockout after repeated failures. Sessions are in security/sessions.py.

Sign-in answers the same way whether the username is unknown, the password wrong, the account disabled
or locked, and takes about as long (an unknown user still costs one argon2 verification)."""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from dataclasses import dataclass
from typing import cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from jifen.config import get_settings
from jifen.db import Base, UTCDateTime, utcnow
from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.programs.models import Program
from jifen.security.service import ROLES, Principal

MIN_PASSWORD = 10
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
DEMO_ADMIN = "admin"


class ConsoleUser(Base):
    __tablename__ = "console_users"
    __table_args__ = (UniqueConstraint("program_id", "username", name="uq_console_users_program_username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)  # since the last success or lockout
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    def principal(self) -> Principal:
        return Principal(key_id=0, name=self.username, role=self.role, program_id=self.program_id, user_id=self.id)

    def locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


@functools.lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    """argon2id with the library's current defaults (RFC 9106 low-memory profile)."""
    return PasswordHasher()


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hasher().hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return hasher().hash(password)


def password_matches(stored: str, password: str) -> bool:
    try:
        return hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password_policy(username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"the password needs at least {MIN_PASSWORD} characters", code="weak_password")
    if password.strip().lower() == username.strip().lower():
        raise InvalidRequest("the password may not be the username", code="weak_password")


def normal_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME.fullmatch(name):
        raise InvalidRequest("a username is 2–64 characters: letters, digits, '.', '_' or '-'",
                             code="invalid_username")
    return name


def find_user(session: Session, program_id: int, username: str) -> ConsoleUser | None:
    return session.scalar(select(ConsoleUser).where(ConsoleUser.program_id == program_id,
                                                    ConsoleUser.username == username.strip().lower()))


def get_user(session: Session, program_id: int, username: str) -> ConsoleUser:
    user = find_user(session, program_id, username)
    if user is None:
        raise NotFound(f"no console user {username!r}", code="unknown_user")
    return user


def create_user(session: Session, program: Program, username: str, role: str, password: str,
                display_name: str | None = None, now: dt.datetime | None = None) -> ConsoleUser:
    name = normal_username(username)
    if role not in ROLES:
        raise InvalidRequest(f"unknown role {role!r}; choose one of {', '.join(ROLES)}", code="unknown_role")
    check_password_policy(name, password)
    if find_user(session, program.id, name) is not None:
        raise Conflict(f"console user {name!r} already exists", code="user_exists")
    now = now or utcnow()
    user = ConsoleUser(program_id=program.id, username=name, display_name=(display_name or "").strip()[:200],
                       role=role, password_hash=hash_password(password), created_at=now, password_changed_at=now,
                       failed_logins=0)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: ConsoleUser, password: str, now: dt.datetime | None = None) -> None:
    """A new password; every session of the user ends."""
    from jifen.security.sessions import revoke_all

    check_password_policy(user.username, password)
    now = now or utcnow()
    user.password_hash, user.password_changed_at = hash_password(password), now
    user.failed_logins, user.locked_until = 0, None
    revoke_all(session, user.id, now)


def set_role(user: ConsoleUser, role: str) -> None:
    if role not in ROLES:
        raise InvalidRequest(f"unknown role {role!r}; choose one of {', '.join(ROLES)}", code="unknown_role")
    user.role = role


def disable(session: Session, user: ConsoleUser, now: dt.datetime | None = None) -> None:
    """The user can no longer sign in; every session of the user ends."""
    from jifen.security.sessions import revoke_all

    now = now or utcnow()
    if user.disabled_at is None:
        user.disabled_at = now
    revoke_all(session, user.id, now)


@dataclass(frozen=True)
class SignIn:
    user: ConsoleUser | None  # None: refused (one answer for every reason)
    reason: str  # ok, unknown, disabled, locked, wrong_password — for tests and logs, never shown


def sign_in(session: Session, program_id: int, username: str, password: str, now: dt.datetime) -> SignIn:
    """Check a username and password (commit the session afterwards either way: failures are counted)."""
    settings = get_settings()
    user = find_user(session, program_id, username)
    if user is None:
        password_matches(_dummy_hash(), password)  # as slow as a real check
        return SignIn(None, "unknown")
    ok = password_matches(user.password_hash, password)
    if user.disabled_at is not None:
        return SignIn(None, "disabled")
    if user.locked(now):
        return SignIn(None, "locked")
    if not ok:
        # Counted in the database (concurrent guesses all count); the fifth in a row locks the account.
        failures = cast(int, session.scalar(update(ConsoleUser).where(ConsoleUser.id == user.id)
                                  .values(failed_logins=ConsoleUser.failed_logins + 1)
                                  .returning(ConsoleUser.failed_logins)
                                  .execution_options(synchronize_session=False)))
        if failures >= settings.console_max_failures:
            session.execute(update(ConsoleUser).where(ConsoleUser.id == user.id).values(
                failed_logins=0, locked_until=now + dt.timedelta(minutes=settings.console_lockout_minutes))
                .execution_options(synchronize_session=False))
        return SignIn(None, "wrong_password")
    if hasher().check_needs_rehash(user.password_hash):  # argon2 parameters raised since it was set
        user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    return SignIn(user, "ok")


def ensure_demo_admin(session: Session, program: Program) -> str | None:
    """The first-run admin of `jifen up`: created once with a random password, which is returned (and
    printed once); None when the user already exists."""
    if find_user(session, program.id, DEMO_ADMIN) is not None:
        return None
    password = secrets.token_urlsafe(12)
    create_user(session, program, DEMO_ADMIN, "admin", password, display_name="Administrator")
    return password
