"""The tier ladder is versioned with the rules: an event is priced with the multiplier in force when it
occurred, a new ladder waits for its effective date, `jifen program apply` changes tiers through a version,
and the announcement names the tier change. On SQLite and PostgreSQL (the `factory` fixture)."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

from jifen.db import run_in_transaction
from jifen.programs import tiers
from jifen.programs.service import get_program
from jifen.rules.service import changes, doc_of, in_force, publish
from tests.conftest import NOW
from tests.support.intake import SEED_001, add_members, configure, send_one

EFFECTIVE = NOW + dt.timedelta(days=31)  # the editor's default: beyond the 30 days' notice


def _tier_bonus(result: dict) -> int:
    return sum(line["points"] for line in result["rules"] if line["rule"] == "tier_bonus")


def _publish_silver(factory, multiplier: str) -> int:
    def tx(s):
        program = get_program(s, "default")
        live = doc_of(in_force(s, program, NOW))
        ladder = live.tiers.model_copy(deep=True)
        ladder.levels[1].earn_multiplier = Decimal(multiplier)
        return publish(s, program, live.model_copy(update={"tiers": ladder}), effective_from=EFFECTIVE, now=NOW,
                       note="silver earns more").version

    return run_in_transaction(factory, tx)


def test_an_event_is_priced_with_the_multiplier_in_force_when_it_occurred(factory):
    configure(factory, now=NOW - dt.timedelta(days=10))
    add_members(factory, "M1")
    first = send_one(factory, "M1", amount="1000.00", order_id="SO-1", at=NOW - dt.timedelta(days=5))
    assert first["tier"] == "silver"  # (the entry tier priced it; it raised the member to silver)
    version = _publish_silver(factory, "2")

    before = send_one(factory, "M1", amount="100.00", order_id="SO-2", at=EFFECTIVE - dt.timedelta(hours=1))
    after = send_one(factory, "M1", amount="100.00", order_id="SO-3", at=EFFECTIVE + dt.timedelta(hours=1))
    # Sent late: received after the new ladder took effect, but it happened before it.
    late = send_one(factory, "M1", amount="100.00", order_id="SO-4", at=EFFECTIVE - dt.timedelta(hours=2),
                    now=EFFECTIVE + dt.timedelta(hours=2))
    assert (_tier_bonus(before), _tier_bonus(after), _tier_bonus(late)) == (10, 100, 10)  # × 1.1, × 2, × 1.1
    assert (before["rule_version"], after["rule_version"]) == (version - 1, version)

    with factory() as s:
        program = get_program(s, "default")
        assert tiers.tier_config(program, NOW).levels[1].earn_multiplier == Decimal("1.1")
        assert tiers.tier_config(program, EFFECTIVE).levels[1].earn_multiplier == Decimal(2)
        new = in_force(s, program, EFFECTIVE)
        diff = changes(program, in_force(s, program, NOW), new)
        # What members are told: the silver tier's terms, before and after; no rule changed.
        assert [(c["code"], c["old"]["earn_multiplier"], c["new"]["earn_multiplier"]) for c in diff["tiers"]] == [
            ("silver", "1.1", "2")]
        assert diff["added"] == diff["changed"] == diff["withdrawn"] == []


def test_program_apply_changes_tiers_through_a_version(factory):
    configure(factory, now=NOW - dt.timedelta(days=10))
    with factory() as s:
        program = get_program(s, "default")
        first = in_force(s, program, NOW).version
        assert doc_of(in_force(s, program, NOW)).tiers == tiers.tier_config(program, NOW)  # carried from the start
    data = copy.deepcopy(SEED_001["tiers"])
    data["levels"][2]["earn_multiplier"] = "1.6"
    done = configure(factory, {"tiers": data, "rules": None}, now=NOW)
    assert done["rule_version"] == first + 1  # the rules in force, with the new ladder
    assert configure(factory, {"tiers": data, "rules": None}, now=NOW)["rule_version"] is None  # nothing new
    with factory() as s:
        program = get_program(s, "default")
        assert tiers.tier_config(program, NOW).levels[2].earn_multiplier == Decimal("1.6")
        assert tiers.tier_config(program, NOW - dt.timedelta(days=1)).levels[2].earn_multiplier == Decimal("1.3")
        assert doc_of(in_force(s, program, NOW)).rules == doc_of(in_force(s, program, NOW - dt.timedelta(days=1))).rules
