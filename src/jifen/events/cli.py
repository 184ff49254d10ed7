"""`jifen events send FILE`: member events from a file (JSON Lines), in batches through the same intake
as the API. Re-running the same file resumes: events already taken are answered as replays."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import Progress

from jifen.clikit import ProgramOpt, err, fail, out, sessions
from jifen.db import run_in_transaction, utcnow
from jifen.events.schemas import MAX_BATCH, EventIn

events_app = typer.Typer(help="Member events from files.", no_args_is_help=True)


def read_events(path: Path) -> list[EventIn]:
    """Every line validated before anything is sent; the first bad line is named."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    events = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(EventIn.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            fail(f"{path}:{n}: {where}: {first['msg'].removeprefix('Value error, ')} (nothing sent)")
    return events


@events_app.command("send")
def events_send(file: Annotated[Path, typer.Argument(help="JSON Lines: one event per line, as POST /v1/events")],
                program: ProgramOpt = "default",
                batch: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="events per transaction")] = MAX_BATCH,
                rejects: Annotated[Path | None, typer.Option(help="write refused events and their errors here")] = None):
    """Send a file of events through the rules; prints what was processed, replayed and refused."""
    from jifen.flows.intake import ingest
    from jifen.programs.service import get_program

    events = read_events(file)
    factory = sessions()
    counts: Counter[str] = Counter()
    refused: list[dict[str, Any]] = []
    counts, points, refused = Counter(), 0, []
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"sending {file.name}", total=len(events))
        for start in range(0, len(events), batch):
            chunk = events[start:start + batch]
            # mypy cannot infer a lambda with a default argument (binding the chunk) against Callable[[Session], T].
            results = run_in_transaction(factory, lambda s, c=chunk: ingest(  # type: ignore[misc]
                s, get_program(s, program), c, now=utcnow(), actor=f"cli:{file.name}", strict=False))
            for ev, r in zip(chunk, results, strict=True):
                counts[r["status"]] += 1
                points += r.get("points", 0) if r["status"] == "processed" else 0
                if r["status"] == "rejected":
                    refused.append({"event": ev.model_dump(mode="json"), "error": r["error"]})
            bar.advance(task, len(chunk))
    if rejects and refused:
        rejects.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in refused), encoding="utf-8")
    out.print(f"{len(events)} events: {counts['processed']} processed ({points:+,} points), "
              f"{counts['replayed']} already taken, {counts['rejected']} refused"
              + (f" (see {rejects})" if rejects and refused else ""))
    for x in refused[:5]:
        err.print(f"  refused {x['event']['event_id']}: {x['error']['code']}: {x['error']['message']}",
                  markup=False, highlight=False)
    if refused:
        raise typer.Exit(2)
