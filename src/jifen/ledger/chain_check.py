"""The hash chain, checked fast and in pieces.

A programme's chain is cut into spans of seq. A span is read in seq order with plain queries (no ORM
objects) and every entry's hash is recomputed: with the chain's own function (chain.fields_hash), or on
PostgreSQL by the server, with that function the judge of any entry the server finds different. The first
entry of a span is linked to the stored hash of the entry before it, whose hash the span before recomputed:
spans checked apart — in any order, in other threads or processes — prove what one walk from the first
entry proves. A problem names the first broken entry, as a walk would.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, String, bindparam, func, select
from sqlalchemy.orm import Session

from jifen.db import READ_ONLY, make_engine, upsert
from jifen.ledger.chain import FIELDS, GENESIS, TIMES, fields_hash
from jifen.ledger.models import ChainCheckpoint, ChainHead, JournalEntry, LotMove, Posting

CHUNK = 5000  # entries per query
SPAN = 200_000  # entries per span at most: what one process checks before reporting progress
PARALLEL_FROM = 100_000  # fewer entries are checked here, not in processes: starting them would take longer

_N = len(FIELDS)
_ID, _SEQ, _PREV, _HASH = FIELDS.index("id"), FIELDS.index("seq"), FIELDS.index("prev_hash"), _N


@dataclass(frozen=True)
class Problem:
    check: str
    entry_id: int | None  # the first broken entry, where one can be named
    message: str

    def __str__(self) -> str:
        where = f"entry {self.entry_id}: " if self.entry_id is not None else ""
        return f"[{self.check}] {where}{self.message}"


@dataclass(frozen=True)
class Span:
    program_id: int
    first: int  # seq
    last: int


@dataclass(frozen=True)
class Walked:
    span: Span
    checked: int  # entries whose hash was recomputed
    end: int  # the last seq proven (first - 1 when none)
    end_hash: str | None
    end_id: int | None
    problem: Problem | None = None


# --- reading: a chunk of entries in seq order, with their postings and lot moves by entry id

Rows = Sequence[Sequence[Any]]
Grouped = Mapping[int, Sequence[Sequence[int]]]

_E = JournalEntry.__table__
_ENTRIES = (select(*(_E.c[f] for f in FIELDS), _E.c.hash)
            .where(_E.c.program_id == bindparam("program"), _E.c.seq >= bindparam("first"),
                   _E.c.seq <= bindparam("last")).order_by(_E.c.seq).limit(bindparam("chunk")))
_PG_ENTRIES = (f"SELECT {', '.join(FIELDS)}, hash FROM journal_entries "
               "WHERE program_id = %s AND seq >= %s AND seq <= %s ORDER BY seq LIMIT %s")
_PARTS = ((Posting.entry_id, Posting.account_id, Posting.amount),
          (LotMove.entry_id, LotMove.lot_id, LotMove.account_id, LotMove.amount))


def _entries(conn: Connection, program_id: int, first: int, last: int, chunk: int) -> Rows:
    if conn.dialect.name == "postgresql":
        # The driver's binary rows: timestamps decoded in C, already in UTC (SET LOCAL: this transaction only),
        # where the ORM column type would convert each one in Python.
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        cur = conn.connection.driver_connection.cursor(binary=True)  # type: ignore[union-attr]
        return cur.execute(_PG_ENTRIES, (program_id, first, last, chunk)).fetchall()  # type: ignore[no-any-return]
    return conn.execute(_ENTRIES, {"program": program_id, "first": first, "last": last, "chunk": chunk}).all()


def _read(conn: Connection, program_id: int, first: int, last: int, chunk: int) -> tuple[Rows, Grouped, Grouped]:
    entries = _entries(conn, program_id, first, last, chunk)
    if not entries:
        return entries, {}, {}
    # Postings and moves are found by entry id: ids follow seq closely (both grow as entries are written), so
    # a chunk's ids make a short range of the entry_id index; a scattered chunk names its ids instead.
    # (Aggregating them per entry on PostgreSQL, array_agg, was no faster: decoding the arrays costs the client
    # what grouping rows does, and one lookup per entry cost the server 15 times a range scan.)
    ids = [e[_ID] for e in entries]
    scattered = max(ids) - min(ids) > 4 * len(ids) + 1000
    grouped = []
    for entry_id, *columns in _PARTS:
        by_entry: dict[int, list[tuple[int, ...]]] = defaultdict(list)
        which = entry_id.in_(ids) if scattered else entry_id.between(min(ids), max(ids))
        for eid, *values in conn.execute(select(entry_id, *columns).where(which)):
            by_entry[eid].append(tuple(values))
        grouped.append(by_entry)
    return entries, grouped[0], grouped[1]


# --- on PostgreSQL, the server recomputes the hashes
# The body as chain.entry_body builds it, in SQL: the fields in FIELDS order as compact JSON (to_json escapes
# strings as Python's json does), times in UTC as …T…Z, postings and moves sorted (fed to string_agg sorted: an
# ORDER BY inside the aggregate sorts each entry's two or three rows apart, 1.4× slower). Reading the rows into
# Python to hash them there was 3× slower. This is a fast path, not a second judge: an entry whose hash the server finds
# different is recomputed by chain.fields_hash before it is called broken (tests/ledger compares the two on
# awkward values), so a difference in rendering can cost time, never a false alarm.

def _sql_value(column: str) -> str:
    if FIELDS.index(column) in TIMES:
        return f"'\"' || to_char(e.{column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') || '\"'"
    if isinstance(_E.c[column].type, String):
        return f"coalesce(to_json(e.{column})::text, 'null')"
    return f"coalesce(e.{column}::text, 'null')"


_PG_HASHED = f"""
WITH e AS (SELECT * FROM journal_entries WHERE program_id = %(program)s AND seq >= %(first)s AND seq <= %(last)s),
ids AS (SELECT min(id) AS lo, max(id) AS hi FROM e),
p AS (SELECT entry_id, string_agg(x, ',') AS s FROM (
        SELECT entry_id, '[' || account_id || ',' || amount || ']' AS x FROM postings, ids
        WHERE entry_id BETWEEN ids.lo AND ids.hi ORDER BY entry_id, account_id, amount) sorted GROUP BY entry_id),
