"""The small JSON document written beside every backup: what the dump holds (its engine, schema revision,
entry count and each programme's hash-chain head, read in the dump's own snapshot) and its checksum, so a
restore can tell a damaged file before using it and prove afterwards that the ledger came back whole."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jifen.errors import InvalidRequest

FORMAT = "jifen-backup/1"
HEADS_SQL = ("SELECT p.code, h.seq, h.hash FROM chain_heads h JOIN programs p ON p.id = h.program_id "
             "ORDER BY p.code")
ENTRIES_SQL = "SELECT count(*) FROM journal_entries"
REVISION_SQL = "SELECT version_num FROM alembic_version"


@dataclass
class Manifest:
    engine: str  # sqlite or postgresql: a dump restores to its own engine
    created_at: str
    revision: str | None
    entries: int
    heads: dict[str, dict[str, Any]] = field(default_factory=dict)  # programme code -> {seq, hash}
    sha256: str = ""
    bytes: int = 0
    format: str = FORMAT

    def head_line(self) -> str:
        return ", ".join(f"{code} seq={h['seq']} hash={h['hash'][:16]}…" for code, h in self.heads.items())


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".manifest.json")


def snapshot(cursor: Any, engine: str) -> Manifest:
    """What the database holds as this DB-API cursor's transaction sees it."""
    cursor.execute(HEADS_SQL)
    heads = {code: {"seq": int(seq), "hash": hash_} for code, seq, hash_ in cursor.fetchall()}
    cursor.execute(ENTRIES_SQL)
    entries = int(cursor.fetchone()[0])
    cursor.execute(REVISION_SQL)
    row = cursor.fetchone()
    return Manifest(engine=engine, created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    revision=row[0] if row else None, entries=entries, heads=heads)


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def seal(manifest: Manifest, dump: Path) -> Path:
    """Write the manifest beside the finished dump, with the dump's size and checksum."""
    manifest.sha256, manifest.bytes = checksum(dump), dump.stat().st_size
    path = manifest_path(dump)
    path.write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
    return path


def load(dump: Path) -> Manifest:
    """The manifest of a backup, after checking the dump is the one it describes."""
    path = manifest_path(dump)
    if not dump.is_file():
        raise InvalidRequest(f"no backup at {dump}", code="backup_missing")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest(**raw)
    except FileNotFoundError:
        raise InvalidRequest(f"no manifest beside the backup: {path}", code="manifest_missing") from None
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"unreadable manifest {path}: {exc}", code="manifest_invalid") from None
    if manifest.format != FORMAT:
        raise InvalidRequest(f"{path} is a {manifest.format!r} manifest, not {FORMAT!r}", code="manifest_invalid")
    if dump.stat().st_size != manifest.bytes or checksum(dump) != manifest.sha256:
        raise InvalidRequest(f"{dump} does not match its manifest (size or SHA-256 differ): damaged or replaced",
                             code="backup_damaged")
    return manifest
