"""Points leaderboards in Redis sorted sets, for millions of members: every `points.awarded` outbox
message is added (ZINCRBY) to the boards of the day, week, month and quarter it falls in, once — a Lua
script remembers the delivery ids it applied, so the outbox's at-least-once delivery counts each award
exactly once. Reading a rank is O(log n) (ZREVRANK). `rebuild` refills the current boards from the journal.
Without JIFEN_REDIS_URL the boards are SQL (leaderboard.py)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, cast
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.engagement.leaderboard import _start
from jifen.ledger.models import JournalEntry
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.security.pii import mask

PERIODS = ("day", "week", "month", "quarter")
SEEN_DAYS = 3  # delivery ids are remembered this long: redeliveries come within minutes
_APPLY = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  for i = 2, #KEYS do
    redis.call('ZINCRBY', KEYS[i], ARGV[3], ARGV[2])
    redis.call('EXPIRE', KEYS[i], ARGV[5])
  end
  return 1
end
return 0
"""


@functools.lru_cache(maxsize=4)
def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def period_key(program: Program, period: str, at: dt.datetime) -> str:
    start = _start(period, at, ZoneInfo(program.timezone)).astimezone(ZoneInfo(program.timezone))
    return f"jifen:{program.code}:board:{period}:{start:%Y-%m-%d}"


def apply_award(url: str, program: Program, delivery_id: int, member_id: str, points: int, at: dt.datetime) -> bool:
    """Count one award on every board it belongs to; False if this delivery was already counted."""
    keys = [f"jifen:{program.code}:board-seen:{dt.datetime.now(dt.UTC):%Y-%m-%d}"]
    keys += [period_key(program, p, at) for p in PERIODS]
    return bool(client(url).eval(_APPLY, len(keys), *keys, delivery_id, member_id, points, SEEN_DAYS * 86400,
                                 400 * 86400))


def board(url: str, session: Session, program: Program, period: str, now: dt.datetime, limit: int,
          member: Member | None = None) -> dict:
    r, key = client(url), period_key(program, period, now)
    # redis-py types a command's reply as Awaitable[Any] | Any (one signature for sync and async clients).
    top = cast(list[tuple[str, float]], r.zrevrange(key, 0, limit - 1, withscores=True))
    names = dict(session.execute(select(Member.member_id, Member.name).where(
        Member.program_id == program.id, Member.member_id.in_([m for m, _ in top] or [""]))).all())
    out: dict[str, Any] = {
        "period": period, "since": _start(period, now, ZoneInfo(program.timezone)).isoformat(), "source": "redis",
           "top": [{"rank": i + 1, "member_id": m, "name": mask(names.get(m)), "points": int(p)}
                   for i, (m, p) in enumerate(top)]}
    if member is not None:
        rank, score = cast(int | None, r.zrevrank(key, member.member_id)), r.zscore(key, member.member_id)
        out["me"] = {"member_id": member.member_id, "points": int(score or 0),
                     "rank": rank + 1 if rank is not None else None}
    return out


def rebuild(url: str, session: Session, program: Program, now: dt.datetime) -> dict[str, int]:
    """Refill the current boards from the journal (after Redis was added or lost its data)."""
    r, done = client(url), {}
    for period in PERIODS:
        since = _start(period, now, ZoneInfo(program.timezone))
        rows = session.execute(select(Member.member_id, func.sum(JournalEntry.points))
                               .join(Member, Member.id == JournalEntry.member_pk)
                               .where(JournalEntry.program_id == program.id, JournalEntry.type == "award",
                                      JournalEntry.occurred_at >= since).group_by(Member.member_id)).all()
        key = period_key(program, period, now)
        with r.pipeline() as pipe:
            pipe.delete(key)
            for i in range(0, len(rows), 10_000):
                pipe.zadd(key, {m: int(p) for m, p in rows[i:i + 10_000]})
            pipe.expire(key, 400 * 86400)
            pipe.execute()
        done[period] = len(rows)
    return done