m AS (SELECT entry_id, string_agg(x, ',') AS s FROM (
        SELECT entry_id, '[' || lot_id || ',' || account_id || ',' || amount || ']' AS x FROM lot_moves, ids
        WHERE entry_id BETWEEN ids.lo AND ids.hi ORDER BY entry_id, lot_id, account_id, amount) sorted GROUP BY entry_id)
SELECT e.id, e.seq, e.prev_hash, e.hash, encode(sha256(convert_to(
    '[' || {" || ',' || ".join(_sql_value(f) for f in FIELDS)}
    || ',[' || coalesce(p.s, '') || '],[' || coalesce(m.s, '') || ']]', 'UTF8')), 'hex')
FROM e LEFT JOIN p ON p.entry_id = e.id LEFT JOIN m ON m.entry_id = e.id ORDER BY e.seq"""


def _hashed(conn: Connection, program_id: int, first: int, last: int, chunk: int) -> Rows:
    """(id, seq, prev_hash, stored hash, the server's recomputed hash) of up to `chunk` entries in seq order."""
    # No JIT: the planner's estimate for the joins is far above its threshold, and compiling took 0.7 s a query.
    conn.exec_driver_sql("SET LOCAL jit = off")
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    return cur.execute(_PG_HASHED, {"program": program_id, "first": first,  # type: ignore[no-any-return]
                                    "last": min(last, first + chunk - 1)}).fetchall()


def _recomputed(conn: Connection, program_id: int, seq: int) -> str:
    """The entry's hash by the chain's own function."""
    entries, postings, moves = _read(conn, program_id, seq, seq, 1)
    eid = entries[0][_ID]
    return fields_hash(entries[0][:_N], postings.get(eid, ()), moves.get(eid, ()))


_HASH_AT = select(JournalEntry.hash).where(JournalEntry.program_id == bindparam("program"),
                                           JournalEntry.seq == bindparam("seq"))


def walk(conn: Connection, span: Span, progress: Callable[[int], None] | None = None) -> Walked:
    """Check one span: contiguous seq, each link, each recomputed hash. Stops at the first problem."""
    chunk = CHUNK
    prev = GENESIS if span.first == 1 else conn.scalar(_HASH_AT, {"program": span.program_id, "seq": span.first - 1})
    expected, checked, last_id = span.first, 0, None
    on_server = conn.dialect.name == "postgresql"
    while expected <= span.last:
        if on_server:
            rows = _hashed(conn, span.program_id, expected, span.last, chunk)
        else:
            entries, postings, moves = _read(conn, span.program_id, expected, span.last, chunk)
            rows = [(e[_ID], e[_SEQ], e[_PREV], e[_HASH],
                     fields_hash(e[:_N], postings.get(e[_ID], ()), moves.get(e[_ID], ()))) for e in entries]
        if not rows:
            break
        for eid, seq, prev_hash, stored, recomputed in rows:
            problem = None
            if seq != expected:
                problem = f"sequence gap: expected {expected}, found {seq} (an entry was removed)"
            elif prev_hash != prev:
                problem = "previous-hash link broken"
            elif recomputed != stored and (not on_server or _recomputed(conn, span.program_id, seq) != stored):
                problem = "content does not match its hash (altered entry, posting or lot move)"
            if problem:
                return Walked(span, checked, expected - 1, prev, last_id, Problem("chain", eid, problem))
            prev, expected, last_id = stored, seq + 1, eid
            checked += 1
        if progress:
            progress(len(rows))
    return Walked(span, checked, expected - 1, prev, last_id)


# --- planning and running spans

def plan(program_id: int, first: int, last: int, processes: int) -> list[Span]:
    """[first, last] cut into equal spans: one per process at least, none longer than SPAN."""
    n = last - first + 1
    if n <= 0:
        return []
    parts = min(n, max(processes, -(-n // SPAN)))
    cuts = [first + n * i // parts for i in range(parts + 1)]
    return [Span(program_id, a, b - 1) for a, b in zip(cuts, cuts[1:], strict=False)]


_engines: dict[str, Engine] = {}


def _walk_apart(url: str, span: Span) -> Walked:
    """In a worker process: its own engine (reused for the next span), a read-only transaction."""
    if url not in _engines:
        _engines[url] = make_engine(url).execution_options(**{READ_ONLY: True})
    with _engines[url].connect() as conn:
        return walk(conn, span)


def _walk_on(engine: Engine, span: Span) -> Walked:
    """In a thread: a connection of its own, a read-only transaction."""
    with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
        return walk(conn, span)


def run(session: Session, spans: list[Span], processes: int, progress: Callable[[int], None]) -> list[Walked]:
    """Check spans here, or `processes` at a time: on PostgreSQL in threads, each with its own connection (the
    server does the hashing, and a thread starts at once where a process took seconds), elsewhere in a pool of
    processes, which read the same database by URL."""
    engine = session.get_bind().engine
    url, total = engine.url, sum(s.last - s.first + 1 for s in spans)
    if processes <= 1 or len(spans) <= 1:
        return [walk(session.connection(), span, progress) for span in spans]
    if engine.dialect.name == "postgresql":
        pool: Executor = ThreadPoolExecutor(min(processes, len(spans)))
        futures = [pool.submit(_walk_on, engine, span) for span in spans]
    elif total < PARALLEL_FROM or url.database in (None, "", ":memory:"):
        return [walk(session.connection(), span, progress) for span in spans]
    else:
        # Spawned, not forked: a forked child would share the parent's open database connections.
        pool = ProcessPoolExecutor(min(processes, len(spans)), mp_context=multiprocessing.get_context("spawn"))
        futures = [pool.submit(_walk_apart, url.render_as_string(hide_password=False), span) for span in spans]
    with pool:
        for done in as_completed(futures):
            progress(done.result().checked)
        return [f.result() for f in futures]


# --- the whole check

@dataclass
class ChainReport:
    problems: list[Problem]
    checked: int  # entries whose hash was recomputed
    ends: dict[int, tuple[int, str]]  # programme → (seq, hash) proven: the next checkpoints


_HEADS = select(ChainHead.program_id, ChainHead.seq, ChainHead.hash,
                select(func.max(JournalEntry.seq)).where(JournalEntry.program_id == ChainHead.program_id)
                .scalar_subquery()).order_by(ChainHead.program_id)
_NEXT = (select(JournalEntry.id, JournalEntry.seq)
         .where(JournalEntry.program_id == bindparam("program"), JournalEntry.seq > bindparam("after"))
         .order_by(JournalEntry.seq).limit(1))
# (program_id, seq) is indexed, and the index finds NULL seqs too: no scan of the journal.
_ORPHANS = (select(JournalEntry.id).where(JournalEntry.program_id == bindparam("program"), JournalEntry.seq.is_(None))
            .order_by(JournalEntry.id))
_ID_AT = select(JournalEntry.id).where(JournalEntry.program_id == bindparam("program"),
                                       JournalEntry.seq == bindparam("seq")).scalar_subquery()


def _from_checkpoint(session: Session, cp: ChainCheckpoint) -> Problem | None:
    """The checkpoint's entry must still be whole (its hash recomputed) and still have the checkpointed hash."""
    walked = walk(session.connection(), Span(cp.program_id, cp.seq, cp.seq))
    if walked.problem:
        return walked.problem
    if walked.end != cp.seq or walked.end_hash != cp.hash:
        return Problem("chain", walked.end_id, f"the checkpoint verified {cp.verified_at:%Y-%m-%d %H:%M} UTC says "
                       f"seq {cp.seq} of programme {cp.program_id} has hash {cp.hash[:16]}…, it now has "
                       f"{(walked.end_hash or 'no entry')[:16]} (the chain up to it was rewritten)")
    return None


def _conclude(session: Session, program_id: int, head_seq: int, head_hash: str, start: tuple[int, str],
              walked: list[Walked]) -> Problem | tuple[int, str]:
    """The programme's first problem, or the end of its chain (seq, hash) once it matches the head."""
    end_seq, end_hash, end_id = start[0], start[1], None
    for w in walked:
        if w.problem:
            return w.problem
        if w.checked:
            end_seq, end_hash, end_id = w.end, w.end_hash or GENESIS, w.end_id
        if w.end < w.span.last:  # ran out of entries: whatever comes next follows a gap
            after = session.execute(_NEXT, {"program": program_id, "after": w.end}).first()
            if after:
                return Problem("chain", after.id, f"sequence gap: expected {w.end + 1}, found {after.seq} "
                               "(an entry was removed)")
            break
    if (end_seq, end_hash) != (head_seq, head_hash):
        why = ("entries removed at the end" if end_seq < head_seq else
               "entries beyond it" if end_seq > head_seq else "a different hash")
        return Problem("chain", end_id, f"chain of programme {program_id} ends at seq {end_seq} but its head says "
                       f"{head_seq} ({why})")
    return end_seq, end_hash


def check_chain(session: Session, progress: Callable[[int, int], None] | None = None, *, processes: int = 1,
                since_checkpoint: bool = False) -> ChainReport:
    """Every programme's chain from its first entry (or, with since_checkpoint, from its checkpoint) to its
    head. progress(done, total) is called as entries are checked."""
    heads = session.execute(_HEADS).all()
    checkpoints = ({c.program_id: c for c in session.scalars(select(ChainCheckpoint))} if since_checkpoint else {})
    problems: list[Problem] = []
    starts: dict[int, tuple[int, str]] = {}
    spans: list[Span] = []
    for program_id, head_seq, _, max_seq in heads:
        orphans, params = _ORPHANS, {"program": program_id}
        if cp := checkpoints.get(program_id):
            # Only entries written after the checkpoint: those before were looked at then.
            orphans, params = orphans.where(JournalEntry.id > func.coalesce(_ID_AT, 0)), params | {"seq": cp.seq}
        problems += [Problem("chain", eid, "entry is not linked into the hash chain")
                     for eid in session.scalars(orphans, params)]
        if cp and (problem := _from_checkpoint(session, cp)):
            problems.append(problem)
            continue
        starts[program_id] = (cp.seq, cp.hash) if cp else (0, GENESIS)
        spans += plan(program_id, starts[program_id][0] + 1, max(head_seq, max_seq or 0), processes)
    total, done = sum(s.last - s.first + 1 for s in spans), 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    walked = run(session, spans, processes, advance)
    by_program: dict[int, list[Walked]] = defaultdict(list)
    for w in walked:
        by_program[w.span.program_id].append(w)
    ends = {}
    for program_id, head_seq, head_hash, _ in heads:
        if program_id not in starts:
            continue
        result = _conclude(session, program_id, head_seq, head_hash, starts[program_id], by_program[program_id])
        if isinstance(result, Problem):
            problems.append(result)
        else:
            ends[program_id] = result
    return ChainReport(problems, sum(w.checked for w in walked), ends)


def save_checkpoints(session: Session, ends: dict[int, tuple[int, str]], now: dt.datetime) -> None:
    """Record how far each programme's chain was proven (after a verify that found nothing wrong)."""
    rows = [{"program_id": p, "seq": seq, "hash": h, "verified_at": now} for p, (seq, h) in ends.items() if seq > 0]
    if rows:
        stmt = upsert(session, ChainCheckpoint).values(rows)
        session.execute(stmt.on_conflict_do_update(index_elements=["program_id"], set_={
            "seq": stmt.excluded.seq, "hash": stmt.excluded.hash, "verified_at": stmt.excluded.verified_at}))
