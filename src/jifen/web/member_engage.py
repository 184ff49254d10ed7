"""The member centre's engagement pages: check-in with its streak calendar, tasks and badges, the invite code,
gifts and red packets, messages — each action through the service its API route calls."""

from __future__ import annotations

import calendar as months
import datetime as dt
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from jifen.apikit import member as named_member
from jifen.db import utcnow
from jifen.engagement import checkin, gifts, red_packets, referrals, tasks
from jifen.engagement.models import InviteCode, RedPacket
from jifen.errors import JifenError
from jifen.notify import service as notify
from jifen.notify.api import inbox_view
from jifen.web.member_centre import Actor, FormKey, Visitor, act, member_of, page, problem_page

router = APIRouter(prefix="/m", include_in_schema=False)


def weeks(month: str, checked: set[str]) -> list[list[tuple[int, bool] | None]]:
    """The month as calendar rows, Monday first: (day, checked in) or None outside the month."""
    year, number = (int(x) for x in month.split("-"))
    return [[(d, f"{month}-{d:02d}" in checked) if d else None for d in week]
            for week in months.Calendar().monthdayscalendar(year, number)]


@router.get("/check-in")
def check_in_page(request: Request, who: Visitor, month: str | None = None, points: int | None = None):
    with request.app.state.read_sessions() as s:
        (program, member), now = member_of(s, who), utcnow()
        today = now.astimezone(ZoneInfo(program.timezone)).date()
        try:
            cal = checkin.calendar(s, program, member, month or f"{today:%Y-%m}", now)
        except JifenError as exc:
            return problem_page(request, exc)
        first = dt.date.fromisoformat(cal["month"] + "-01")
        before, after = first - dt.timedelta(days=1), first + dt.timedelta(days=31)
        return page(request, "m/checkin.html", who, cal=cal, grid=weeks(cal["month"], set(cal["days"])), first=first,
                    today=today, done_today=today.isoformat() in cal["days"], points=points,
                    before=f"{before:%Y-%m}", after=f"{after:%Y-%m}" if after.replace(day=1) <= today else None)


@router.post("/check-in")
def check_in(request: Request, who: Actor, key: FormKey):
    done = act(request, who, key, f"check_in:{who.member_id}", {"day": None, "channel": "h5"},
               lambda sc, member: checkin.check_in(sc.session, sc.program, member, sc.now, channel="h5"))
    if not isinstance(done, dict):
        return done
    return RedirectResponse(f"/m/check-in?points={int(done.get('points', 0))}", status_code=303)


@router.get("/tasks")
def task_list(request: Request, who: Visitor):
    with request.app.state.read_sessions() as s:
        program, member = member_of(s, who)
        return page(request, "m/tasks.html", who, tasks=tasks.progress(s, program, member, utcnow()),
                    badges=tasks.badges(s, member), tz=program.timezone)


@router.get("/invite")
def invite(request: Request, who: Visitor):
    with request.app.state.read_sessions() as s:
        member = member_of(s, who)[1]
        code = s.scalar(select(InviteCode.code).where(InviteCode.member_pk == member.id))
        return page(request, "m/invite.html", who, code=code)


@router.post("/invite")
def make_invite_code(request: Request, who: Actor, key: FormKey):
    done = act(request, who, key, f"invite_code:{who.member_id}", {},
               lambda sc, member: {"code": referrals.invite_code(sc.session, sc.program, member, sc.now)})
    return done if not isinstance(done, dict) else RedirectResponse("/m/invite", status_code=303)


@router.get("/gifts")
def gift_page(request: Request, who: Visitor, sent: int | None = None, gave: int | None = None,
              packet: int | None = None, got: int | None = None):
    with request.app.state.read_sessions() as s:
        program, member = member_of(s, who)
        mine = [red_packets.view(s, p) for p in s.scalars(select(RedPacket).where(RedPacket.sender_pk == member.id)
                                                            .order_by(RedPacket.id.desc()).limit(10))]
        return page(request, "m/gifts.html", who, mine=mine, sent=sent, gave=gave, packet=packet, got=got,
                    tz=program.timezone, most=gifts.GIFT_POINTS_PER_DAY, max_shares=red_packets.MAX_SHARES)


@router.post("/gifts")
def give(request: Request, who: Actor, key: FormKey, friend: Annotated[str, Form(min_length=1, max_length=64)],
         points: Annotated[int, Form(ge=1, le=gifts.GIFT_POINTS_PER_DAY)], message: Annotated[str, Form(max_length=200)] = ""):
    body = {"from_member_id": who.member_id, "to_member_id": friend.strip(), "points": points, "message": message}
    done = act(request, who, key, "gifts.create", body, lambda sc, member: {"entry_id": gifts.gift(
        sc, member, named_member(sc, friend.strip()), points, message).id})
    return done if not isinstance(done, dict) else RedirectResponse(f"/m/gifts?gave={points}", status_code=303)


@router.post("/red-packets")
def send_packet(request: Request, who: Actor, key: FormKey, points: Annotated[int, Form(ge=1, le=1_000_000)],
                shares: Annotated[int, Form(ge=1, le=red_packets.MAX_SHARES)],
                split: Annotated[Literal["random", "equal"], Form()] = "random",
                message: Annotated[str, Form(max_length=200)] = ""):
    body = {"member_id": who.member_id, "points": points, "shares": shares, "split": split, "message": message,
            "expires_hours": 24}
    done = act(request, who, key, "red_packets.send", body, lambda sc, member: {"id": red_packets.send(
        sc, member, points, shares, split, dt.timedelta(hours=24), message).id})
    return done if not isinstance(done, dict) else RedirectResponse(f"/m/gifts?sent={done['id']}", status_code=303)


@router.post("/red-packets/claim")
def claim_packet(request: Request, who: Actor, key: FormKey, packet: Annotated[int, Form(ge=1, le=2**62)]):
    done = act(request, who, key, f"red_packets.claim:{packet}", {"member_id": who.member_id},
               lambda sc, member: {"points": red_packets.claim(
                   sc, red_packets.get_packet(sc.session, sc.program.id, packet), member).points})
    if not isinstance(done, dict):
        return done
    return RedirectResponse(f"/m/gifts?packet={packet}&got={done['points']}", status_code=303)


@router.get("/messages")
def messages(request: Request, who: Visitor):
    with request.app.state.read_sessions() as s:
        program, member = member_of(s, who)
        return page(request, "m/messages.html", who, items=[inbox_view(i) for i in notify.inbox(s, member, False, 50)],
                    tz=program.timezone)


@router.post("/messages/{item_id}/read")
def read_message(request: Request, item_id: int, who: Actor, key: FormKey):
    done = act(request, who, key, f"inbox.read:{who.member_id}:{item_id}", {},
               lambda sc, member: inbox_view(notify.mark_read(sc.session, member, item_id, sc.now)))
    return done if not isinstance(done, dict) else RedirectResponse("/m/messages", status_code=303)
