"""Check-in (one a day, make-up cards, concurrency), referrals (two levels, no self-referral, first order
reward taken back on refund, racing codes), leaderboards."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from jifen.db import make_engine, make_sessionmaker, run_in_transaction, utcnow
from jifen.engagement import checkin, referrals
from jifen.errors import JifenError
from jifen.members.service import get_member
from jifen.programs.service import get_program
from tests.conftest import Ledger, api_key, keyed
from tests.support.intake import SEED_001, add_members, configure, send_one
from tests.support.racing import outcomes, race
from tests.support.scratch_redis import scratch_redis

REFERRAL_RULES = {"rules": SEED_001["rules"] | {"rules": [
    {"code": "invite_l1", "events": ["invite"], "condition": "event.attributes.level == 1", "award": {"fixed": 50},
     "caps": {"lifetime": 100}},
    {"code": "invite_l2", "events": ["invite"], "condition": "event.attributes.level == 2", "award": {"fixed": 10}},
    {"code": "welcome", "events": ["invited"], "award": {"fixed": 20}},
    {"code": "first_order", "events": ["invite_purchase"], "award": {"fixed": 100}},
    {"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}},
    {"code": "daily", "events": ["check_in"], "award": {"fixed": 5}},
    {"code": "streak7", "events": ["check_in"], "condition": 'streak("check_in") % 7 == 0', "award": {"fixed": 50}}]}}


@pytest.fixture
def api(app, factory):
    configure(factory, {"pending_days": {}} | REFERRAL_RULES, now=utcnow() - dt.timedelta(days=30))
    add_members(factory, "alice", "bob", "carol", "dave")
    with keyed(TestClient(app)) as client:
        yield client, {"Authorization": f"Bearer {api_key(app, 'admin')}"}


def test_check_in_once_a_day_and_make_up_a_missed_day(api, factory):
    client, admin = api
    first = client.post("/v1/members/alice/check-in", json={}, headers=admin)
    assert first.status_code == 201 and first.json()["points"] == 5
    again = client.post("/v1/members/alice/check-in", json={}, headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_checked_in"
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    missed = (today - dt.timedelta(days=1)).isoformat()
    none = client.post("/v1/members/alice/check-in", json={"day": missed}, headers=admin)
    assert none.status_code == 409 and none.json()["error"]["code"] == "no_makeup_cards"
    assert client.post("/v1/members/alice/makeup-cards", json={"cards": 2}, headers=admin).json() == {"makeup_cards": 2}
    made = client.post("/v1/members/alice/check-in", json={"day": missed}, headers=admin)
    assert made.status_code == 201 and made.json()["points"] == 5
    too_old = client.post("/v1/members/alice/check-in", json={"day": (today - dt.timedelta(days=8)).isoformat()},
                          headers=admin)
    assert too_old.status_code == 422 and too_old.json()["error"]["code"] == "makeup_window"
    cal = client.get("/v1/members/alice/check-ins", params={"month": today.strftime("%Y-%m")}, headers=admin).json()
    assert today.isoformat() in cal["days"] and cal["makeup_cards"] == 1 and cal["streak"] == 2
    assert Ledger(factory).verify() == []


def test_make_up_days_complete_a_streak(api, factory):
    now = utcnow()
    tz = dt.timezone(dt.timedelta(hours=8))
    today = now.astimezone(tz).date()
    with factory() as s, s.begin():
        program = get_program(s, "default")
        bob = get_member(s, program, "bob")
        checkin.grant_cards(s, bob, 6)
        points = [checkin.check_in(s, program, bob, now, day=today - dt.timedelta(days=d))["points"]
                  for d in range(6, 0, -1)]
        points.append(checkin.check_in(s, program, bob, now)["points"])
    assert points == [5] * 6 + [55]  # the seventh day in a row, with six made up


def test_referrals_two_levels_no_self_and_first_order(api, factory):
    client, admin = api
    code_a = client.post("/v1/members/alice/invite-code", headers=admin).json()["code"]
    assert client.post("/v1/members/alice/invite-code", headers=admin).json()["code"] == code_a  # stable
    selfish = client.post("/v1/referrals", json={"member_id": "alice", "code": code_a}, headers=admin)
    assert selfish.status_code == 409 and selfish.json()["error"]["code"] == "self_referral"
    r = client.post("/v1/referrals", json={"member_id": "bob", "code": code_a}, headers=admin).json()
    assert [(x["member_id"], x["points"]) for x in r["results"]] == [("alice", 50), ("bob", 20)]
    code_b = client.post("/v1/members/bob/invite-code", headers=admin).json()["code"]
    r2 = client.post("/v1/referrals", json={"member_id": "carol", "code": code_b}, headers=admin).json()
    assert sorted((x["member_id"], x["points"]) for x in r2["results"]) == [("alice", 10), ("bob", 50), ("carol", 20)]
    twice = client.post("/v1/referrals", json={"member_id": "carol", "code": code_a}, headers=admin)
    assert twice.json()["error"]["code"] == "already_referred"
    assert client.post("/v1/referrals", json={"member_id": "dave", "code": "NOPE1234"},
                       headers=admin).json()["error"]["code"] == "unknown_invite_code"
    # Bob's first order rewards Alice; a second order does not; refunding the first takes it back.
    before = Ledger(factory).balances("alice")["available"]
    send_one(factory, "bob", amount=30, order_id="B1", now=utcnow())
    assert Ledger(factory).balances("alice")["available"] == before + 100
    send_one(factory, "bob", amount=40, order_id="B2", now=utcnow())
    assert Ledger(factory).balances("alice")["available"] == before + 100
    send_one(factory, "bob", "refund", order_id="B1", now=utcnow())
    assert Ledger(factory).balances("alice")["available"] == before
    assert Ledger(factory).verify() == []


def test_inviter_caps_come_from_the_rules(api, factory):
    client, admin = api
    code = client.post("/v1/members/alice/invite-code", headers=admin).json()["code"]
    add_members(factory, "e1", "e2", "e3")
    got = [client.post("/v1/referrals", json={"member_id": m, "code": code}, headers=admin).json()["results"][0]["points"]
           for m in ("e1", "e2", "e3")]
    assert got == [50, 50, 0]  # lifetime cap of 100 for the inviter


def test_points_leaderboard(api, factory):
    client, admin = api
    for who, amount in (("alice", 300), ("bob", 120), ("carol", 500)):
        send_one(factory, who, amount=amount, order_id=f"L-{who}", at=utcnow() - dt.timedelta(minutes=1), now=utcnow())
    board = client.get("/v1/leaderboards/points", params={"period": "month", "member_id": "bob"}, headers=admin).json()
    assert [(x["member_id"], x["points"]) for x in board["top"]] == [("carol", 500), ("alice", 300), ("bob", 120)]
    assert board["me"] == {"member_id": "bob", "points": 120, "rank": 3}
    send_one(factory, "bob", amount="10.50", order_id="L-bob-2", at=utcnow() - dt.timedelta(minutes=1), now=utcnow())
    spend = client.get("/v1/leaderboards/points", params={"period": "quarter", "metric": "spend"}, headers=admin).json()
    assert [(x["member_id"], x["spend"]) for x in spend["top"]] == [("carol", 500), ("alice", 300), ("bob", "130.50")]
    active = client.get("/v1/leaderboards/points", params={"metric": "activity", "period": "quarter", "member_id": "bob"},
                        headers=admin).json()
    assert active["top"][0] == {"rank": 1, "member_id": "bob", "name": None, "activity": 2}


def test_concurrent_check_ins_and_referrals_on_postgresql(pg_only_url):
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory, {"pending_days": {}} | REFERRAL_RULES, now=utcnow() - dt.timedelta(days=30))
    add_members(factory, "alice", "bob", "new")

    def tap(_):
        run_in_transaction(factory, lambda s: checkin.check_in(
            s, get_program(s, "default"), get_member(s, get_program(s, "default"), "alice"), utcnow()))

    assert Counter(outcomes(tap, range(20))) == {"ok": 1, "already_checked_in": 19}
    codes = [run_in_transaction(factory, lambda s, w=w: referrals.invite_code(
        s, get_program(s, "default"), get_member(s, get_program(s, "default"), w), utcnow())) for w in ("alice", "bob")]

    def join(code):
        def tx(s):
            program = get_program(s, "default")
            from jifen.flows.intake import ingest

            events = referrals.accept(s, program, get_member(s, program, "new"), code, utcnow())
            ingest(s, program, events, now=utcnow())

        run_in_transaction(factory, tx)

    assert sorted(outcomes(join, codes)) == ["already_referred", "ok"]
    led = Ledger(factory)
    assert led.balances("alice")["available"] + led.balances("bob")["available"] == 5 + 50  # one check-in, one invite
    assert led.verify() == []
    engine.dispose()


def test_tasks_progress_chains_and_badges(api, factory):
    client, admin = api
    specs = [
        {"code": "profile", "name": "完善資料", "events": ["profile_complete"], "points": 100, "badge": "newcomer"},
        {"code": "browse10", "name": "瀏覽10件商品", "period": "daily", "events": ["browse"],
         "condition": "event.attributes.seconds >= 3", "target": 10, "points": 50},
        {"code": "beginner", "name": "新手: 首單", "events": ["purchase"], "points": 30},
        {"code": "advanced", "name": "進階: 累計消費¥1000", "events": ["purchase"], "measure": "amount",
         "target": 1000, "points": 200, "badge": "big_spender", "requires": "beginner"},
    ]
    for spec in specs:
        assert client.post("/v1/tasks", json=spec, headers=admin).status_code == 201
    bad = client.post("/v1/tasks", json={"code": "x", "name": "x", "events": ["browse"], "condition": "event.>"},
                      headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_condition"
    now = utcnow()
    with factory() as s:  # keep every event inside the programme's today, or the daily task starts afresh
        today = now.astimezone(ZoneInfo(get_program(s, "default").timezone)).replace(hour=0, minute=0, second=0,
                                                                                       microsecond=0)
    at = max(now - dt.timedelta(minutes=30), today)
    r = send_one(factory, "alice", "profile_complete", at=at, now=utcnow())
    assert r["tasks_completed"] == ["profile"]
    assert send_one(factory, "alice", "profile_complete", at=at, now=utcnow()).get("tasks_completed") is None  # once
    for i in range(11):
        seconds = 1 if i == 0 else 5  # the first view is too short to count
        r = send_one(factory, "alice", "browse", at=at + dt.timedelta(seconds=i), now=utcnow(),
                     attributes={"seconds": seconds})
        assert r.get("tasks_completed") == (["browse10"] if i == 10 else None)
    tasks_now = {t["code"]: t for t in client.get("/v1/members/alice/tasks", headers=admin).json()}
    assert tasks_now["advanced"]["locked"] is True and tasks_now["browse10"]["done"] is True
    first = send_one(factory, "alice", amount=600, order_id="T1", at=at + dt.timedelta(minutes=1), now=utcnow())
    assert first["tasks_completed"] == ["beginner"]  # the advanced task was locked until now
    second = send_one(factory, "alice", amount=999, order_id="T2", at=at + dt.timedelta(minutes=2), now=utcnow())
    assert second["tasks_completed"] == ["advanced"]  # the first order opened the chain and counted: 600 + 999
    assert [b["badge"] for b in client.get("/v1/members/alice/badges", headers=admin).json()] == [
        "newcomer", "big_spender"]
    b = Ledger(factory).balances("alice")["available"]
    assert b == 100 + 50 + 600 + 30 + 999 + 200  # task points on top of the purchase rule's ¥1 = 1 point
    assert Ledger(factory).verify() == []


def test_red_packets_split_claim_and_expire(api, factory):
    from jifen.engagement.red_packets import split
    from jifen.jobs import expire_red_packets

    client, admin = api
    for pts, k in [(100, 10), (10, 10), (7, 3), (11, 2)]:
        for _ in range(200):
            parts = split(pts, k, "random")
            assert sum(parts) == pts and min(parts) >= 1 and len(parts) == k
    assert split(10, 3, "equal") == [4, 3, 3]
    Ledger(factory, now=utcnow()).run(lambda sc, s: __import__("jifen.ledger.operations", fromlist=["award"]).award(
        sc, get_member(s, sc.program, "alice"), 1000))
    headers = admin | {"Idempotency-Key": "rp-1"}
    sent = client.post("/v1/red-packets", json={"member_id": "alice", "points": 300, "shares": 3, "split": "equal",
                                                "message": "新年快樂"}, headers=headers)
    assert sent.status_code == 201 and sent.json()["left"] == 300
    pid = sent.json()["id"]
    b = Ledger(factory).balances("alice")
    assert (b["available"], b["held"]) == (700, 300)

    def claim(who, key):
        return client.post(f"/v1/red-packets/{pid}/claim", json={"member_id": who},
                           headers=admin | {"Idempotency-Key": key})

    assert claim("bob", "c1").json()["points"] == 100
    assert claim("bob", "c2").json()["error"]["code"] == "already_claimed"
    assert claim("alice", "c3").json()["error"]["code"] == "own_packet"
    assert claim("carol", "c4").status_code == 201
    view = client.get(f"/v1/red-packets/{pid}", headers=admin).json()
    assert view["left"] == 100 and [c["member_id"] for c in view["claimed"]] == ["bob", "carol"]
    too_much = client.post("/v1/red-packets", json={"member_id": "alice", "points": 10_000, "shares": 2},
                           headers=admin | {"Idempotency-Key": "rp-2"})
    assert too_much.json()["error"]["code"] == "limit_reached"
    assert expire_red_packets(factory, utcnow() + dt.timedelta(days=2)) == 1  # dave never came
    assert claim("dave", "c5").json()["error"]["code"] == "packet_closed"
    led = Ledger(factory)
    assert led.balances("alice")["available"] == 800 and led.balances("alice")["held"] == 0
    assert led.balances("bob")["available"] == 100 and led.balances("carol")["available"] == 100
    assert led.verify() == []


def test_red_packet_claims_race_on_postgresql(pg_only_url):
    from jifen.engagement import red_packets
    from jifen.ledger import operations as ops
    from jifen.programs.service import get_wallet

    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    friends = [f"f{i}" for i in range(30)]
    add_members(factory, "sender", *friends)

    def scope(s):
        program = get_program(s, "default")
        return ops.Scope(s, program, get_wallet(s, program, None), utcnow())

    def setup(s):
        sc = scope(s)
        ops.award(sc, get_member(s, sc.program, "sender"), 1000)
        return red_packets.send(sc, get_member(s, sc.program, "sender"), 500, 10, "random", dt.timedelta(hours=1)).id

    pid = run_in_transaction(factory, setup)
    results = []
    claimants = friends + ["f0", "f1"]  # two members try twice, at the same time

    def grab(who):
        try:
            def tx(s):
                sc = scope(s)
                return red_packets.claim(sc, red_packets.get_packet(s, sc.program.id, pid),
                                         get_member(s, sc.program, who)).points
            results.append(("ok", who, run_in_transaction(factory, tx)))
        except JifenError as exc:
            results.append((exc.code, who, 0))

    assert race(grab, claimants) == []
    won = [o for o in results if o[0] == "ok"]
    assert len(won) == 10 and len({w for _, w, _ in won}) == 10 and sum(p for _, _, p in won) == 500
    assert Counter(o[0] for o in results if o[0] != "ok") <= Counter({"packet_empty": 22, "already_claimed": 2})
    led = Ledger(factory)
    assert led.balances("sender")["available"] == 500 and led.balances("sender")["held"] == 0
    assert sum(led.balances(f)["available"] for f in friends) == 500
    assert led.verify() == []
    engine.dispose()


def test_gifts_daily_limits_and_ugc_budgets(api, factory):
    from jifen.ledger import operations as ops

    client, admin = api
    Ledger(factory, now=utcnow()).run(lambda sc, s: ops.award(sc, get_member(s, sc.program, "alice"), 5000))
    keys = iter(range(100))

    def call(path, body):
        return client.post(path, json=body, headers=admin | {"Idempotency-Key": f"g{next(keys)}"})

    assert call("/v1/gifts", {"from_member_id": "alice", "to_member_id": "bob", "points": 1500}).status_code == 201
    over = call("/v1/gifts", {"from_member_id": "alice", "to_member_id": "bob", "points": 600})
    assert over.json()["error"]["code"] == "limit_reached"  # 2,000 points a day
    assert Ledger(factory).balances("bob")["available"] == 1500
    assert client.post("/v1/members/carol/award-budget", json={"points": 300}, headers=admin).json() == {
        "budget": 300, "used": 0, "left": 300}
    ok = call("/v1/ugc-awards", {"from_member_id": "carol", "to_member_id": "dave", "points": 200, "reason": "好評"})
    assert ok.status_code == 201
    small = call("/v1/ugc-awards", {"from_member_id": "carol", "to_member_id": "dave", "points": 20, "reason": "x"})
    assert small.json()["error"]["code"] == "invalid_points"
    broke = call("/v1/ugc-awards", {"from_member_id": "carol", "to_member_id": "dave", "points": 150, "reason": "x"})
    assert broke.json()["error"]["code"] == "budget_exhausted"
    nobody = call("/v1/ugc-awards", {"from_member_id": "bob", "to_member_id": "dave", "points": 50, "reason": "x"})
    assert nobody.json()["error"]["code"] == "budget_exhausted"
    assert Ledger(factory).balances("dave")["available"] == 200
    assert Ledger(factory).balances("carol")["available"] == 0  # the programme pays, not the creator
    assert Ledger(factory).verify() == []


def test_teams_boost_progress_and_board(app, factory):
    boost = {"rules": SEED_001["rules"] | {"rules": [
        {"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}},
        {"code": "team_boost", "layer": "campaign", "events": ["purchase"], "condition": "team_size() >= 3",
         "award": {"multiplier": "1.3"}}]}}
    configure(factory, {"pending_days": {}} | boost, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "cap", "m2", "m3", "solo")
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        team = client.post("/v1/teams", json={"member_id": "cap", "name": "三人行", "goal": 1000}, headers=admin).json()
        code = team["code"]
        at = utcnow()  # (points count for a team from when its members joined)
        assert send_one(factory, "cap", amount=100, order_id="T0", at=at, now=utcnow())["points"] == 100  # alone
        for m in ("m2", "m3"):
            assert client.post(f"/v1/teams/{code}/join", json={"member_id": m}, headers=admin).status_code == 200
        again = client.post(f"/v1/teams/{code}/join", json={"member_id": "m2"}, headers=admin)
        assert again.json()["error"]["code"] == "already_in_team"
        r = send_one(factory, "m2", amount=100, order_id="T1", at=utcnow(), now=utcnow())
        assert r["points"] == 130  # three members: +30 % (seed 001's team boost)
        assert send_one(factory, "solo", amount=100, order_id="T2", at=at, now=utcnow())["points"] == 100
        view = client.get(f"/v1/teams/{code}", headers=admin).json()
        assert view["points"] == 230 and view["progress"] == 0.23 and len(view["members"]) == 3
        board = client.get("/v1/leaderboards/teams", params={"period": "month"}, headers=admin).json()
        assert board["top"][0] == {"rank": 1, "team": code, "name": "三人行", "points": 230}
        assert client.post(f"/v1/teams/{code}/leave", json={"member_id": "cap"},
                           headers=admin).json()["error"]["code"] == "captain_leaves_last"


def test_friends_pools_attribution_groups_credit(api, factory):
    from jifen.ledger import operations as ops

    client, admin = api
    keys = iter(range(1000))

    def call(path, body):
        return client.post(path, json=body, headers=admin | {"Idempotency-Key": f"s{next(keys)}"})

    for who in ("alice", "bob", "carol"):
        Ledger(factory, now=utcnow()).run(lambda sc, s, who=who: ops.award(sc, get_member(s, sc.program, who), 1000))
    assert client.post("/v1/members/alice/friends", json={"friend_id": "bob"}, headers=admin).status_code == 201
    assert client.post("/v1/members/alice/friends", json={"friend_id": "bob"},
                       headers=admin).json()["error"]["code"] == "already_friends"
    client.post("/v1/rewards", json={"code": "tv", "name": "電視", "kind": "virtual", "category": "數碼",
                                     "points": 1500, "stock": 1}, headers=admin)
    pool = call("/v1/pools", {"member_id": "alice", "reward": "tv"}).json()
    assert pool["target"] == 1500
    assert call(f"/v1/pools/{pool['id']}/contribute", {"member_id": "bob", "points": 600}).status_code == 201
    assert Ledger(factory).balances("bob")["held"] == 600
    too_much = call(f"/v1/pools/{pool['id']}/contribute", {"member_id": "carol", "points": 901})
    assert too_much.json()["error"]["code"] == "invalid_points"
    done = call(f"/v1/pools/{pool['id']}/contribute", {"member_id": "alice", "points": 900}).json()
    assert done["status"] == "completed" and done["redemption_id"]
    led = Ledger(factory)
    assert (led.balances("bob")["available"], led.balances("bob")["held"]) == (400, 0)
    assert led.balances("alice")["available"] == 100
    feed = client.get("/v1/members/alice/friends", headers=admin).json()
    assert [f["member_id"] for f in feed["friends"]] == ["bob"] and feed["board"][0]["member_id"] in ("alice", "bob")
    # A friend's real name is their personal data: other members see it masked.
    run_in_transaction(factory, lambda s: setattr(get_member(s, get_program(s, "default"), "bob"), "name", "鮑小明"))
    assert client.get("/v1/members/alice/friends", headers=admin).json()["friends"][0]["name"] == "鮑**"
    # Content attribution: carol buys through bob's share link; group buying completes with two buyers.
    now = utcnow()
    send_one(factory, "carol", amount=100, order_id="S1", at=now - dt.timedelta(minutes=3), now=now,
             attributes={"shared_by": "bob", "group_id": "G1", "group_size": 2})
    send_one(factory, "dave", amount=50, order_id="S2", at=now - dt.timedelta(minutes=2), now=now,
             attributes={"group_id": "G1", "group_size": 2})
    with factory() as s:
        from sqlalchemy import select

        from jifen.events.models import Event

        types = sorted(s.scalars(select(Event.event_id).where(Event.type.in_(("share_purchase", "group_completed")))))
    assert types[:2] == ["group_completed:G1:carol", "group_completed:G1:dave"]
    assert len(types) == 3 and types[2].startswith("share_purchase:")
    # A member with a credit score of 50 earns half.
    assert client.put("/v1/members/dave/credit", json={"score": 50, "reason": "刷單"},
                      headers=admin).json()["earn_weight"] == "0.5"
    assert send_one(factory, "dave", amount=100, order_id="S3", at=now - dt.timedelta(minutes=1),
                    now=now)["points"] == 50
    assert led.verify() == []


def test_invitations_per_day_are_capped(api, factory):
    from jifen.engagement.referrals import INVITES_PER_DAY

    client, admin = api
    code = client.post("/v1/members/alice/invite-code", headers=admin).json()["code"]
    names = [f"new{i}" for i in range(INVITES_PER_DAY + 1)]
    add_members(factory, *names)
    codes = [client.post("/v1/referrals", json={"member_id": n, "code": code}, headers=admin).status_code
             for n in names]
    assert codes == [201] * INVITES_PER_DAY + [409]


def test_a_charity_donation_badge(api, factory):
    from jifen.ledger import operations as ops

    client, admin = api
    Ledger(factory, now=utcnow()).run(lambda sc, s: ops.award(sc, get_member(s, sc.program, "alice"), 1000))
    client.post("/v1/rewards", json={"code": "tree", "name": "植樹一棵", "kind": "charity", "category": "公益",
                                     "points": 300}, headers=admin)
    client.post("/v1/tasks", json={"code": "green", "name": "公益之星", "events": ["redeem"],
                                   "condition": 'event.attributes.kind == "charity"', "badge": "green_star"},
                headers=admin)
    r = client.post("/v1/redemptions", json={"member_id": "alice", "reward": "tree"},
                    headers=admin | {"Idempotency-Key": "tree-1"})
    assert r.status_code == 201 and r.json()["status"] == "fulfilled"
    assert [b["badge"] for b in client.get("/v1/members/alice/badges", headers=admin).json()] == ["green_star"]


@pytest.fixture
def redis_url():
    with scratch_redis() as url:
        yield url


def test_redis_leaderboards_count_each_award_once(api, factory, monkeypatch, redis_url):
    import redis as redis_lib

    from jifen.config import Settings, get_settings
    from jifen.engagement import boards
    from jifen.notify import dispatcher

    url = redis_url
    client, admin = api
    settings = Settings(redis_url=url)
    now = utcnow()
    for who, amount in (("alice", 300), ("bob", 120), ("carol", 500), ("alice", 50)):
        send_one(factory, who, amount=amount, order_id=f"R-{who}-{amount}", at=now - dt.timedelta(minutes=1), now=now)
    first = dispatcher.run_once(factory, now, settings)
    assert first["delivered"] >= 4
    with factory() as s:  # a redelivery of the same deliveries (at least once) changes nothing
        from sqlalchemy import select

        from jifen.members.models import Member
        from jifen.notify.models import Delivery
        from jifen.outbox import OutboxMessage

        program = get_program(s, "default")
        for d, m in s.execute(select(Delivery, OutboxMessage).join(OutboxMessage).where(Delivery.channel == "board")):
            again = boards.apply_award(url, program, d.id, s.get(Member, m.member_pk).member_id, m.payload["points"],
                                       dt.datetime.fromisoformat(m.payload["occurred_at"]))
            assert again is False
    monkeypatch.setenv("JIFEN_REDIS_URL", url)
    get_settings.cache_clear()
    try:
        board = client.get("/v1/leaderboards/points", params={"period": "month", "member_id": "bob"},
                           headers=admin).json()
    finally:
        monkeypatch.delenv("JIFEN_REDIS_URL")
        get_settings.cache_clear()
    assert board["source"] == "redis"
    assert [(x["member_id"], x["points"]) for x in board["top"]] == [("carol", 500), ("alice", 350), ("bob", 120)]
    assert board["me"] == {"member_id": "bob", "points": 120, "rank": 3}
    redis_lib.Redis.from_url(url).flushdb()
    with factory() as s:
        assert boards.rebuild(url, s, get_program(s, "default"), now)["month"] == 3
    with factory() as s:
        key = boards.period_key(get_program(s, "default"), "month", now)
    assert redis_lib.Redis.from_url(url).zscore(key, "alice") == 350
