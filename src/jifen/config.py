"""Settings from the environment, in one place."""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JIFEN_", env_file=".env", extra="ignore")

    # sqlite:///./var/jifen.db (embedded default) or postgresql+psycopg://user@host/db
    database_url: str = "sqlite:///./var/jifen.db"
    # Interval of the in-process job runner (expiry, maturing, stale holds) in `jifen serve`.
    jobs_interval_seconds: int = 60


@lru_cache
def get_settings() -> Settings:
    return Settings()


def ensure_sqlite_dir(url: str) -> None:
    """Create the parent folder of an SQLite file so a fresh checkout just works."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        Path(url[len(prefix):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
