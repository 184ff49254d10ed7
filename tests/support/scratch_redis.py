"""A Redis database of the local server that no other test run is using, flushed before and after.

The leaderboard test used db 13 and FLUSHDB: two runs at once (pytest-xdist workers, or two checkouts tested
side by side) emptied each other's boards mid-test. A run now claims a free database number with SET NX in
db 0 (expiring, so a killed run frees it) and flushes only the database it holds."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

SERVER = os.environ.get("JIFEN_TEST_REDIS_URL", "redis://127.0.0.1:6379")
# db 0 holds the claims (and is the product's default); 13 is the one older checkouts of this suite flush.
CANDIDATES = [n for n in range(1, 16) if n != 13]
HOLD_SECONDS = 900  # longer than any test holds one


@contextlib.contextmanager
def scratch_redis() -> Iterator[str]:
    """The URL of a Redis database this block alone uses (skipped without Redis, outside CI)."""
    import redis

    claims = redis.Redis.from_url(f"{SERVER}/0")
    token = uuid.uuid4().hex
    try:
        number = next((n for n in CANDIDATES if claims.set(f"jifen-test:claim:{n}", token, nx=True, ex=HOLD_SECONDS)),
                      None)
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis unreachable: {exc}")
    if number is None:
        pytest.fail(f"every Redis database of {CANDIDATES} is claimed by another test run")
    url = f"{SERVER}/{number}"
    redis.Redis.from_url(url).flushdb()
    try:
        yield url
    finally:
        redis.Redis.from_url(url).flushdb()
        if claims.get(f"jifen-test:claim:{number}") == token.encode():
            claims.delete(f"jifen-test:claim:{number}")
