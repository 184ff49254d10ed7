"""A named programme-wide budget spent outside the event intake (a campaign's discount in the points mall):
the same usage row the intake locks (`budget:<name>`, member 0, period 'all'), taken by a conditional
UPDATE — `points + n <= limit` — so concurrent takers queue on the row and never pass the limit."""

from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from jifen.db import upsert
from jifen.rules.models import RuleUsage


def of_campaign(code: str) -> str:
    """A campaign's rule and its budget are both named `campaign_<code>`."""
    return f"campaign_{code}"


def _row(name: str):
    return (RuleUsage.program_id == bindparam("program"), RuleUsage.key == f"budget:{name}",
            RuleUsage.member_pk == 0, RuleUsage.period == "all")


def take(session: Session, program_id: int, name: str, points: int, limit: int) -> bool:
    """Count `points` against the budget if they fit under `limit` (all or nothing)."""
    session.execute(upsert(session, RuleUsage).on_conflict_do_nothing(), [
        {"program_id": program_id, "key": f"budget:{name}", "member_pk": 0, "period": "all", "points": 0}])
    taken = session.execute(update(RuleUsage).where(*_row(name), RuleUsage.points + points <= limit)
                            .values(points=RuleUsage.points + points).returning(RuleUsage.points),
                            {"program": program_id}).first()
    return taken is not None


def give_back(session: Session, program_id: int, name: str, points: int) -> None:
    """A cancelled or refunded order's share returns to the budget."""
    session.execute(update(RuleUsage).where(*_row(name)).values(points=RuleUsage.points - points),
                    {"program": program_id})


def used(session: Session, program_id: int, name: str) -> int:
    return int(session.scalar(select(RuleUsage.points).where(*_row(name)), {"program": program_id}) or 0)
