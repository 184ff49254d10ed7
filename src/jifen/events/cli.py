"""`jifen events import FILE`: member events from a file (JSON Lines), in batches through the same intake
as the API, by one process or several (flows/file_import.py). Re-running the same file resumes: events
already taken are answered as replays."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from jifen.clikit import ProgramOpt, err, fail, out
from jifen.config import get_settings
from jifen.events.schemas import MAX_BATCH

events_app = typer.Typer(help="Member events from files.", no_args_is_help=True)


@events_app.command("import")
def events_import(file: Annotated[Path, typer.Argument(help="JSON Lines: one event per line, as POST /v1/events")],
                  program: ProgramOpt = "default",
                  batch: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="events per transaction")] = MAX_BATCH,
                  rejects: Annotated[Path | None, typer.Option(help="write refused events and their errors here")] = None,
                  processes: Annotated[int, typer.Option(min=1, help="processes sending; each member's events go "
                                                                      "to one of them, in the file's order")] = 1):
    """Import a file of events through the rules; prints what was processed, replayed and refused."""
    from jifen.events.jsonl import BadLine
    from jifen.flows.file_import import import_file

    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                what = "checking" if stage == "validating" else "importing"
                tasks[stage] = bar.add_task(f"{what} {file.name}", total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            result = import_file(get_settings().database_url, file, program=program, batch=batch,
                                 processes=processes, actor=f"cli:{file.name}", progress=progress)
        except BadLine as exc:
            fail(f"{exc} (nothing sent)")
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror}")
    counts, refused = result.tally.counts, result.tally.refused
    if rejects and refused:
        rejects.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in refused), encoding="utf-8")
    out.print(f"{result.events} events: {counts['processed']} processed ({result.tally.points:+,} points), "
              f"{counts['replayed']} already taken, {counts['rejected']} refused"
              + (f" (see {rejects})" if rejects and refused else ""))
    for x in refused[:5]:
        err.print(f"  refused {x['event']['event_id']} (line {x['line']}): {x['error']['code']}: "
                  f"{x['error']['message']}", markup=False, highlight=False)
    if refused:
        raise typer.Exit(2)
