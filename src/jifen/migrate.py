"""Alembic, configured in code so the installed package carries its migrations."""

from __future__ import annotations

from typing import cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from jifen.config import ensure_sqlite_dir


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "jifen:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def schema_revisions(connection: Connection) -> tuple[str | None, str]:
    """(the database's schema revision, the one this release's migrations end at)."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    return MigrationContext.configure(connection).get_current_revision(), cast(str, head)


def upgrade(url: str, revision: str = "head") -> None:
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)
