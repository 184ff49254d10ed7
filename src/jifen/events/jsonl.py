"""Event files (JSON Lines, one event per line as POST /v1/events), read in two passes so that a file of
any size is never held whole: `scan` validates every line before anything is sent (the first bad line is
named) and, for several processes, splits the lines by member; `read` then streams the events of a file or
of one part."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from jifen.events.schemas import EventIn


class BadLine(ValueError):
    """A line that is not a valid event: `path:line: field: reason`."""


def parse(line: str, path: Path, n: int) -> EventIn:
    try:
        return EventIn.model_validate_json(line)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        raise BadLine(f"{path}:{n}: {where}: {first['msg'].removeprefix('Value error, ')}") from None


def part_of(member_id: str, parts: int) -> int:
    """A member's part: the same in every process and every run (Python's own str hash is salted per
    process), so all of a member's events go to one process, in the file's order."""
    return zlib.crc32(member_id.encode()) % parts


@dataclass
class Scan:
    events: int
    parts: list[Path]  # with their line numbers (see `read`); empty when the file is read as it is
    sizes: list[int]  # events in each part


def scan(path: Path, parts: int = 1, into: Path | None = None,
         progress: Callable[[int, int], None] | None = None) -> Scan:
    """Validate every line (BadLine names the first bad one); with parts > 1, also write each line to its
    member's part file in `into`. progress(bytes read, file size) every 10,000 lines."""
    size, done, events = path.stat().st_size, 0, 0
    files = [into / f"part-{k}.jsonl" for k in range(parts)] if parts > 1 and into else []
    sizes = [0] * max(len(files), 1)
    with path.open("rb") as f, contextlib.ExitStack() as stack:
        outs = [stack.enter_context(p.open("w", encoding="utf-8", newline="\n")) for p in files]
        for n, raw in enumerate(f, 1):
            done += len(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadLine(f"{path}:{n}: line: not UTF-8 text") from None
            if line.strip():
                ev = parse(line, path, n)
                events += 1
                k = part_of(ev.member_id, parts) if outs else 0
                sizes[k] += 1
                if outs:
                    body = line.rstrip("\r\n")
                    outs[k].write(f"{n}\t{body}\n")
            if progress and n % 10_000 == 0:
                progress(done, size)
    if progress:
        progress(size, size)
    return Scan(events, files, sizes)


def read(path: Path, numbered: bool = False) -> Iterator[tuple[int, EventIn]]:
    """(line number, event) for each event of a file that `scan` passed, or of one of its part files
    (numbered: each line starts with its number in the original file and a tab)."""
    with path.open(encoding="utf-8", newline="\n") as f:  # lines end at \n only, as in scan
        for n, line in enumerate(f, 1):
            if numbered:
                num, _, line = line.partition("\t")  # the number never holds a tab, so the first one ends it
                n = int(num)
            if line.strip():
                yield n, parse(line, path, n)
