"""Bring a database to the current schema with the default programme in place."""

from __future__ import annotations

from jifen.db import make_engine, make_sessionmaker, run_in_transaction
from jifen.migrate import upgrade
from jifen.programs.service import ensure_default_program


def init_database(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        run_in_transaction(make_sessionmaker(engine), ensure_default_program)
    finally:
        engine.dispose()
