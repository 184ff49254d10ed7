"""The mall's coupon write-off log (核銷): which coupon, for which reward and member, who wrote it off
(an API key at a till, or a console user), at which merchant and store, when; newest first, a page at a
time (keyed on (used_at, code): ix_coupons_used). Every console role reads it, as it reads the mall; a role
with coupons:redeem may write one off here too, through the same service as POST /v1/coupons/{code}/redeem."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import and_, or_, select

from jifen.errors import InvalidRequest
from jifen.mall import service
from jifen.mall.models import Coupon, Reward
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.security.service import Principal
from jifen.web.console import SignedIn, allowed, render
from jifen.web.forms import done_of, submit

router = APIRouter(prefix="/console", include_in_schema=False)
Till = Annotated[Principal, allowed("coupons:redeem", write=True)]
Text = Annotated[str, Form()]
PAGE_SIZE = 50
HERE = "/console/mall/write-offs"


def _cursor(text: str | None) -> tuple[dt.datetime, str] | None:
    """`before` = the last row's used_at and code (both: two write-offs can share a moment)."""
    if not text:
        return None
    at, _, code = text.partition("~")
    try:
        return dt.datetime.fromisoformat(at), code
    except ValueError:
        raise InvalidRequest("not a page of this list", code="invalid_page") from None


def _page(request: Request, who: Principal, status: int = 200, error: str | None = None, form: dict | None = None):
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        q = (select(Coupon, Reward.name, Member.member_id).join(Reward, Reward.id == Coupon.reward_id)
             .join(Member, Member.id == Coupon.member_pk)
             .where(Coupon.program_id == program.id, Coupon.used_at.is_not(None)))
        try:
            before = _cursor(request.query_params.get("before"))
        except InvalidRequest as exc:
            before, error, status = None, exc.message, 422
        if before:
            q = q.where(or_(Coupon.used_at < before[0], and_(Coupon.used_at == before[0], Coupon.code < before[1])))
        rows = s.execute(q.order_by(Coupon.used_at.desc(), Coupon.code.desc()).limit(PAGE_SIZE + 1)).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_page = f"{rows[-1][0].used_at.isoformat()}~{rows[-1][0].code}" if more else None
    return render(request, "write_offs.html", status=status, who=who, rows=rows, next_page=next_page,
                  first=before is None, tz=program.timezone, error=error, form=form or {},
                  done=done_of(request, ("write_off",)))


@router.get("/mall/write-offs")
def write_offs(request: Request, who: SignedIn):
    return _page(request, who)


@router.post("/mall/write-offs")
def write_off(request: Request, who: Till, code: Text = "", merchant: Text = "", store: Text = "", once: Text = ""):
    form = {"code": code, "merchant": merchant, "store": store}

    def work(sc):
        if not merchant.strip():
            raise InvalidRequest("name the merchant the coupon is used at", code="merchant_required")
        service.write_off(sc.session, sc.program, code.strip().upper(), merchant.strip()[:100],
                          store.strip()[:100] or None, sc.now, by=who.actor)

    error = submit(request, who, once, "write_off", form, work)
    if error:
        return _page(request, who, status=422, error=error, form=form)
    return RedirectResponse(f"{HERE}?done=write_off", status_code=303)
