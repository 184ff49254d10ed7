"""A test client whose rate limits are counted in this process (no Redis), with the settings given."""

from __future__ import annotations

import contextlib

from fastapi.testclient import TestClient

from jifen.config import get_settings
from jifen.security import ratelimit


@contextlib.contextmanager
def client_with_local_limits(monkeypatch, app, **env: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("JIFEN_REDIS_URL", raising=False)
    get_settings.cache_clear()
    ratelimit._limiter.cache_clear()
    try:
        with TestClient(app) as client:
            yield client
    finally:
        get_settings.cache_clear()
        ratelimit._limiter.cache_clear()
