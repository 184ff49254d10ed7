"""Engagement at a glance for the console: tasks with their completions, the check-in streaks members are
on, referrals and how many invitees bought, red packets and gifts, teams. Counts in SQL (grouped, one
query per figure) and the streaks column-wise in Polars; reads only."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from jifen.engagement import gifts, teams
from jifen.engagement.models import AwardBudget, RedPacket, RedPacketShare, Referral, Task, TaskProgress, Team, TeamMember
from jifen.events.models import Event
from jifen.lazy import lazy_import
from jifen.ledger.models import JournalEntry
from jifen.members.models import Member
from jifen.programs.models import Program

if TYPE_CHECKING:
    import polars as pl
else:
    pl = lazy_import("polars")

# Streak lengths as the page groups them: (label key, lowest, highest or None).
STREAK_BANDS = (("1", 1, 1), ("2-3", 2, 3), ("4-6", 4, 6), ("7-13", 7, 13), ("14-29", 14, 29), ("30+", 30, None))
RECENT_DAYS = 30


def task_table(session: Session, program: Program, now: dt.datetime) -> list[dict]:
    """Every task with its completions (all time, and in the last RECENT_DAYS days) and members who did it."""
    since = now - dt.timedelta(days=RECENT_DAYS)
    done = TaskProgress.completed_at.is_not(None)
    counts = (select(TaskProgress.task_id, func.count().label("completions"),
                     func.count(func.distinct(TaskProgress.member_pk)).label("members"),
                     func.count().filter(TaskProgress.completed_at >= since).label("recent"))
              .where(done).group_by(TaskProgress.task_id).subquery())
    rows = session.execute(select(Task, counts.c.completions, counts.c.members, counts.c.recent)
                           .outerjoin(counts, counts.c.task_id == Task.id)
                           .where(Task.program_id == program.id).order_by(Task.code)).all()
    return [{"code": t.code, "name": t.name, "period": t.period, "events": list(t.events), "measure": t.measure,
             "target": t.target, "points": t.points, "badge": t.badge, "requires": t.requires, "active": t.active,
             "completions": c or 0, "members": m or 0, "recent": r or 0} for t, c, m, r in rows]


def streaks(session: Session, program: Program, now: dt.datetime) -> pl.DataFrame:
    """Per member who ever checked in: the run of consecutive programme days ending at their last check-in,
    that day, and whether the streak is alive (the last check-in today or yesterday)."""
    tz = ZoneInfo(program.timezone)
    rows = session.execute(select(Event.member_pk, Event.occurred_at)
                           .where(Event.program_id == program.id, Event.type == "check_in")).all()
    days = (pl.DataFrame(rows, schema={"member_pk": pl.Int64, "at": pl.Datetime("us", "UTC")}, orient="row")
            .select("member_pk", pl.col("at").dt.convert_time_zone(program.timezone).dt.date().alias("day"))
            .unique().sort("member_pk", "day"))
    gap = (pl.col("day") - pl.col("day").shift(1).over("member_pk")).dt.total_days()
    runs = days.with_columns((gap.fill_null(0) != 1).cast(pl.Int32).cum_sum().over("member_pk").alias("run"))
    today = now.astimezone(tz).date()
    return (runs.group_by("member_pk", "run").agg(pl.len().alias("streak"), pl.col("day").max().alias("last"))
            .sort("last").group_by("member_pk").last()
            .with_columns((pl.col("last") >= today - dt.timedelta(days=1)).alias("alive"))
            .select("member_pk", "streak", "last", "alive").sort("member_pk"))


def streak_distribution(table: pl.DataFrame) -> list[dict]:
    """Members on a live streak per length band (streaks()), and those whose streak has lapsed."""
    alive = table.filter(pl.col("alive"))["streak"]
    out = [{"band": key, "members": int(((alive >= low) & (alive <= high if high else alive >= low)).sum())}
           for key, low, high in STREAK_BANDS]
    return out + [{"band": "lapsed", "members": int((~table["alive"]).sum())}]


def check_in_figures(session: Session, program: Program, now: dt.datetime) -> dict:
    table = streaks(session, program, now)
    today = now.astimezone(ZoneInfo(program.timezone)).date()
    return {"members": table.height, "today": int((table["last"] == today).sum()),
            "longest": int(cast(int, table["streak"].max() or 0)), "bands": streak_distribution(table)}


def referral_figures(session: Session, program: Program, now: dt.datetime, top: int = 10) -> dict:
    """Invitations accepted, invitees who then bought (conversions), and the inviters with the most."""
    bought = (select(Event.member_pk).where(Event.program_id == program.id, Event.type == "purchase")
              .distinct().subquery())
    base = (select(Referral.inviter_pk, Referral.invitee_pk, Referral.created_at, bought.c.member_pk)
            .outerjoin(bought, bought.c.member_pk == Referral.invitee_pk)
            .where(Referral.program_id == program.id).subquery())
    invites, conversions, recent, inviters = session.execute(select(
        func.count(), func.count(base.c.member_pk),
        func.count().filter(base.c.created_at >= now - dt.timedelta(days=RECENT_DAYS)),
        func.count(func.distinct(base.c.inviter_pk)))).one()
    inviter = aliased(Member)
    leaders = session.execute(
        select(inviter.member_id, func.count().label("invited"), func.count(bought.c.member_pk).label("converted"))
        .select_from(Referral).join(inviter, inviter.id == Referral.inviter_pk)
        .outerjoin(bought, bought.c.member_pk == Referral.invitee_pk)
        .where(Referral.program_id == program.id).group_by(inviter.member_id)
        .order_by(func.count().desc(), inviter.member_id).limit(top)).all()
    return {"invites": invites, "conversions": conversions, "recent": recent, "inviters": inviters,
            "conversion_rate": round(conversions / invites, 4) if invites else None,
            "top": [{"member_id": m, "invited": i, "converted": c} for m, i, c in leaders]}


def gift_figures(session: Session, program: Program) -> dict:
    """Red packets by state (packets, points, shares claimed), gifts between friends, UGC budgets."""
    claimed = (select(RedPacketShare.packet_id, func.count(RedPacketShare.claimed_by).label("claimed"),
                      func.coalesce(func.sum(RedPacketShare.points).filter(RedPacketShare.claimed_by.is_not(None)), 0)
                      .label("claimed_points")).group_by(RedPacketShare.packet_id).subquery())
    packets = session.execute(
        select(RedPacket.status, func.count(), func.coalesce(func.sum(RedPacket.points), 0),
               func.coalesce(func.sum(RedPacket.shares), 0), func.coalesce(func.sum(claimed.c.claimed), 0),
               func.coalesce(func.sum(claimed.c.claimed_points), 0))
        .outerjoin(claimed, claimed.c.packet_id == RedPacket.id)
        .where(RedPacket.program_id == program.id).group_by(RedPacket.status).order_by(RedPacket.status)).all()
    given, given_points = session.execute(select(func.count(), func.coalesce(func.sum(JournalEntry.points), 0)).where(
        JournalEntry.program_id == program.id, JournalEntry.type == "transfer",
        JournalEntry.reference == gifts.GIFT)).one()
    budget, used = session.execute(select(func.coalesce(func.sum(AwardBudget.budget), 0),
                                          func.coalesce(func.sum(AwardBudget.used), 0))
                                   .join(Member, Member.id == AwardBudget.member_pk)
                                   .where(Member.program_id == program.id)).one()
    return {"red_packets": [{"status": st, "packets": n, "points": p, "shares": sh, "claimed": c,
                             "claimed_points": cp} for st, n, p, sh, c, cp in packets],
            "gifts": given, "gift_points": int(given_points), "ugc_budget": int(budget), "ugc_used": int(used)}


def team_table(session: Session, program: Program, now: dt.datetime) -> list[dict]:
    """Every team: captain, size, goal, points its members earned in the last RECENT_DAYS days (teams.board)."""
    sizes = (select(TeamMember.team_id, func.count().label("size")).group_by(TeamMember.team_id).subquery())
    rows = session.execute(select(Team.code, Team.name, Member.member_id, Team.goal, func.coalesce(sizes.c.size, 0))
                           .join(Member, Member.id == Team.captain_pk).outerjoin(sizes, sizes.c.team_id == Team.id)
                           .where(Team.program_id == program.id).order_by(Team.code)).all()
    points = {r["team"]: r["points"] for r in teams.board(session, program, now - dt.timedelta(days=RECENT_DAYS),
                                                          limit=max(len(rows), 1))}
    return [{"code": code, "name": name, "captain": captain, "size": size, "goal": goal,
             "recent_points": points.get(code, 0)} for code, name, captain, goal, size in rows]
