"""Expiry reminders on seed 001's schedule: in-app three months ahead, SMS (and WeChat) one month ahead,
and a call list for balances over 5,000 points. Each reminder names a reward the member can afford
("您有1520分即將過期,可兌換價值89元的電烤箱"). One reminder per member, expiry day and stage."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.ledger.models import AVAILABLE, Account, Lot
from jifen.members.models import Member
from jifen.notify.models import ExpiryReminder
from jifen.outbox import emit
from jifen.programs.expiry import add_months
from jifen.programs.models import Program, Wallet

STAGES = (("1m", 1), ("3m", 3))  # the nearer stage first: a reminder is for the nearest one that applies
CALL_LIST_POINTS = 5000


def expiring(session: Session, program: Program, now: dt.datetime, months: int) -> dict[tuple[int, dt.date], int]:
    """Points of the default wallet expiring within `months`, per member and last usable day."""
    tz = ZoneInfo(program.timezone)
    wallet = select(Wallet.id).where(Wallet.program_id == program.id, Wallet.is_default.is_(True)).scalar_subquery()
    rows = session.execute(select(Lot.member_pk, Lot.expires_at, Lot.available).where(
        Lot.wallet_id == wallet, Lot.available > 0, Lot.expires_at > now, Lot.expires_at <= add_months(now, months)))
    out: dict[tuple[int, dt.date], int] = defaultdict(int)
    for pk, expires_at, points in rows:
        # (expires_at is never NULL here: the query asks for expires_at > now)
        out[(pk, (cast(dt.datetime, expires_at) - dt.timedelta(microseconds=1)).astimezone(tz).date())] += points
    return out


def balances(session: Session, program: Program, pks) -> dict[int, int]:
    wallet = select(Wallet.id).where(Wallet.program_id == program.id, Wallet.is_default.is_(True)).scalar_subquery()
    # (member_pk is never NULL here: the query asks for member_pk IN (...))
    return cast(dict[int, int], dict(session.execute(select(Account.member_pk, Account.balance).where(
        Account.wallet_id == wallet, Account.kind == AVAILABLE, Account.member_pk.in_(list(pks) or [0]))).all()))


def affordable(program: Program, balance: int) -> dict | None:
    """The dearest reward the balance pays for."""
    fits = [r for r in program.reminder_rewards or [] if r["points"] <= balance]
    return max(fits, key=lambda r: r["points"]) if fits else None


def send_reminders(session: Session, program: Program, now: dt.datetime) -> int:
    """Emit the reminders due now (idempotent: a reminder already sent is not sent again)."""
    due = expiring(session, program, now, 3)
    if not due:
        return 0
    sent = set(session.execute(select(ExpiryReminder.member_pk, ExpiryReminder.expires_on, ExpiryReminder.stage)
                               .where(ExpiryReminder.member_pk.in_({pk for pk, _ in due}))).all())
    money = balances(session, program, {pk for pk, _ in due})
    one_month = add_months(now, 1).astimezone(ZoneInfo(program.timezone)).date()
    count = 0
    for (pk, day), points in sorted(due.items()):
        stage = "1m" if day <= one_month else "3m"
        if (pk, day, stage) in sent:
            continue
        session.add(ExpiryReminder(member_pk=pk, expires_on=day, stage=stage, points=points, created_at=now))
        reward = affordable(program, money.get(pk, 0))
        emit(session, program.id, "points.expiring", {
            "points": points, "date": day.isoformat(), "stage": stage, "member_pk": pk, "balance": money.get(pk, 0),
            **({"reward": {"name": reward["name"], "value": str(reward["value"])}} if reward else {})}, pk)
        count += 1
    session.flush()
    return count


def call_list(session: Session, program: Program, now: dt.datetime, min_points: int = CALL_LIST_POINTS,
              days: int = 31) -> list[dict]:
    """Members whose points expire within `days` and whose balance is over `min_points`: for a human call."""
    due: dict[int, list] = defaultdict(list)
    horizon = (now + dt.timedelta(days=days)).astimezone(ZoneInfo(program.timezone)).date()
    for (pk, day), points in expiring(session, program, now, 2).items():
        if day <= horizon:
            due[pk].append((day, points))
    money = balances(session, program, due)
    members = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(list(due) or [0])))}
    rows = [{"member_id": members[pk].member_id, "name": members[pk].name or "", "phone": members[pk].phone or "",
             "balance": money.get(pk, 0), "expiring": sum(p for _, p in items),
             "first_expiry": min(d for d, _ in items).isoformat()}
            for pk, items in due.items() if money.get(pk, 0) > min_points]
    return sorted(rows, key=lambda r: (-r["expiring"], r["member_id"]))
