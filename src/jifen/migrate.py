"""Alembic, configured in code so the installed package carries its migrations."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from jifen.config import ensure_sqlite_dir


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "jifen:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)
