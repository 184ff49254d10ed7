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
from jifen.errors import JifenError
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


NatsOpt = Annotated[str, typer.Option("--nats", help="NATS server with JetStream")]
StreamOpt = Annotated[str, typer.Option("--stream", help="JetStream stream; its subjects are <name>.events.<programme>.<k>")]
PartitionsOpt = Annotated[int, typer.Option(min=1, max=1024, help="partitions of each programme's events (by member)")]


@events_app.command("publish")
def events_publish(file: Annotated[Path, typer.Argument(help="JSON Lines: one event per line, as POST /v1/events")],
                   program: ProgramOpt = "default", nats: NatsOpt = "nats://127.0.0.1:4222",
                   stream: StreamOpt = "JIFEN", partitions: PartitionsOpt = 8):
    """Publish a file of events to JetStream, each to its member's partition (every line checked first)."""
    import asyncio

    from nats.errors import NoServersError

    from jifen.events import jsonl
    from jifen.flows.stream import Stream, publish

    try:
        scan = jsonl.scan(file)
        sent = asyncio.run(publish(nats, Stream(stream, program, partitions), (ev for _, ev in jsonl.read(file))))
    except jsonl.BadLine as exc:
        fail(f"{exc} (nothing published)")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    except NoServersError:
        fail(f"cannot reach NATS at {nats} (nothing published)")
    out.print(f"{sent} of {scan.events} events published to {stream} ({partitions} partitions)")


@events_app.command("consume")
def events_consume(program: ProgramOpt = "default", nats: NatsOpt = "nats://127.0.0.1:4222",
                   stream: StreamOpt = "JIFEN", partitions: PartitionsOpt = 8,
                   take: Annotated[str | None, typer.Option(help="the partitions this consumer takes, e.g. 0,1,2,3 "
                                                                 "(default: all); each by one consumer at a time")] = None,
                   batch: Annotated[int, typer.Option(min=1, max=MAX_BATCH, help="events per transaction")] = 500,
                   ack_wait: Annotated[float, typer.Option(min=1, help="seconds before an unacknowledged message "
                                                                       "is redelivered (set when first created)")] = 30,
                   until_idle: Annotated[float | None, typer.Option(help="stop after this many seconds with "
                                                                         "nothing to take")] = None,
                   metrics_port: Annotated[int | None, typer.Option(help="serve Prometheus metrics (messages by "
                                                                           "outcome, lag) on this port")] = None):
    """Take events from JetStream through the rules, a batch per transaction, acknowledged after commit;
    refused events go to <stream>.dead.<programme> with their error. Stops cleanly on Ctrl-C or SIGTERM."""
    import asyncio
    import signal

    from nats.errors import NoServersError

    from jifen.flows.stream import Stats, Stream, consume

    try:
        chosen = sorted({int(k) for k in take.split(",")}) if take else list(range(partitions))
    except ValueError:
        fail(f"--take {take!r}: give partition numbers separated by commas")
    if any(not 0 <= k < partitions for k in chosen):
        fail(f"--take: partitions are 0 to {partitions - 1}")
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    last = [0.0]

    def report(stats: Stats) -> None:
        import time

        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            err.print(stats.line(), highlight=False)

    async def run() -> Stats:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # the batch in hand is finished and acknowledged first
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        return await consume(get_settings().database_url, nats, Stream(stream, program, partitions), chosen,
                             batch=batch, ack_wait=ack_wait, until_idle=until_idle, stop=stop, report=report)

    try:
        stats = asyncio.run(run())
    except JifenError as exc:
        fail(exc.message)
    except NoServersError:
        fail(f"cannot reach NATS at {nats}")
    out.print(stats.line(), highlight=False)
