"""Many concurrent HTTP/1.1 clients from one process, for the HTTP benches that need hundreds of connections
and each answer's body (wrk gives neither the bodies nor more clients than it has connections to spare).

Each client is one keep-alive connection on asyncio streams (uvloop when installed) sending its requests one
after the other; the HTTP is the little these benches need (JSON bodies with a Content-Length), so the client
side costs a few tens of microseconds per request and leaves the 2 cores to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float  # from the request's first byte sent to its answer's last byte received

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None  # sent as JSON


class Connection:
    def __init__(self, base: str):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, call: Call) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = b"" if call.body is None else json.dumps(call.body, separators=(",", ":")).encode()
        head = [f"{call.method} {call.path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(payload)}"]
        head += [f"{k}: {v}" for k, v in call.headers.items()]
        if payload:
            head.append("Content-Type: application/json")
        start = time.perf_counter()
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status_line = await self.reader.readline()
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        body = await (self._chunks() if chunked else self.reader.readexactly(length))
        return Answer(int(status_line.split()[1]), body, time.perf_counter() - start)

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        out = b""
        while size := int((await self.reader.readline()).strip(), 16):
            out += await self.reader.readexactly(size + 2)
            out = out[:-2]
        await self.reader.readline()
        return out

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _client(base: str, calls: Iterable[Call], answers: list[tuple[Call, Answer]], stop: asyncio.Event | None,
                  pause: float):
    conn = Connection(base)
    try:
        for call in calls:
            if stop is not None and stop.is_set():
                return
            answers.append((call, await conn.send(call)))
            if pause:
                await asyncio.sleep(pause)
    finally:
        conn.close()


async def run_clients(base: str, per_client: list[Iterable[Call]], stop: asyncio.Event | None = None,
                      pause: float = 0, answers: list[tuple[Call, Answer]] | None = None,
                      ) -> tuple[list[tuple[Call, Answer]], float]:
    """Each client's calls on its own connection, all clients at once (`pause` seconds between one's answer
    and its next call), until they are done or `stop` is set; every (call, answer) and the seconds from the
    first request to the last answer. Pass `answers` to watch them arrive (in the order they are answered)."""
    answers = [] if answers is None else answers
    start = time.perf_counter()
    await asyncio.gather(*(_client(base, calls, answers, stop, pause) for calls in per_client))
    return answers, time.perf_counter() - start


def run(main: Callable[[], Any]) -> Any:
    """asyncio.run with uvloop when it is installed (Uvicorn's own loop: a lighter client)."""
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of the values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]
