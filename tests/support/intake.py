"""Helpers for tests of the event intake: a configured programme and events sent as the API sends them."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from decimal import Decimal

import yaml

from jifen.db import run_in_transaction
from jifen.events.schemas import EventIn
from jifen.flows.intake import ingest
from jifen.members.service import create_member
from jifen.programs.config import EXAMPLES, ProgramConfig
from jifen.programs.service import apply_config, get_program
from tests.conftest import NOW

SEED_001 = yaml.safe_load((EXAMPLES / "seed001.yaml").read_text(encoding="utf-8"))
_ids = itertools.count(1)


def configure(factory, changes: dict | None = None, now=NOW) -> dict:
    """The demo programme's configuration (seed 001), with top-level keys replaced by `changes`."""
    data = copy.deepcopy(SEED_001) | (changes or {})
    cfg = ProgramConfig.model_validate(data)
    return run_in_transaction(factory, lambda s: apply_config(s, cfg, now=now, actor="test"))


def add_members(factory, *ids, joined_at=None, birthday=None):
    def tx(s):
        program = get_program(s, "default")
        for mid in ids:
            create_member(s, program, mid, joined_at=joined_at or NOW - dt.timedelta(days=400), birthday=birthday)

    run_in_transaction(factory, tx)


def event(member_id: str, type_: str = "purchase", at: dt.datetime = NOW, **fields) -> EventIn:
    if "amount" in fields and fields["amount"] is not None:
        fields["amount"] = Decimal(str(fields["amount"]))
    return EventIn(event_id=fields.pop("event_id", f"ev-{next(_ids)}"), member_id=member_id, type=type_,
                   occurred_at=at, **fields)


def send(factory, *events: EventIn, now=None, strict=True) -> list[dict]:
    now = now or max(e.occurred_at for e in events)
    return run_in_transaction(factory, lambda s: ingest(s, get_program(s, "default"), list(events), now=now,
                                                        actor="test", strict=strict))


def send_one(factory, *args, now=None, **fields) -> dict:
    return send(factory, event(*args, **fields), now=now)[0]


def two_recent_purchases(factory, now: dt.datetime, second: str) -> None:
    """Seed 001 configured two days before `now`; M2 spends ¥200 two hours before it, M1 `second` one hour
    before (the events a 30-day simulation in the console replays)."""
    configure(factory, now=now - dt.timedelta(days=2))
    send_one(factory, "M2", amount="200.00", order_id="SO-1", at=now - dt.timedelta(hours=2), now=now)
    send_one(factory, "M1", amount=second, order_id="SO-2", at=now - dt.timedelta(hours=1), now=now)
