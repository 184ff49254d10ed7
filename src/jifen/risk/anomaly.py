"""The anomaly model: an IsolationForest (scikit-learn) over per-transaction features, trained on the
programme's recent transactions (`jifen risk train`, and daily by the job runner) and stored in the
database (risk_models), so every process scores with the same model. The features of a transaction are
computed by `window_features` both for training and for scoring a batch — one vectorised pass, no
per-row queries."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from jifen.errors import InvalidRequest
from jifen.events.models import Event
from jifen.lazy import lazy_import
from jifen.mall.models import Redemption
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.risk import devices
from jifen.risk.forest import Forest
from jifen.risk.models import RiskModel

if TYPE_CHECKING:
    import joblib
    import numpy as np
    from sklearn import ensemble
else:
    joblib = lazy_import("joblib")
    np = lazy_import("numpy")
    ensemble = lazy_import("sklearn.ensemble")

FEATURES = ["points_last_minute", "points_last_hour", "events_last_hour", "hour_of_day", "accounts_on_device",
            "accounts_on_ip", "account_age_hours", "amount", "is_spend"]
_LINEAR = {"hour_of_day", "is_spend"}  # the others are heavy-tailed counts: compared on a log scale
MIN_SAMPLES = 200
SCALE = 0.15  # how far past the model's 1 % outlier boundary a transaction must be for the full weight
MAX_AGE_HOURS = 3 * 365 * 24


@dataclass
class Timeline:
    """Transactions of some members in time order (history first on ties), as plain arrays."""

    member: np.ndarray  # member pk
    t: np.ndarray  # seconds since the epoch
    points: np.ndarray  # points an event earned (0 for a spend or redemption)
    nonpurchase: np.ndarray  # points earned by an action other than a purchase
    is_event: np.ndarray
    amount: np.ndarray  # the transaction's own points
    is_spend: np.ndarray
    joined: np.ndarray  # the member's joined_at, seconds
    device_n: np.ndarray
    ip_n: np.ndarray
    hour: np.ndarray

    @classmethod
    def of(cls, rows: list[tuple]) -> Timeline:
        cols = list(zip(*rows, strict=True)) if rows else [()] * 11
        return cls(*(np.asarray(c, dtype=float) for c in cols))


def _window(key: np.ndarray, values: np.ndarray, width: float) -> np.ndarray:
    """For each row, the sum of `values` over the rows of the same member in (t - width, t] up to it."""
    cs = np.concatenate([[0.0], np.cumsum(values)])
    left = np.searchsorted(key, key - width, side="right")
    return cs[np.arange(1, len(key) + 1)] - cs[left]


def window_features(tl: Timeline) -> np.ndarray:
    """The FEATURES matrix of every row of the timeline (rows sorted by member, then time)."""
    if len(tl.t) == 0:
        return np.zeros((0, len(FEATURES)))
    # One monotonic key: members far apart, time within a member (sorted by the caller).
    rank = np.unique(tl.member, return_inverse=True)[1]
    key = rank * 1e11 + (tl.t - tl.t.min())
    return np.column_stack([
        _window(key, tl.nonpurchase, 60), _window(key, tl.points, 3600), _window(key, tl.is_event, 3600),
        tl.hour, tl.device_n, tl.ip_n, np.clip((tl.t - tl.joined) / 3600, 0, MAX_AGE_HOURS), tl.amount, tl.is_spend])


def _prepare(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    for j, name in enumerate(FEATURES):
        if name not in _LINEAR:
            x[:, j] = np.log1p(np.maximum(x[:, j], 0))
    return x


def row(member: Member, at: dt.datetime, tz: ZoneInfo, *, points: int = 0, nonpurchase: bool = False,
        is_event: bool = True, amount: int = 0, is_spend: bool = False, device_n: int = 0, ip_n: int = 0) -> tuple:
    """One timeline row (see Timeline)."""
    return (member.id, at.timestamp(), points, points if nonpurchase else 0, int(is_event), amount, int(is_spend),
            member.joined_at.timestamp(), device_n, ip_n, at.astimezone(tz).hour)


# ---- the stored model ------------------------------------------------------------------------

_LATEST = select(func.max(RiskModel.id)).where(RiskModel.program_id == bindparam("program"))
_cache: dict[int, tuple[int, object]] = {}


def current(session: Session, program_id: int):
    """The programme's newest model (unpickled and laid out as arrays once per process and model), or None."""
    model_id = session.scalar(_LATEST, {"program": program_id})
    if model_id is None:
        return None
    cached = _cache.get(program_id)
    if cached is None or cached[0] != model_id:
        stored = session.get_one(RiskModel, model_id)
        cached = (model_id, Forest(joblib.load(io.BytesIO(stored.model))))
        _cache[program_id] = cached
    return cached[1]


