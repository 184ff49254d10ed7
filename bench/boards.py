"""Leaderboard reads at 5 million members in a Redis sorted set, beside Redis PING in the same run.

    .venv/bin/python bench/boards.py [--members 5000000] [--redis redis://127.0.0.1:6379/14]

Fills one board as the outbox would (ZINCRBY-shaped scores, loaded with pipelined ZADD), then times
what the leaderboard API asks of Redis: the top 20 (ZREVRANGE) and one member's rank and score
(ZREVRANK + ZSCORE). The database is not involved: the names of the top 20 are one indexed query.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import redis


def timed(fn, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return statistics.median(samples) * 1000, samples[int(n * 0.99) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5_000_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    r = redis.Redis.from_url(args.redis, decode_responses=True)
    r.flushdb()
    key, rng = "bench:board", random.Random(1)
    start = time.perf_counter()
    with r.pipeline(transaction=False) as pipe:
        for i in range(0, args.members, 10_000):
            pipe.zadd(key, {f"M{j}": rng.randint(1, 100_000) for j in range(i, min(i + 10_000, args.members))})
            if i % 200_000 == 0:
                pipe.execute()
        pipe.execute()
    load = time.perf_counter() - start
    ping = timed(r.ping, 2000)
    top = timed(lambda: r.zrevrange(key, 0, 19, withscores=True), 2000)

    def rank():
        m = f"M{rng.randrange(args.members)}"
        with r.pipeline(transaction=False) as p:
            p.zrevrank(key, m)
            p.zscore(key, m)
            p.execute()

    mine = timed(rank, 2000)
    memory = r.memory_usage(key) or 0
    r.flushdb()
    print(f"| operation on {args.members:,} members | p50 ms | p99 ms | baseline: PING p50 / p99 ms |")
    print("|---|---|---|---|")
    print(f"| top 20 (ZREVRANGE) | {top[0]:.3f} | {top[1]:.3f} | {ping[0]:.3f} / {ping[1]:.3f} |")
    print(f"| a member's rank and score (ZREVRANK + ZSCORE, pipelined) | {mine[0]:.3f} | {mine[1]:.3f} | "
          f"{ping[0]:.3f} / {ping[1]:.3f} |")
    print(f"\nloaded in {load:.1f} s; the board takes {memory / 2**20:.0f} MiB in Redis")


if __name__ == "__main__":
    main()
