"""The account-graph scan: accounts crowded on one device, referral rings and farmed invitation clusters
found; a family sharing a tablet and a genuine referral tree left alone."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jifen import jobs
from jifen.db import run_in_transaction, utcnow
from jifen.engagement import referrals
from jifen.flows import review
from jifen.ledger import operations as ops
from jifen.members.models import Member
from jifen.members.service import get_member
from jifen.outbox import OutboxMessage
from jifen.programs.service import get_program
from jifen.risk.models import MemberDevice, RiskCase, RiskScan
from jifen.risk.scan import scan
from tests.conftest import NOW, Ledger, api_key, keyed, m
from tests.support.intake import add_members, configure


def seen(factory, kind: str, value: str, *member_ids: str) -> None:
    def tx(s):
        program = get_program(s, "default")
        for mid in member_ids:
            s.add(MemberDevice(program_id=program.id, kind=kind, value=value,
                               member_pk=get_member(s, program, mid).id, first_seen=NOW, last_seen=NOW))

    run_in_transaction(factory, tx)


def invite(factory, inviter: str, invitee: str, at: dt.datetime = NOW) -> None:
    def tx(s):
        program = get_program(s, "default")
        code = referrals.invite_code(s, program, get_member(s, program, inviter), at)
        referrals.accept(s, program, get_member(s, program, invitee), code, at)

    run_in_transaction(factory, tx)


def findings(factory) -> dict[str, list]:
    with factory() as s:
        found: dict[str, list] = {}
        for f in scan(s, get_program(s, "default")):
            found.setdefault(f.kind, []).append(f)
        return found


def test_twenty_accounts_on_one_device_are_reported_and_a_family_tablet_is_not(factory):
    farm = [f"bot{i:02}" for i in range(20)]
    add_members(factory, *farm, "mum", "dad", "kid", "gran")
    seen(factory, "device", "dev-farm", *farm)
    seen(factory, "device", "tablet", "mum", "dad", "kid", "gran")  # four: under seed 001's five
    seen(factory, "ip", "10.0.0.7", *farm[:9])  # nine on one IP: an office, not reported
    found = findings(factory)
    assert [(f.key, f.members, f.detail["accounts"]) for f in found["shared_device"]] == [("dev-farm", farm, 20)]
    assert "shared_ip" not in found
    seen(factory, "ip", "10.0.0.7", farm[9])
    assert [f.key for f in findings(factory)["shared_ip"]] == ["10.0.0.7"]


def test_a_referral_ring_is_reported_once_in_invitation_order_and_a_referral_tree_is_not(factory):
    add_members(factory, "r1", "r2", "r3", "r4", "n1", "n2", "n3", "n4")
    for inviter, invitee in [("n1", "n2"), ("n1", "n3"), ("n2", "n4")]:  # a genuine tree
        invite(factory, inviter, invitee)
    for inviter, invitee in [("r2", "r3"), ("r3", "r4"), ("r4", "r1")]:
        invite(factory, inviter, invitee)
    assert findings(factory) == {}  # a chain is not yet a ring
    invite(factory, "r1", "r2")  # r1 had no inviter, so it may accept r4's… and close the circle
    [ring] = findings(factory)["referral_cycle"]
    assert ring.members == ["r1", "r2", "r3", "r4"]
    assert ring.detail["order"][0] in ring.members and len(ring.detail["order"]) == 4
    # In invitation order: each member invited the next one.
    order = ring.detail["order"]
    assert {(order[i], order[(i + 1) % 4]) for i in range(4)} == {("r1", "r2"), ("r2", "r3"), ("r3", "r4"), ("r4", "r1")}


def test_accounts_sharing_devices_and_inviting_each_other_are_a_cluster(factory):
    add_members(factory, "f1", "f2", "f3", "f4", "f5", "g1", "g2", "g3", "g4", "g5", "g6")
    seen(factory, "device", "d1", "f1", "f2", "f3")
    seen(factory, "device", "d2", "f3", "f4", "f5")
    invite(factory, "f1", "f2")
    # The farm hangs off a large genuine tree: it must not be diluted by it.
    for inviter, invitee in [("g1", "g2"), ("g1", "g3"), ("g2", "g4"), ("g3", "g5"), ("g5", "g6"), ("g6", "f1")]:
        invite(factory, inviter, invitee)
    assert "referral_cluster" not in findings(factory)  # one invitation between device-sharers: not yet
    invite(factory, "f3", "f5")
    [cluster] = findings(factory)["referral_cluster"]
    assert cluster.members == ["f1", "f2", "f3", "f4", "f5"]
    assert cluster.detail["invitations"] == 2
    # A couple sharing a phone, one invited by the other: two accounts are not a cluster.
    add_members(factory, "h1", "h2")
    seen(factory, "device", "home", "h1", "h2")
    invite(factory, "h1", "h2")
    assert [c.members for c in findings(factory)["referral_cluster"]] == [["f1", "f2", "f3", "f4", "f5"]]


def test_many_members_redeeming_to_one_address_are_reported_by_its_hash(app, factory):
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    drop = {"name": "收件人", "phone": "13900002222", "line": "廣州市天河區體育西路 1 號"}
    add_members(factory, "a1", "a2", "a3", "home1", "home2")
    for mid in ("a1", "a2", "a3", "home1", "home2"):
        Ledger(factory, now=utcnow()).run(lambda sc, s, mid=mid: ops.award(sc, m(sc, mid), 1000))
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        assert client.post("/v1/rewards", json={"code": "mug", "name": "馬克杯", "kind": "physical", "points": 100},
                           headers=admin).status_code == 201
        orders = [("a1", drop), ("a2", drop | {"line": " 廣州市天河區體育西路1號 "}), ("home1", {"line": "上海市長寧區1號"}),
                  ("home2", {"line": "上海市長寧區1號"})]
        for i, (mid, address) in enumerate(orders):
            r = client.post("/v1/redemptions", json={"member_id": mid, "reward": "mug", "address": address},
                            headers=admin | {"Idempotency-Key": f"mug-{i}"})
            assert r.status_code == 201, r.text
        assert "shared_address" not in findings(factory)  # two members to one address: a household
        client.post("/v1/redemptions", json={"member_id": "a3", "reward": "mug", "address": drop | {"name": "另一人"}},
                    headers=admin | {"Idempotency-Key": "mug-a3"})
    [shared] = findings(factory)["shared_address"]
    assert shared.members == ["a1", "a2", "a3"] and shared.detail == {"accounts": 3, "redemptions": 3}
    assert "廣州" not in shared.key  # the address is named by its keyed hash, never in clear


def test_the_hourly_scan_puts_each_ring_member_in_the_review_queue_once(factory):
    add_members(factory, "r1", "r2", "r3", "n1", "n2", "old1", "old2", "old3")
    now = utcnow()
    for inviter, invitee in [("old1", "old2"), ("old2", "old3"), ("old3", "old1")]:  # a ring of last year: not scanned
        invite(factory, inviter, invitee, at=now - dt.timedelta(days=200))
    invite(factory, "n1", "n2", at=now)
    for inviter, invitee in [("r1", "r2"), ("r2", "r3"), ("r3", "r1")]:
        invite(factory, inviter, invitee, at=now)
    assert jobs.scan_risk_graphs(factory, now) == 3
    with factory() as s:
        queue = s.execute(select(Member.member_id, RiskCase.subject_id, RiskCase.score, RiskCase.status)
                          .join(Member, Member.id == RiskCase.member_pk).order_by(Member.member_id)).all()
        alerted = sorted(a.payload["member_id"] for a in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == "risk.alert")))
    assert [(mid, score, status) for mid, _, score, status in queue] == [("r1", 900, "open"), ("r2", 900, "open"),
                                                                         ("r3", 900, "open")]
    assert {subject for _, subject, *_ in queue} == {"referral_cycle:r1"} and alerted == ["r1", "r2", "r3"]
    assert jobs.scan_risk_graphs(factory, now + dt.timedelta(minutes=30)) == 0  # not due yet
    # A reviewer clears r2; the next scans neither reopen it nor duplicate the others.
    Ledger(factory, now=now).run(lambda sc, s: review.decide(sc, s.scalar(select(RiskCase).join(
        Member, Member.id == RiskCase.member_pk).where(Member.member_id == "r2")), "approve", "siblings, checked"))
    assert jobs.scan_risk_graphs(factory, now + dt.timedelta(hours=2)) == 0
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(RiskCase)) == 3
        assert [r.cases_opened for r in s.scalars(select(RiskScan).order_by(RiskScan.id))] == [3, 0]
