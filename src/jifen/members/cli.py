"""`jifen member show / export / erase / rotate-keys` and `jifen privacy purge`: members, their data rights,
retention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from sqlalchemy import select

from jifen.clikit import ProgramOpt, fail, out, sessions
from jifen.db import run_in_transaction, utcnow

member_app = typer.Typer(help="Members.", no_args_is_help=True)
privacy_app = typer.Typer(help="Privacy: retention of logs.", no_args_is_help=True)


@member_app.command("export")
def member_export(member_id: str, program: ProgramOpt = "default",
                  out_file: Annotated[Path | None, typer.Option("--out", help="write to this file (default: stdout)")]
                  = None):
    """Everything held about a member (profile in clear, ledger, events, redemptions, consents …) as JSON."""
    import jifen.models  # noqa: F401 - every mapped table
    from jifen.members.privacy import export
    from jifen.members.service import get_member
    from jifen.programs.service import get_program

    with sessions()() as s:
        prog = get_program(s, program)
        document = export(s, prog, get_member(s, prog, member_id), utcnow())
    text = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    if out_file is None:
        print(text)
        return
    try:
        out_file.write_text(text + "\n", encoding="utf-8")
        out_file.chmod(0o600)  # personal data in clear: readable by its owner only
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror}")
    out.print(f"export of {member_id} written to {out_file}")


@member_app.command("erase")
def member_erase(member_id: str, yes: Annotated[bool, typer.Option("--yes", help="confirm: erasure cannot be undone")]
                 = False, program: ProgramOpt = "default"):
    """Erase a member: personal data anonymised, remaining points forfeited, the ledger kept whole."""
    import jifen.models  # noqa: F401
    from jifen.ledger import operations as ops
    from jifen.members.privacy import erase
    from jifen.members.service import get_member
    from jifen.programs.service import get_program, get_wallet

    if not yes:
        fail("erasure cannot be undone: add --yes to confirm")

    def work(s):
        prog = get_program(s, program)
        sc = ops.Scope(s, prog, get_wallet(s, prog, None), utcnow(), actor="cli")
        return erase(sc, get_member(s, prog, member_id, erased_ok=True))

    done = run_in_transaction(sessions(), work)
    if done["already_erased"]:
        out.print(f"{member_id} was already erased ({done['erased_at']}); nothing changed")
        return
    forfeited = ", ".join(f"{w}: {p}" for w, p in done["forfeited_points"].items()) or "none"
    out.print(f"{member_id} erased: now {done['member_id']}; points forfeited: {forfeited}")


@privacy_app.command("purge")
def purge(dry_run: Annotated[bool, typer.Option("--dry-run", help="count only, delete nothing")] = False):
    """Delete logs past their retention (JIFEN_RETENTION_*); points evidence and the hash chains stay."""
    import jifen.models  # noqa: F401
    from jifen.members.retention import NEVER_PURGED
    from jifen.members.retention import purge as run

    counts = run(sessions(), dry_run=dry_run)
    table = Table(title="rows that would be deleted (dry run)" if dry_run else "rows deleted")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    out.print(table)
    out.print(f"never purged: {', '.join(NEVER_PURGED)}")


@member_app.command("rotate-keys")
def member_rotate_keys():
    """Re-encrypt all personal data (members, delivery addresses, stored responses) with the first key of
    JIFEN_DATA_KEYS (after a rotation)."""
    import jifen.models  # noqa: F401 - every mapped table, for the ORM's relationships
    from jifen.members.privacy import rotate_keys

    counts = run_in_transaction(sessions(), rotate_keys)
    out.print("personal data re-encrypted: " + ", ".join(f"{n} {table}" for table, n in counts.items()))

@member_app.command("show")
def member_show(member_id: str, program: ProgramOpt = "default",
                limit: Annotated[int, typer.Option(min=1, max=1000, help="ledger entries to show")] = 10):
    """A member's balances, next expiries and latest entries."""
    from jifen.ledger.models import JournalEntry, Posting
    from jifen.ledger.views import balance_view
    from jifen.members.service import get_member
    from jifen.programs.models import Wallet
    from jifen.programs.service import get_program

    with sessions()() as s:
        prog = get_program(s, program)
        m = get_member(s, prog, member_id)
        out.print(f"[bold]{m.member_id}[/] {m.name or ''}  joined {m.joined_at:%Y-%m-%d}  programme {prog.code}")
        for wallet in s.scalars(select(Wallet).where(Wallet.program_id == prog.id).order_by(Wallet.id)):
            b = balance_view(s, prog, wallet, m, utcnow())
            out.print(f"  {wallet.code}: available {b['available']} (≈ ¥{b['value_cny']}), pending {b['pending']}, "
                      f"held {b['held']}, frozen {b['frozen']}, debt {b['debt']}")
            for e in b["next_expiries"]:
                out.print(f"    expires {e['date']}: {e['points']}")
        tz = ZoneInfo(prog.timezone)
        table = Table(title=f"latest entries ({prog.timezone})")
        for col in ("entry", "type", "points", "occurred", "reference / reason"):
            table.add_column(col)
        entry_ids = select(Posting.entry_id).where(Posting.member_pk == m.id)
        for e in s.scalars(select(JournalEntry).where(JournalEntry.id.in_(entry_ids))
                           .order_by(JournalEntry.id.desc()).limit(limit)):
            table.add_row(str(e.id), e.type, str(e.points), f"{e.occurred_at.astimezone(tz):%Y-%m-%d %H:%M}",
                          " / ".join(x for x in (e.reference, e.reason) if x))
        out.print(table)
