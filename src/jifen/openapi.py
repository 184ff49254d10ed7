"""The API document tells the truth about errors. Every error answer is `{"error": {"code", "message", …}}`
(the `Error` schema); which ones an operation can give follows from its entry in the route table, here in one
place rather than on each of ninety routes:

  401, 429  it needs an API key or member token (`principal`): none, unknown or expired; rate limits
  403       it declares a permission (`require`), which the document names (`x-permission`)
  400       it takes a JSON body (malformed_json) or an Idempotency-Key (missing or too long)
  409       it takes an Idempotency-Key: the key was used for another request (the routes that take it are
            exactly the writes, and a write may also meet a conflicting state)
  404       a path parameter names something
  413       it takes a body (body_too_large)
  422       it takes a body or a path / query parameter (invalid_request, out_of_range, a business rule)

What the table cannot show (a member named in the body, a conflict of state on an unkeyed route) a route or
router declares itself with `responses=errors(404)`; tests/test_openapi_conformance.py holds the server to all
of it. The Idempotency-Key header is declared required where the dependency demands it (the Python parameter
stays optional so that a missing key is 400 `idempotency_key_required`, not a generic 422)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from jifen.security.deps import idempotency_key, principal

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "machine-readable, e.g. insufficient_points"},
            "message": {"type": "string", "description": "for people"},
            "details": {"type": "array", "items": {"type": "object"},
                        "description": "each invalid field and what is wrong with it (422)"},
        },
        "additionalProperties": True,  # some errors say more (a risk refusal: its `risk` verdict)
    }},
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}

WHY = {
    400: "`malformed_json`: the body is not JSON",
    401: "`unauthorized`: no API key or member token, or an unknown, revoked or expired one",
    403: "`forbidden`: the caller's role may not do this",
    404: "`not_found`, `unknown_member`, `unknown_wallet` …: something the request names does not exist here",
    409: "a conflict with the current state (`insufficient_points`, `hold_not_open` …)",
    413: "`body_too_large`: the body is over the size limit",
    422: "`invalid_request` naming the field, `out_of_range`, or a business rule's code",
    429: "`rate_limited` (per key, per member) or `too_many_attempts` (failed authentications)",
    503: "`not_ready`: the database schema is not the one this release needs (run `jifen db upgrade`)",
}
STORAGE_FULL = ("`storage_full`: the database is out of disk space; free space, then send the request again "
                "with the same Idempotency-Key (event_id)")
KEY_HEADER = "idempotency-key"
MAX_ID = 2**63 - 1
DECIMAL = r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"  # pydantic's own, for an unbounded Decimal
UNSIGNED_DECIMAL = r"^(?!^[+.]*$)\+?0*\d*\.?\d*$"
REPLAYED = {"Idempotent-Replayed": {
    "description": "`true` when this answers a replay of the key's first request, with that request's result",
    "required": True, "schema": {"type": "string", "enum": ["true", "false"]}}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for error answers a route can give beyond what its route-table entry shows."""
    return {status: {"description": WHY[status], "content": {"application/json": {"schema": ERROR_REF}}}
            for status in statuses}


def _calls(dependant: Dependant) -> Iterator:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def api_routes(routes) -> Iterator[APIRoute]:
    """APIRoutes, including those of included routers (kept behind the router objects)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def _statuses(op: dict, keyed: bool, signed_in: bool, permission: str | None) -> dict[int, str]:
    """The error answers an operation can give, each with what it means here."""
    where, body = {p["in"] for p in op.get("parameters", [])}, "requestBody" in op
    told = {int(c): WHY[int(c)] for c in op["responses"] if c.startswith("4") and int(c) in WHY}  # the route's own
    if signed_in:
        told |= {401: WHY[401], 429: WHY[429]}
    if permission:
        told[403] = f"`forbidden`: the caller's role lacks `{permission}` (docs/security.md)"
    if body:
        told |= {400: WHY[400], 413: WHY[413]}
    if keyed:
        told[400] = ("`idempotency_key_required` / `invalid_idempotency_key`: no Idempotency-Key, or one over 255 "
                     "characters" + (f"; {WHY[400]}" if body else ""))
        told[409] = f"`idempotency_key_reused`: the key was used for a different request; or {WHY[409]}"
    if "path" in where:
        told[404] = WHY[404]
    if body or where & {"path", "query"}:
        told[422] = WHY[422]
    else:
        told.pop(422, None)  # FastAPI's default for a route whose only parameter is a header
    return told


def _tell(app: FastAPI, spec: dict) -> None:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for route in api_routes(app.routes):
        calls = list(_calls(route.dependant))
        keyed, signed_in = idempotency_key in calls, principal in calls
        permission = next((c.permission for c in calls if getattr(c, "permission", None)), None)
        for method in route.methods or ():
            op = spec["paths"].get(route.path_format, {}).get(method.lower())
            if op is None:
                continue
            if permission:
                op["x-permission"] = permission
            responses = op["responses"]
            responses.pop("422", None)
            told = _statuses(op, keyed, signed_in, permission)
            if method not in ("GET", "HEAD"):  # any write can meet a full disk (its audit line included)
                told.setdefault(503, STORAGE_FULL)
            for status, text in sorted(told.items()):
                responses[str(status)] = {"description": text, "content": {"application/json": {"schema": ERROR_REF}}}
            if keyed:
                for p in op["parameters"]:
                    if p["in"] == "header" and p["name"].lower() == KEY_HEADER:
                        p.update(name="Idempotency-Key", required=True, description=(
                            "Unique per intended write (scoped to the programme): a replay answers with the "
                            "first result, the key with a different request is 409"),
                            schema={"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"})
                for code, answer in responses.items():
                    if code.startswith("2"):
                        answer.setdefault("headers", {}).update(REPLAYED)
            op["responses"] = dict(sorted(responses.items()))
            for p in op.get("parameters", []):
                if p["schema"].get("type") == "integer" and "maximum" not in p["schema"]:
                    p["schema"]["maximum"] = MAX_ID  # beyond, 422 out_of_range: no database integer holds it
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422, replaced by Error everywhere
        schemas.pop(unused, None)
    _decimal_strings(schemas)


def _decimal_strings(node) -> None:
    """Pydantic documents a bounded Decimal as `number or any string`; the string is a decimal number."""
    if isinstance(node, list):
        for item in node:
            _decimal_strings(item)
    elif isinstance(node, dict):
        for value in node.values():
            _decimal_strings(value)
        number = next((s for s in node.get("anyOf", []) if s.get("type") == "number"), None)
        for s in node.get("anyOf", []) if number else []:
            if s == {"type": "string"} and number is not None:
                s["pattern"] = DECIMAL if number.get("minimum", -1) < 0 else UNSIGNED_DECIMAL


def install(app: FastAPI) -> None:
    """Serve the document with its error answers told (generated once per change of the route table)."""
    plain, told = app.openapi, cast(list[dict[str, Any]], [])

    def openapi() -> dict:
        spec = plain()
        if not told or told[-1] is not spec:
            _tell(app, spec)
            told[:] = [spec]
        return spec

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document
