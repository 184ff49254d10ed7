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
    # Group commit of single events (flows/group_commit.py): concurrent POST /v1/events requests of a
    # programme are gathered for up to this many milliseconds (0: each request alone) or this many requests.
    group_commit_ms: float = 2.0
    group_commit_max: int = 500
    # PostgreSQL connections per process (pool and overflow); `serve --workers N` divides them among workers.
    db_pool_size: int = 20
    db_max_overflow: int = 40
    # Notification channels; a channel without its setting is off. (docs/notifications.md)
    smtp_url: str | None = None  # smtp://host:port — e-mail
    mail_from: str = "jifen@localhost"
    sms_url: str | None = None  # the brand's SMS provider adapter (HTTP, JSON)
    wechat_url: str | None = None  # the brand's WeChat template-message adapter (HTTP, JSON)
    provider_token: str | None = None  # bearer token sent to the SMS / WeChat adapters
    quiet_hours: tuple[int, int] = (22, 8)  # no SMS or WeChat from 22:00 to 08:00, programme time
    sms_per_day: int = 2  # most SMS and WeChat messages per member per programme day
    webhook_max_attempts: int = 12  # then the delivery is dead-lettered (replayable)
    # Leaderboards in Redis sorted sets (fed by the outbox); without it they are SQL over the journal.
    redis_url: str | None = None  # redis://127.0.0.1:6379/0
    # Personal data at rest (security/pii.py): "k1:aes:<base64>,…" (the first encrypts), the lookup-hash key.
    data_keys: str | None = None
    lookup_key: str | None = None
    data_key_file: str | None = None  # keys when the two above are not set (default: beside the SQLite file)
    # Velocity rules, seed 001's: the defaults of a programme's `risk:` section (programs/config.py RiskConfig).
    earn_points_per_minute: int = 100  # per member; beyond it: a risk alert (flag)
    redemptions_per_hour: int = 5  # per member; beyond it: the order waits in review
    # Rate limits (the `limits` library; shared through Redis when redis_url is set, else per process).
    key_rate: str = "1200/minute"  # requests per API key
    member_rate: str = "120/minute"  # writes naming one member (points, holds, mall, engagement)
    auth_failures: str = "20/minute"  # failed sign-ins / unknown keys per client address: then 429
    # Retention (members/retention.py: `jifen privacy purge`, and once a day in the job runner), in days.
    # Rate-limit counters are not stored in the database (memory or Redis windows of a minute).
    retention_deliveries_days: int = 180  # finished notification deliveries and their outbox messages
    retention_idempotency_days: int = 30  # idempotency records: a key older than this runs its request anew
    retention_inbox_days: int | None = 365  # members' in-app messages; None keeps them
    retention_reminders_days: int = 180  # expiry-reminder markers, counted from the expiry day
    # Points evidence (journal, postings, lots, events, audit log) is kept at least 3 years (seed 001): None
    # keeps events for ever; a number (at least 1095, else the purge refuses to run) purges older events.
    # The journal and the audit log are hash chains and are never purged.
    retention_evidence_days: int | None = None
    # Console users and sessions (security/users.py, security/sessions.py).
    console_idle_minutes: int = 30  # a session unused this long ends
    console_session_hours: int = 12  # and every session ends this long after sign-in
    console_max_failures: int = 5  # wrong passwords in a row that lock the account …
    console_lockout_minutes: int = 15  # … for this long


@lru_cache
def get_settings() -> Settings:
    return Settings()


def ensure_sqlite_dir(url: str) -> None:
    """Create the parent folder of an SQLite file so a fresh checkout just works."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        Path(url[len(prefix):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
