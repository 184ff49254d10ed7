"""Risk score per transaction (0-1000) with named reasons, and the action it leads to.

Every earn (event), spend and redemption passes here, a batch at a time: `Assessor.prepare` (before
anything is stored: device sightings upserted, restrictions, device/IP crowds and the members' last hour
read, one query each) and `Assessor.score` (once the points are known: the rule reasons, and the anomaly
model over the whole batch in one vectorised call). The action is the strongest of the fired rules' own
actions and the score's threshold: allow < flag < review < block. A purchase is never blocked by a score
and never counted by the per-minute earning limit (it costs money, and is often worth more than 100)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from jifen.db import among, in_spans
from jifen.errors import Forbidden
from jifen.events.models import Event
from jifen.mall.models import Redemption
from jifen.members.models import Member
from jifen.programs.config import RISK_WEIGHTS, RiskConfig
from jifen.programs.models import Program
from jifen.risk import anomaly, devices, restrictions
from jifen.risk.anomaly import Timeline, row, window_features

ACTIONS = ("allow", "flag", "review", "block")
RANK = {a: n for n, a in enumerate(ACTIONS)}

_HISTORY = select(Event.member_pk, Event.occurred_at, Event.points, Event.type).where(
    among(Event.member_pk, "members"), in_spans(Event.occurred_at, "spans"),
    # the bounds of all the spans too: a range the (member, type, time) index can seek, where the spans alone
    # would have each member's whole history read and filtered
    Event.occurred_at > bindparam("first"), Event.occurred_at <= bindparam("last"))
WINDOW = dt.timedelta(hours=1)  # the longest look-back of a feature


def spans(times: list[dt.datetime], width: dt.timedelta = WINDOW) -> list[tuple[dt.datetime, dt.datetime]]:
    """The union of (t - width, t] over the batch's times, as few ranges as possible: a batch spread over a
    month (an import) reads its members' hours around each event, not the whole month."""
    out: list[list[dt.datetime]] = []
    for t in sorted(times):
        if out and t - width <= out[-1][1]:
            out[-1][1] = t
        else:
            out.append([t - width, t])
    return [(lo, hi) for lo, hi in out]
_REDEEMED = select(Redemption.member_pk, func.count()).where(
    among(Redemption.member_pk, "members"), Redemption.created_at > bindparam("since"),
    Redemption.status != "cancelled").group_by(Redemption.member_pk)


def risk_config(program: Program) -> RiskConfig:
    return RiskConfig.model_validate(program.risk or {})


@dataclass
class Tx:
    """One transaction to score. kind: earn (an event), spend, redeem."""

    member: Member
    kind: str
    at: dt.datetime
    points: int = 0
    event_type: str | None = None
    sightings: list[tuple[str, str]] = field(default_factory=list)
    honeypot: bool = False


@dataclass
class Verdict:
    score: int
    action: str
    reasons: list[dict]
    case_id: int | None = None

    @property
    def rule(self) -> str | None:
        """The reason that decided the action (a rule whose own action it is), else the heaviest."""
        if not self.reasons:
            return None
        decisive = [r for r in self.reasons if r.get("action") == self.action]
        return max(decisive or self.reasons, key=lambda r: r["weight"])["code"]

    def view(self) -> dict:
        return {"score": self.score, "action": self.action, "reasons": self.reasons,
                **({"case_id": self.case_id} if self.case_id else {})}


class RiskBlocked(Forbidden):
    """403 risk_blocked. Carries the verdict so the caller can record the case after rolling back."""

    code = "risk_blocked"  # (a class attribute: a refusal recorded in a batch's result is recognised by it)

    def __init__(self, verdict: Verdict, tx: Tx, subject_kind: str, subject_id: str | None = None):
        super().__init__(f"refused by risk control (score {verdict.score}: {verdict.rule})",
                         details={"risk": verdict.view()})
        # Plain values: the session the member came from may be rolled back by the time the case is written.
        self.who, self.at = (tx.member.id, tx.member.member_id), tx.at
        self.verdict, self.subject_kind, self.subject_id = verdict, subject_kind, subject_id


