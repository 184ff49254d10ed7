"""Check-in, make-up cards, invite codes and referrals, tasks and badges, leaderboards."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from sqlalchemy.orm import Session

from jifen.apikit import Key, keyed, member, write
from jifen.config import get_settings
from jifen.db import utcnow
from jifen.engagement import boards, checkin, credit, friends, gifts, leaderboard, pools, red_packets, referrals, tasks, teams
from jifen.flows.intake import ingest
from jifen.ledger.schemas import MemberId
from jifen.mall import service as mall_service
from jifen.members.models import Member
from jifen.members.service import get_member
from jifen.openapi import errors
from jifen.programs.models import Program
from jifen.rules.schema import CODE
from jifen.security.deps import require
from jifen.security.service import Principal
from jifen.strict import Strict

router = APIRouter(prefix="/v1", tags=["engagement"])
Sender = Annotated[Principal, Depends(require("events:write"))]
Reader = Annotated[Principal, Depends(require("members:read"))]
Writer = Annotated[Principal, Depends(require("members:write"))]
Manager = Annotated[Principal, Depends(require("mall:manage"))]
Corrector = Annotated[Principal, Depends(require("points:correct"))]


class CheckInIn(Strict):
    day: dt.date | None = None  # a missed day of the last week, with a make-up card
    channel: str | None = Field(None, max_length=32)


class CardsIn(Strict):
    cards: int = Field(ge=1, le=100)


class ReferralIn(Strict):
    member_id: MemberId  # the new member
    code: str = Field(min_length=4, max_length=16)


def _member(s: Session, who: Principal, member_id: str) -> tuple[Program, Member]:
    program = s.get_one(Program, who.program_id)
    return program, get_member(s, program, member_id)


@router.post("/members/{member_id}/check-in", status_code=201, summary="Today's check-in (or a make-up day)")
def check_in(member_id: str, body: CheckInIn, request: Request, who: Sender, key: Key):
    return keyed(request, who, key, f"check_in:{member_id}", body, lambda s: checkin.check_in(
        s, *_member(s, who, member_id), utcnow(), day=body.day, channel=body.channel), status=201)


@router.get("/members/{member_id}/check-ins", summary="Days checked in during a month, streak, make-up cards")
def check_ins(member_id: str, request: Request, who: Reader, month: str | None = None):
    with request.app.state.read_sessions() as s:
        program, member = _member(s, who, member_id)
        now = utcnow()
        return checkin.calendar(s, program, member, month or now.strftime("%Y-%m"), now)


@router.post("/members/{member_id}/makeup-cards", summary="Give a member make-up cards")
def grant_cards(member_id: str, body: CardsIn, request: Request, who: Manager, key: Key):
    return keyed(request, who, key, f"makeup_cards:{member_id}", body, lambda s: {"makeup_cards": checkin.grant_cards(
        s, _member(s, who, member_id)[1], body.cards)})


@router.post("/members/{member_id}/invite-code", summary="The member's invite code (made on first ask)")
def invite_code(member_id: str, request: Request, who: Writer, key: Key):
    return keyed(request, who, key, f"invite_code:{member_id}", None, lambda s: {"code": referrals.invite_code(
        s, *_member(s, who, member_id), utcnow())})


@router.post("/referrals", status_code=201, responses=errors(404),
             summary="A new member joins with an invite code: both sides rewarded")
def accept_referral(body: ReferralIn, request: Request, who: Writer, key: Key):
    def work(s):
        program, member = _member(s, who, body.member_id)
        now = utcnow()
        events = referrals.accept(s, program, member, body.code, now)
        return {"results": ingest(s, program, events, now=now, actor=who.actor)}

    return keyed(request, who, key, "referrals.accept", body, work, status=201)


@router.get("/leaderboards/points", responses=errors(404),
            summary="Members by points, ¥ spent or activity in a period, and a member's own rank")
def points_board(request: Request, who: Reader, period: Literal["day", "week", "month", "quarter"] = "week",
                 member_id: str | None = None, limit: Annotated[int, Query(ge=1, le=100)] = 20,
                 metric: Literal["points", "spend", "activity"] = "points"):
    with request.app.state.read_sessions() as s:
        program = s.get(Program, who.program_id)
        me = get_member(s, program, member_id) if member_id else None
        url = get_settings().redis_url
        if url and metric == "points":  # the boards kept in Redis are the points boards
            return boards.board(url, s, program, period, utcnow(), limit, me)
        return leaderboard.points_board(s, program, period, utcnow(), limit, me, metric)


class TaskIn(Strict):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    period: Literal["once", "daily", "weekly"] = "once"
    events: list[str] = Field(min_length=1, max_length=20)
    condition: str = Field("true", max_length=1000)
    measure: Literal["count", "amount"] = "count"
    target: int = Field(1, ge=1, le=10**9)
    points: int = Field(0, ge=0, le=10**7)
    badge: str | None = Field(None, pattern=CODE)
    requires: str | None = None


@router.post("/tasks", status_code=201, summary="A task or mission: events, condition, target, points, badge")
def create_task(body: TaskIn, request: Request, who: Manager, key: Key):
    def work(s):
        task = tasks.create_task(s, s.get(Program, who.program_id), body.model_dump())
        return {"code": task.code, "period": task.period, "target": task.target, "requires": task.requires}

    return keyed(request, who, key, "tasks.create", body, work, status=201)


@router.get("/members/{member_id}/tasks", summary="The member's progress on every task this period")
def member_tasks(member_id: str, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return tasks.progress(s, *_member(s, who, member_id), utcnow())


@router.get("/members/{member_id}/badges", summary="Badges the member has earned")
def member_badges(member_id: str, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return tasks.badges(s, _member(s, who, member_id)[1])


class RedPacketIn(Strict):
    member_id: MemberId  # the sender
    points: int = Field(ge=1, le=1_000_000)
    shares: int = Field(ge=1, le=red_packets.MAX_SHARES)
    split: Literal["random", "equal"] = "random"
    message: str = Field("", max_length=200)
    expires_hours: int = Field(24, ge=1, le=24 * 7)


class ClaimIn(Strict):
    member_id: MemberId


@router.post("/red-packets", status_code=201, responses=errors(404),
             summary="Send a red packet: points split into shares, held till claimed")
def send_red_packet(body: RedPacketIn, request: Request, who: Sender, key: Key):
    return write(request, who, key, "red_packets.send", body, lambda sc: red_packets.view(sc.session, red_packets.send(
        sc, member(sc, body.member_id), body.points, body.shares, body.split, dt.timedelta(hours=body.expires_hours),
        body.message)), status=201)


@router.post("/red-packets/{packet_id}/claim", status_code=201, summary="A friend claims one share")
def claim_red_packet(packet_id: int, body: ClaimIn, request: Request, who: Sender, key: Key):
    def work(sc):
        share = red_packets.claim(sc, red_packets.get_packet(sc.session, sc.program.id, packet_id),
                                  member(sc, body.member_id))
        return {"packet_id": packet_id, "member_id": body.member_id, "points": share.points,
                "entry_id": share.transfer_entry_id}

    return write(request, who, key, f"red_packets.claim:{packet_id}", body, work, status=201)


@router.get("/red-packets/{packet_id}", summary="A red packet: who claimed how much, what is left")
def show_red_packet(packet_id: int, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return red_packets.view(s, red_packets.get_packet(s, who.program_id, packet_id))


class GiftIn(Strict):
    from_member_id: MemberId
    to_member_id: MemberId
    points: int = Field(ge=1, le=gifts.GIFT_POINTS_PER_DAY)
    message: str = Field("", max_length=200)


class BudgetIn(Strict):
    points: int = Field(ge=1, le=1_000_000)


class UgcAwardIn(Strict):
    from_member_id: MemberId
    to_member_id: MemberId
    points: int
    reason: str = Field(min_length=1, max_length=200)


def entry_result(e) -> dict:
    return {"entry_id": e.id, "type": e.type, "points": e.points}


@router.post("/gifts", status_code=201, responses=errors(404), summary="Give points to a friend (daily limits)")
def give(body: GiftIn, request: Request, who: Sender, key: Key):
    return write(request, who, key, "gifts.create", body, lambda sc: entry_result(gifts.gift(
        sc, member(sc, body.from_member_id), member(sc, body.to_member_id), body.points, body.message)), status=201)


@router.post("/members/{member_id}/award-budget", summary="Grant a member an award budget for UGC rewards")
def award_budget(member_id: str, body: BudgetIn, request: Request, who: Manager, key: Key):
    return keyed(request, who, key, f"award_budget:{member_id}", body, lambda s: gifts.grant_budget(
        s, _member(s, who, member_id)[1], body.points))


@router.post("/ugc-awards", status_code=201, responses=errors(404),
             summary="A member with a budget rewards another (50–200 points)")
def ugc_award(body: UgcAwardIn, request: Request, who: Sender, key: Key):
    return write(request, who, key, "ugc.award", body, lambda sc: entry_result(gifts.ugc_award(
        sc, member(sc, body.from_member_id), member(sc, body.to_member_id), body.points, body.reason)), status=201)


class TeamIn(Strict):
    member_id: MemberId  # the captain
    name: str = Field(min_length=1, max_length=100)
    goal: int = Field(0, ge=0, le=10**9)


class TeamMemberIn(Strict):
    member_id: MemberId


@router.post("/teams", status_code=201, responses=errors(404),
             summary="Open a team (the member is its captain) with a points goal")
def create_team(body: TeamIn, request: Request, who: Writer, key: Key):
    def work(s):
        program, captain = _member(s, who, body.member_id)
        return teams.view(s, program, teams.create(s, program, captain, body.name, body.goal, utcnow()))

    return keyed(request, who, key, "teams.create", body, work, status=201)


@router.post("/teams/{code}/join", summary="Join a team with its code")
def join_team(code: str, body: TeamMemberIn, request: Request, who: Writer, key: Key):
    def work(s):
        program, m = _member(s, who, body.member_id)
        team = teams.get_team(s, program, code)
        teams.join(s, team, m, utcnow())
        return teams.view(s, program, team)

    return keyed(request, who, key, f"teams.join:{code}", body, work)


@router.post("/teams/{code}/leave", summary="Leave a team (the captain last)")
def leave_team(code: str, body: TeamMemberIn, request: Request, who: Writer, key: Key):
    def work(s):
        program, m = _member(s, who, body.member_id)
        team = teams.get_team(s, program, code)
        teams.leave(s, team, m)
        return teams.view(s, program, team)

    return keyed(request, who, key, f"teams.leave:{code}", body, work)


@router.get("/teams/{code}", summary="A team: members, points since it formed, progress to its goal")
def show_team(code: str, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        program = s.get(Program, who.program_id)
        return teams.view(s, program, teams.get_team(s, program, code))


@router.get("/leaderboards/teams", summary="Teams by points earned in a period")
def team_board(request: Request, who: Reader, period: Literal["day", "week", "month", "quarter"] = "week",
               limit: Annotated[int, Query(ge=1, le=100)] = 20):
    with request.app.state.read_sessions() as s:
        program, now = s.get(Program, who.program_id), utcnow()
        since = leaderboard.period_since(program, period, now)
        return {"period": period, "since": since.isoformat(), "top": teams.board(s, program, since, limit)}


class FriendIn(Strict):
    friend_id: MemberId


class PoolIn(Strict):
    member_id: MemberId  # the owner, who gets the reward
    reward: str = Field(min_length=1, max_length=64)
    hours: int = Field(24, ge=1, le=pools.MAX_HOURS)


class ContributionIn(Strict):
    member_id: MemberId
    points: int = Field(ge=1, le=10**9)


@router.post("/members/{member_id}/friends", status_code=201, summary="Befriend another member (both ways)")
def add_friend(member_id: str, body: FriendIn, request: Request, who: Writer, key: Key):
    def work(s):
        program, m = _member(s, who, member_id)
        friends.befriend(s, m, get_member(s, program, body.friend_id), utcnow())
        return friends.friends(s, m)

    return keyed(request, who, key, f"friends.add:{member_id}", body, work, status=201)


@router.get("/members/{member_id}/friends", summary="Friends, their latest activity, and this week's board among them")
def list_friends(member_id: str, request: Request, who: Reader, limit: Annotated[int, Query(ge=1, le=100)] = 20):
    with request.app.state.read_sessions() as s:
        program, m = _member(s, who, member_id)
        return {"friends": friends.friends(s, m), "feed": friends.feed(s, m, limit),
                "board": friends.board(s, program, m, utcnow())}


@router.post("/pools", status_code=201, responses=errors(404), summary="Open a pool for a reward that friends help pay for")
def open_pool(body: PoolIn, request: Request, who: Sender, key: Key):
    return write(request, who, key, "pools.open", body, lambda sc: pools.view(sc.session, pools.open_pool(
        sc, member(sc, body.member_id), mall_service.get_reward(sc.session, sc.program, body.reward), body.hours)),
        status=201)


@router.post("/pools/{pool_id}/contribute", status_code=201, summary="Put points in a pool (held until it completes)")
def contribute(pool_id: int, body: ContributionIn, request: Request, who: Sender, key: Key):
    return write(request, who, key, f"pools.contribute:{pool_id}", body, lambda sc: pools.view(sc.session,
                 pools.contribute(sc, pools.get_pool(sc.session, sc.program.id, pool_id), member(sc, body.member_id),
                                  body.points)), status=201)


@router.get("/pools/{pool_id}", summary="A pool: target, raised, contributors, status")
def show_pool(pool_id: int, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return pools.view(s, pools.get_pool(s, who.program_id, pool_id))


class CreditIn(Strict):
    score: int = Field(ge=0, le=100)
    reason: str = Field(min_length=1, max_length=200)


@router.put("/members/{member_id}/credit", summary="Set a member's credit score (below 80 it lowers their earning)")
def put_credit(member_id: str, body: CreditIn, request: Request, who: Corrector, key: Key):
    return keyed(request, who, key, f"credit.put:{member_id}", body, lambda s: credit.set_credit(
        s, _member(s, who, member_id)[1], body.score, body.reason, utcnow()))
