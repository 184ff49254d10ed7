"""The authorisation matrix, generated from the app's route table: every /v1 route declares a permission
(a new route without one fails here), and every role is refused (403) exactly where the permission table
says so — whatever else the request gets wrong (404, 422 …) comes after."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from jifen.api import create_app
from jifen.db import utcnow
from jifen.programs.service import get_program
from jifen.security import member_tokens
from jifen.security.service import PERMISSIONS, ROLES
from tests.conftest import api_key


def permission_of(route: APIRoute) -> str | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if getattr(dep.call, "permission", None):
            return dep.call.permission
        stack.extend(dep.dependencies)
    return None


def all_routes(routes):
    """APIRoutes, including those of included routers (FastAPI keeps them behind the router objects)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from all_routes(route.original_router.routes)


def v1_routes(app) -> list[tuple[str, str, str | None]]:
    return sorted((method, route.path, permission_of(route)) for route in all_routes(app.routes)
                  if route.path.startswith("/v1") for method in route.methods)


def test_every_v1_route_declares_a_permission(tmp_path):
    app = create_app(f"sqlite:///{tmp_path}/x.db")
    routes = v1_routes(app)
    assert len(routes) == len([1 for p, item in app.openapi()["paths"].items() if p.startswith("/v1")
                               for _ in item])  # every documented /v1 operation is in the matrix
    missing = [(m, p) for m, p, perm in routes if perm is None]
    assert missing == []
    assert all(perm in PERMISSIONS for _, _, perm in v1_routes(app))
    app.state.engine.dispose()


def test_role_by_route_matrix(sqlite_app):
    routes = v1_routes(sqlite_app)
    assert len(routes) > 60
    with TestClient(sqlite_app) as client:
        keys = {role: api_key(sqlite_app, role) for role in ROLES}
        wrong, refusals = [], 0
        for method, path, perm in routes:
            url = re.sub(r"\{[^}]+\}", "1", path)
            for role in ROLES:
                headers = {"Authorization": f"Bearer {keys[role]}", "Idempotency-Key": f"{role}-{method}-{path}"}
                r = client.request(method, url, headers=headers, json={})
                refused = r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
                refusals += refused
                if refused != (role not in PERMISSIONS[perm]):
                    wrong.append((role, method, path, r.status_code))
        assert wrong == [] and refusals > 100  # (6 roles × every route: many refusals, each where the table says)
        anonymous = [(m, p) for m, p, _ in routes
                     if client.request(m, re.sub(r"\{[^}]+\}", "1", p), json={}).status_code != 401]
        assert anonymous == []  # no /v1 route answers without a key


def test_the_documented_permission_table_is_the_codes():
    """docs/security.md's table is read by people deciding who gets which key: it must be PERMISSIONS exactly."""
    text = (Path(__file__).parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    section = text.split("## Roles and permissions")[1].split("\n## ")[0]
    header, _, *rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in section.splitlines()
                        if line.startswith("|")]
    assert header[1:] == list(ROLES)
    table = {row[0].strip("`"): frozenset(r for r, mark in zip(ROLES, row[1:], strict=True) if mark == "✓")
             for row in rows}
    assert table == PERMISSIONS


def test_member_token_by_route(sqlite_app):
    """A member token is refused (403) on every /v1 route but those MEMBER_ROUTES lists, and on those too
    when the path names another member; a route added later stays closed to it until listed."""
    routes = v1_routes(sqlite_app)
    assert member_tokens.MEMBER_ROUTES <= {(m, p) for m, p, _ in routes}  # no stale entry
    with sqlite_app.state.read_sessions() as s:
        token = member_tokens.issue(get_program(s, "default").id, "1", utcnow())["token"]  # for member "1"
    with TestClient(sqlite_app) as client:
        wrong = []
        for method, path, _ in routes:
            for member, open_to_it in (("1", (method, path) in member_tokens.MEMBER_ROUTES), ("2", False)):
                url = re.sub(r"\{[^}]+\}", "1", path.replace("{member_id}", member))
                r = client.request(method, url, json={}, headers={"Authorization": f"Bearer {token}",
                                                                  "Idempotency-Key": f"m{member}-{method}-{path}"})
                refused = r.status_code == 403 and r.json()["error"]["code"] in ("forbidden", "member_token_cannot_mint")
                if refused == open_to_it:
                    wrong.append((member, method, path, r.status_code))
        assert wrong == []