def contributions(model, x: np.ndarray, weight: int) -> np.ndarray:
    """Score points per row: 0 inside the model's normal region, rising to `weight` beyond it."""
    if model is None or len(x) == 0 or weight == 0:
        return np.zeros(len(x), dtype=int)
    beyond = -(model.score_samples(_prepare(x)) - model.offset_)
    return np.rint(weight * np.clip(beyond / SCALE, 0, 1)).astype(int)


def training_timeline(session: Session, program: Program, now: dt.datetime, days: int, limit: int) -> Timeline:
    """The programme's transactions of the last `days` (the newest `limit` of each kind) as a timeline."""
    since = now - dt.timedelta(days=days)
    events = session.execute(select(Event.member_pk, Event.occurred_at, Event.points, Event.type).where(
        Event.program_id == program.id, Event.occurred_at > since, Event.occurred_at <= now)
        .order_by(Event.occurred_at.desc()).limit(limit)).all()
    orders = session.execute(select(Redemption.member_pk, Redemption.created_at, Redemption.points).where(
        Redemption.program_id == program.id, Redemption.created_at > since, Redemption.created_at <= now)
        .order_by(Redemption.created_at.desc()).limit(limit)).all()
    pks = sorted({r[0] for r in events} | {r[0] for r in orders})
    joined: dict[int, dt.datetime] = {}
    for start in range(0, len(pks), 5000):
        chunk = pks[start:start + 5000]
        joined.update(session.execute(select(Member.id, Member.joined_at).where(Member.id.in_(chunk))).all())
    crowd = devices.busiest(session, program.id, pks)
    tz = ZoneInfo(program.timezone)
    rows = []
    for pk, at, points, type_ in events:
        d, i = crowd.get(pk, (0, 0))
        rows.append((pk, at.timestamp(), points, points if type_ != "purchase" else 0, 1, points, 0,
                     joined[pk].timestamp(), d, i, at.astimezone(tz).hour))
    for pk, at, points in orders:
        d, i = crowd.get(pk, (0, 0))
        rows.append((pk, at.timestamp(), 0, 0, 0, points, 1, joined[pk].timestamp(), d, i, at.astimezone(tz).hour))
    rows.sort(key=lambda r: (r[0], r[1]))
    return Timeline.of(rows)


def train(session: Session, program: Program, now: dt.datetime, *, days: int = 30, limit: int = 50_000,
          min_samples: int = MIN_SAMPLES) -> RiskModel:
    """Fit the model on the programme's recent earning events and redemptions; stored as the newest."""
    tl = training_timeline(session, program, now, days, limit)
    x = window_features(tl)
    samples = x[(tl.amount > 0)]
    if len(samples) < min_samples:
        raise InvalidRequest(f"only {len(samples)} transactions in the last {days} days; at least {min_samples} "
                             "are needed to train the anomaly model", code="not_enough_data")
    params = {"n_estimators": 100, "contamination": 0.01, "random_state": 0}
    model = ensemble.IsolationForest(**params).fit(_prepare(samples))
    buf = io.BytesIO()
    joblib.dump(model, buf)
    stored = RiskModel(program_id=program.id, trained_at=now, n_samples=len(samples), features=FEATURES,
                       params=params | {"days": days}, model=buf.getvalue())
    session.add(stored)
    session.flush()
    return stored


def train_due(session: Session, program: Program, now: dt.datetime, every: dt.timedelta = dt.timedelta(days=1)) -> bool:
    """The job runner's daily training: when the newest model is older than `every` and there is enough data."""
    last = session.scalar(select(func.max(RiskModel.trained_at)).where(RiskModel.program_id == program.id))
    if last is not None and now - last < every:
        return False
    try:
        train(session, program, now)
    except InvalidRequest:
        return False
    return True