class Assessor:
    """Scores the transactions of one request or batch; see the module's docstring."""

    def __init__(self, session: Session, program: Program, now: dt.datetime):
        self.session, self.program, self.now = session, program, now
        self.cfg = risk_config(program)
        self.tz = ZoneInfo(program.timezone)
        self.restricted: dict[int, int] = {}
        self.before: set[int] = set()
        self.crowd: dict[tuple[str, str], int] = {}
        self.history: list[tuple] = []
        self.redeemed: dict[int, int] = {}

    def prepare(self, txs: list[Tx]) -> None:
        """Before anything is stored: sightings recorded, then what scoring needs read, a query each."""
        s, pks = self.session, sorted({t.member.id for t in txs})
        if not txs:
            return
        devices.record(s, self.program.id, [(t.member.id, k, v, t.at) for t in txs for k, v in t.sightings])
        self.restricted, self.before = restrictions.standing(s, pks, self.now)
        pairs = {p for t in txs for p in t.sightings}
        self.crowd = devices.accounts_on(s, self.program.id, pairs) if pairs else {}
        members = {m.id: m for m in (t.member for t in txs)}
        windows = spans([t.at for t in txs])
        self.history = [row(members[pk], at, self.tz, points=points, nonpurchase=type_ != "purchase", amount=points)
                        for pk, at, points, type_ in s.execute(_HISTORY, {
                            "members": pks, "spans": windows, "first": windows[0][0], "last": windows[-1][1]})]
        redeemers = sorted({t.member.id for t in txs if t.kind == "redeem"})
        if redeemers:
            self.redeemed = dict(s.execute(_REDEEMED, {"members": redeemers,
                                                       "since": self.now - dt.timedelta(hours=1)}).all())

    def refused(self, tx: Tx) -> bool:
        """Under a blacklist or freeze (refunds still go through: they only take points back)."""
        return tx.member.id in self.restricted and tx.event_type != "refund"

    def score(self, txs: list[Tx], scored: list[bool] | None = None) -> list[Verdict | None]:
        """A verdict per transaction (None where `scored` is False: events that earned nothing still count
        towards the others' windows). The anomaly model scores the whole batch in one call."""
        if not txs:
            return []
        scored = scored or [True] * len(txs)
        rows = [(r, 0, n) for n, r in enumerate(self.history)]
        for n, t in enumerate(txs):
            device_n = max((self.crowd.get(p, 1) for p in t.sightings if p[0] == "device"), default=0)
            ip_n = max((self.crowd.get(p, 1) for p in t.sightings if p[0] == "ip"), default=0)
            earn = t.points if t.kind == "earn" else 0
            rows.append((row(t.member, t.at, self.tz, points=earn, nonpurchase=t.event_type != "purchase",
                             is_event=t.kind == "earn", amount=t.points, is_spend=t.kind != "earn", device_n=device_n,
                             ip_n=ip_n), 1, n))
        rows.sort(key=lambda r: (r[0][0], r[0][1], r[1], r[2]))
        x = window_features(Timeline.of([r[0] for r in rows]))
        at_row = {r[2]: i for i, r in enumerate(rows) if r[1] == 1}
        x = x[[at_row[n] for n in range(len(txs))]]
        todo = [n for n in range(len(txs)) if scored[n]]
        model = anomaly.current(self.session, self.program.id) if todo else None
        extra = anomaly.contributions(model, x[todo], self.cfg.anomaly_weight)
        out: list[Verdict | None] = [None] * len(txs)
        for k, n in enumerate(todo):
            out[n] = self._verdict(txs[n], dict(zip(anomaly.FEATURES, x[n].tolist(), strict=True)), int(extra[k]))
        return out

    def _verdict(self, t: Tx, f: dict, anomalous: int) -> Verdict:
        cfg, weights = self.cfg, RISK_WEIGHTS | self.cfg.weights
        reasons: list[dict] = []

        def fire(code: str, action: str | None = None, **details) -> None:
            reasons.append({"code": code, "weight": weights[code], **({"action": action} if action else {}),
                            **details})

        if t.kind == "earn" and t.event_type != "purchase" and f["points_last_minute"] > cfg.earn_points_per_minute.limit:
            fire("earn_per_minute", cfg.earn_points_per_minute.action, value=int(f["points_last_minute"]),
                 limit=cfg.earn_points_per_minute.limit)
        if t.kind == "redeem":
            recent = self.redeemed.get(t.member.id, 0)
            if recent >= cfg.redemptions_per_hour.limit:
                fire("redemptions_per_hour", cfg.redemptions_per_hour.action, value=recent + 1,
                     limit=cfg.redemptions_per_hour.limit)
        if f["accounts_on_device"] >= cfg.accounts_per_device.limit:
            fire("shared_device", cfg.accounts_per_device.action, value=int(f["accounts_on_device"]),
                 limit=cfg.accounts_per_device.limit)
        if f["accounts_on_ip"] >= cfg.accounts_per_ip.limit:
            fire("shared_ip", cfg.accounts_per_ip.action, value=int(f["accounts_on_ip"]), limit=cfg.accounts_per_ip.limit)
        if f["account_age_hours"] < cfg.new_account_hours:
            fire("new_account", value=round(f["account_age_hours"], 1))
        if t.member.id in self.before:
            fire("restricted_before")
        if t.honeypot:
            fire("honeypot", cfg.honeypot_action)
        if anomalous:
            reasons.append({"code": "anomaly", "weight": anomalous})
        score = min(1000, sum(r["weight"] for r in reasons))
        by_score = next((a for a in ("block", "review", "flag") if score >= getattr(cfg.thresholds, a)), "allow")
        # mypy cannot use the overloaded dict.get as a key function.
        action = max([by_score, *(r["action"] for r in reasons if "action" in r)], key=RANK.get)  # type: ignore[arg-type]
        if t.event_type == "purchase" and action == "block":
            action = "review"  # a genuine purchase is never refused: at most its points wait for a person
        return Verdict(score, action, reasons)


def assess_one(session: Session, program: Program, now: dt.datetime, tx: Tx, subject_kind: str) -> Verdict:
    """Score a single spend or redemption: 403 member_restricted / risk_blocked, or its verdict."""
    risk = Assessor(session, program, now)
    risk.prepare([tx])
    if risk.refused(tx):
        raise restrictions.refusal(tx.member.member_id)
    (verdict,) = risk.score([tx])
    assert verdict is not None  # without `scored`, every transaction is scored
    if verdict.action == "block":
        raise RiskBlocked(verdict, tx, subject_kind)
    return verdict
