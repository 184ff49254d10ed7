"""Rate limits: per API key, per member named by a write, and failed authentications per client
address (brute force). Moving windows from the `limits` library, in Redis when JIFEN_REDIS_URL is set
(shared by every process), in memory otherwise."""

from __future__ import annotations

import functools

from limits import parse, storage, strategies

from jifen.config import get_settings
from jifen.errors import JifenError


class RateLimited(JifenError):
    status = 429
    code = "rate_limited"


@functools.lru_cache(maxsize=1)
def _limiter() -> strategies.MovingWindowRateLimiter:
    url = get_settings().redis_url
    return strategies.MovingWindowRateLimiter(storage.storage_from_string(url or "memory://"))


def in_memory() -> bool:
    """Counted in this process (no Redis): checking a limit waits on nothing."""
    return not get_settings().redis_url


def check(kind: str, rate: str, *identity: str, code: str = "rate_limited") -> None:
    """Count one hit; refuse with 429 once the window is full."""
    if not _limiter().hit(parse(rate), kind, *identity):
        raise RateLimited(f"too many requests ({rate} per {kind.replace('_', ' ')})", code=code)


def key(key_id: int) -> None:
    check("api_key", get_settings().key_rate, str(key_id))


def member(program_id: int, member_id: str) -> None:
    check("member", get_settings().member_rate, str(program_id), member_id)


def failed_auth(address: str) -> None:
    """A failed authentication from this address; past the limit even correct ones are refused a while."""
    check("auth_failure", get_settings().auth_failures, address, code="too_many_attempts")


def auth_blocked(address: str) -> bool:
    limiter, rate = _limiter(), parse(get_settings().auth_failures)
    return not limiter.test(rate, "auth_failure", address)
