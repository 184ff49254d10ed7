"""Is the schema ready to be distributed by member on Citus? Lists every table by the role it would take and,
for the tables written per member, whether the distribution column is there and in every unique key (Citus
enforces a unique key across shards only when it holds the distribution column). Exit 1 while gaps remain.

    python deploy/citus_check.py          (reads the models: no database needed)

Distribution column: `member_pk` (`id` in `members`): member ids are global, so the programme is implied and
one column co-locates a member's events, entries, postings, lots and balances on one shard.
"""

from __future__ import annotations

import sys

from sqlalchemy import Table, UniqueConstraint

from jifen.models import metadata

# Written per member on the hot path: distributed by member, co-located.
PER_MEMBER = {"members", "accounts", "events", "journal_entries", "postings", "lots", "lot_moves", "holds",
              "redemptions", "outbox_messages", "member_devices", "rule_usage", "member_credit", "award_budgets",
              "badges", "expiry_reminders", "task_progress", "inbox_items", "deliveries", "coupons", "consents",
              "member_restrictions", "risk_cases", "friendships", "invite_codes", "makeup_cards", "team_members",
              "notification_opt_outs", "referrals", "lottery_draws", "pool_contributions", "partner_exchanges"}
# Written once per programme or operator action, read everywhere: reference tables (copied to every node).
REFERENCE = {"programs", "wallets", "rule_sets", "tasks", "teams", "partners", "lottery_pools", "lottery_prizes",
             "api_keys", "console_users", "webhook_subscriptions", "risk_models", "pools", "red_packets"}
# One row per programme that every write touches: the serialisation points to split before scaling out.
PER_PROGRAMME_HOT = {"chain_heads": "one hash-chain head per programme: chain per (programme, partition)",
                     "audit_head": "one audit-chain head: per (programme, partition) as the journal",
                     "rewards": "stock of a flash-sale reward: one row every redemption of it updates"}


def _column(table: Table) -> str:
    return "id" if table.name == "members" else "member_pk"


def unique_keys(table: Table) -> list[tuple[str, ...]]:
    keys = [tuple(c.name for c in table.primary_key.columns)]
    keys += [tuple(c.name for c in k.columns) for k in table.constraints if isinstance(k, UniqueConstraint)]
    keys += [tuple(c.name for c in i.columns) for i in table.indexes if i.unique]
    return keys


def gaps() -> dict[str, list[str]]:
    """{table: what stops distributing it by member} for the per-member tables."""
    found: dict[str, list[str]] = {}
    for name in sorted(PER_MEMBER):
        table, problems = metadata.tables[name], []
        column = _column(table)
        if column not in table.c:
            problems.append(f"no {column} column")
        else:
            problems += [f"unique ({', '.join(k)}) lacks {column}" for k in unique_keys(table) if column not in k]
        if problems:
            found[name] = problems
    return found


def main() -> int:
    known = PER_MEMBER | REFERENCE | set(PER_PROGRAMME_HOT)
    unclassified = sorted(set(metadata.tables) - known)
    found = gaps()
    print(f"{len(PER_MEMBER)} per-member tables (distributed by member_pk), {len(REFERENCE)} reference tables, "
          f"{len(PER_PROGRAMME_HOT)} per-programme hot rows; other tables (stay on the coordinator): "
          f"{', '.join(unclassified) or 'none'}")
    for name in sorted(PER_MEMBER):
        print(f"  {name:24} {'; '.join(found[name]) if name in found else 'ready'}")
    for name, why in PER_PROGRAMME_HOT.items():
        print(f"  {name:24} hot: {why}")
    print(f"{len(found)} of {len(PER_MEMBER)} per-member tables not ready" if found else "all per-member tables ready")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
