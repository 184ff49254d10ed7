"""400 `malformed_json` for a JSON body with a name twice in one object ({"points": 1, "points": 100000}).

RFC 8259 leaves such a body's meaning to the parser: Python's takes the last, a proxy or the client's own log may
read the first. A write must mean one thing, so it is refused before the route sees it. FastAPI parses the body
again afterwards: the check costs a second parse (about as long as FastAPI's own, measured on a batch)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException


class _Repeated(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _Repeated(json.dumps(name, ensure_ascii=False))
            seen.add(name)
    return obj


def _refused(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class UniqueNames:
    """Reads a JSON body whole (inside BodyLimit, which bounds it), checks it, and hands it on as it came.
    Bodies FastAPI would not read as JSON (another Content-Type), or that are not JSON at all, pass unchecked:
    the route says what is wrong with them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        content_type = Headers(scope=scope).get("content-type", "json") if scope["type"] == "http" else ""
        if "json" not in content_type or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        messages, more = [], True
        try:
            while more:
                messages.append(await receive())
                more = messages[-1]["type"] == "http.request" and messages[-1].get("more_body", False)
        except HTTPException as exc:  # BodyLimit: the body passed its limit
            return await _refused(exc.status_code, "body_too_large", str(exc.detail))(scope, receive, send)
        try:
            json.loads(b"".join(m.get("body", b"") for m in messages), object_pairs_hook=_unique)
        except _Repeated as exc:
            return await _refused(400, "malformed_json", f"request body is not valid JSON (the name {exc} is "
                                  "given twice in one object)")(scope, receive, send)
        except (ValueError, RecursionError):
            pass

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
