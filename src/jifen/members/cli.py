"""`jifen member export / erase` and `jifen privacy purge`: members' data rights and retention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jifen.clikit import ProgramOpt, fail, out, sessions
from jifen.db import run_in_transaction, utcnow

privacy_app = typer.Typer(help="Privacy: retention of logs.", no_args_is_help=True)


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


def add_member_commands(member_app: typer.Typer) -> None:
    member_app.command("export")(member_export)
    member_app.command("erase")(member_erase)


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
