"""The balances file of a legacy programme (seed 001's migration), read and checked whole before anything
is written.

CSV, UTF-8, with a header: `member_id,balance` and optionally `points,earned_at,expires_at`.
- `balance`: the member's points in the legacy programme (a whole number ≥ 0). On every row of the member,
  or only on the first (the others leave it empty); where given, the same.
- Without lot columns (or with `points` empty on the member's rows), the balance becomes one lot, earned at
  `earned_at` (default: the import's clock) and expiring at `expires_at` (default: the programme's policy).
- With lots: one row per lot, `points` > 0 on each; the member's lots must add up to its balance.
- Dates: `YYYY-MM-DD` (the programme's local day) or an ISO date-time; never after the import's clock for
  `earned_at`, and `expires_at` after both the clock and `earned_at` (expired points are not a balance).
A member's rows need not be adjacent. Any bad line stops the import with its line number; nothing is written.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from jifen.errors import InvalidRequest
from jifen.members.service import ERASED_PREFIX
from jifen.programs.expiry import expiry_for
from jifen.programs.models import Program

COLUMNS = ("member_id", "balance", "points", "earned_at", "expires_at")
MEMBER_ID_MAX = 64  # members.member_id


@dataclass
class LegacyLot:
    points: int
    earned_at: dt.datetime
    expires_at: dt.datetime | None


@dataclass
class LegacyMember:
    member_id: str
    line: int  # its first line in the file
    balance: int
    rows: int = 0
    lots: list[LegacyLot] = field(default_factory=list)


class BadLine(InvalidRequest):
    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{path.name} line {line}: {message}; nothing was imported", code="invalid_line")


def _whole(text: str, what: str, *, positive: bool) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a whole number") from None
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{what} must be {'above' if positive else 'at least'} 0, not {value}")
    return value


def _when(text: str, what: str, tz: ZoneInfo) -> dt.datetime | None:
    if not text:
        return None
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tz).astimezone(dt.UTC)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a date (YYYY-MM-DD) or an ISO date-time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(dt.UTC)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, restkey="_extra")
            missing = {"member_id", "balance"} - set(reader.fieldnames or ())
            unknown = set(reader.fieldnames or ()) - set(COLUMNS)
            if missing or unknown:
                raise BadLine(path, 1, f"the header must name member_id, balance and optionally points, earned_at, "
                                       f"expires_at (missing: {sorted(missing)}, unknown: {sorted(unknown)})")
            for row in reader:
                if "_extra" in row or None in row.values():
                    raise BadLine(path, reader.line_num, f"expected {len(reader.fieldnames or ())} fields")
                yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start}); nothing was imported",
                             code="invalid_file") from None
    except csv.Error as exc:
        raise InvalidRequest(f"{path.name}: {exc}; nothing was imported", code="invalid_file") from None


def read_balances(path: Path, program: Program, now: dt.datetime) -> list[LegacyMember]:
    """Every member of the file with its lots, in the order of their first line; BadLine at the first problem."""
    if not path.is_file():
        raise InvalidRequest(f"no file {path}", code="invalid_file")
    tz = ZoneInfo(program.timezone)
    members: dict[str, LegacyMember] = {}
    with_points: dict[str, bool] = {}
    for line, row in _rows(path):
        try:
            _take(row, line, members, with_points, program, now, tz)
        except ValueError as exc:
            raise BadLine(path, line, str(exc)) from None
    for member in members.values():
        if with_points[member.member_id]:
            total = sum(lot.points for lot in member.lots)
            if total != member.balance:
                raise BadLine(path, member.line, f"member {member.member_id!r}: its lots add up to {total}, "
                                                 f"not its balance {member.balance}")
        elif member.balance == 0:
            member.lots = []
    return list(members.values())


def _take(row: dict[str, str], line: int, members: dict[str, LegacyMember], with_points: dict[str, bool],
          program: Program, now: dt.datetime, tz: ZoneInfo) -> None:
    mid = row["member_id"]
    if not mid or len(mid) > MEMBER_ID_MAX:
        raise ValueError(f"member_id must be 1 to {MEMBER_ID_MAX} characters")
    if mid.startswith(ERASED_PREFIX):
        raise ValueError(f"member ids starting with {ERASED_PREFIX!r} are reserved for erased members")
    balance = _whole(row["balance"], "balance", positive=False) if row["balance"] else None
    member = members.get(mid)
    if member is None:
        if balance is None:
            raise ValueError(f"the first row of member {mid!r} needs its balance")
        member = members[mid] = LegacyMember(mid, line, balance)
    elif balance is not None and balance != member.balance:
        raise ValueError(f"member {mid!r} has balance {member.balance} on line {member.line}, {balance} here")
    has_points = bool(row.get("points"))
    if with_points.setdefault(mid, has_points) != has_points or (member.rows and not has_points):
        raise ValueError(f"member {mid!r}: either every row is a lot with its points, or one row holds the balance")
    member.rows += 1
    points = _whole(row["points"], "points", positive=True) if has_points else member.balance
    earned = _when(row.get("earned_at", ""), "earned_at", tz) or now
    if earned > now:
        raise ValueError(f"earned_at {earned.isoformat()} is after the import's clock {now.isoformat()}")
    expires = _when(row.get("expires_at", ""), "expires_at", tz)
    if expires is None:
        expires = expiry_for(program, earned)
        if expires is not None and expires <= now:
            raise ValueError(f"points earned {earned.date()} expired on {expires.date()} under the programme's "
                             f"policy: give the expires_at they have in the legacy programme")
    elif expires <= now or expires <= earned:
        raise ValueError(f"expires_at {expires.isoformat()} must be after earned_at and the import's clock")
    member.lots.append(LegacyLot(points, earned, expires))
