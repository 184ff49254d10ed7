"""The console's API keys (users:manage, as console users are): each key's name, role, prefix, when it
was made, its last write (from the audit log: reads are not logged) and whether it is revoked; a new key
(its secret shown on the answer to the form, once: only its digest is stored); revoking one. Through the
same security service as `jifen apikey create / revoke`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from jifen.db import owned, run_in_transaction
from jifen.errors import InvalidRequest, JifenError
from jifen.idempotency import idempotent
from jifen.programs.models import Program
from jifen.security.audit import AuditEntry
from jifen.security.models import ApiKey
from jifen.security.service import ROLES, Principal, create_api_key, revoke_api_key
from jifen.web.console import allowed, render

router = APIRouter(prefix="/console", include_in_schema=False)
Admin = Annotated[Principal, allowed("users:manage")]
AdminForm = Annotated[Principal, allowed("users:manage", write=True)]
Text = Annotated[str, Form()]
BACK = "/console/api-keys"


def _page(request: Request, who: Principal, status: int = 200, **shown):
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        keys = list(s.scalars(select(ApiKey).where(ApiKey.program_id == program.id).order_by(ApiKey.id.desc())))
        actors = {f"apikey:{k.id}:{k.name}": k.id for k in keys}
        last = {actors[actor]: at for actor, at in s.execute(
            select(AuditEntry.actor, func.max(AuditEntry.at)).where(
                AuditEntry.program_id == program.id, AuditEntry.actor.in_(list(actors) or [""]))
            .group_by(AuditEntry.actor))}
    return render(request, "apikeys.html", status=status, who=who, keys=keys, last=last, roles=ROLES,
                  tz=program.timezone, **{"error": None, "form": {}, "created": None, "secret": None} | shown)


@router.get("/api-keys")
def key_list(request: Request, who: Admin):
    return _page(request, who)


@router.post("/api-keys")
def key_create(request: Request, who: AdminForm, name: Text = "", role: Text = "", once: Text = ""):
    """The secret is in this answer only; a form sent again (same one-time key) makes no second key."""
    form, fresh = {"name": name, "role": role}, {}

    def tx(s):
        def make() -> dict:
            if not name.strip():
                raise InvalidRequest("a key needs a name (who or what uses it)", code="name_required")
            key, fresh["secret"] = create_api_key(s, s.get_one(Program, who.program_id), role, name.strip()[:200])
            return {"id": key.id}

        return idempotent(s, who.program_id, f"console:{once}", "console.api_key", form, make)

    try:
        (result, replayed) = run_in_transaction(request.app.state.sessions, tx)
    except JifenError as exc:
        return _page(request, who, status=422, error=exc.message, form=form)
    return _page(request, who, created=result["id"], secret=None if replayed else fresh.get("secret"))


@router.post("/api-keys/{key_id}/revoke")
def key_revoke(request: Request, who: AdminForm, key_id: int):
    def tx(s):
        revoke_api_key(s, owned(s, ApiKey, key_id, who.program_id, "API key", "unknown_api_key").id)

    try:
        run_in_transaction(request.app.state.sessions, tx)
    except JifenError as exc:
        return _page(request, who, status=exc.status, error=exc.message)
    return RedirectResponse(BACK, status_code=303)
