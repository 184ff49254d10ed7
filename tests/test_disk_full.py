"""A full disk on SQLite (PRAGMA max_page_count): refusals are a clear 503 `storage_full`, nothing is half
done, and once space is freed the same requests, sent again with the same keys, land exactly once."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from jifen.ledger.models import JournalEntry
from jifen.ledger.verify import verify
from tests.conftest import api_key
from tests.support.intake import configure

T = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
MEMBERS = ["d0", "d1", "d2"]
ROOM = 1 << 30  # SQLite's default max_page_count: the disk "freed"


def _requests(n: int):
    """Alternately a purchase event and an award: (path, body, Idempotency-Key, journal reference)."""
    for i in range(n):
        member = MEMBERS[i % len(MEMBERS)]
        if i % 2:
            yield ("/v1/events", {"event_id": f"e{i}", "member_id": member, "type": "purchase", "amount": "50",
                                  "occurred_at": T, "order_id": f"o{i}"}, f"e{i}", f"event:e{i}")
        else:
            # Long enough references that the pages fill up in a few dozen requests.
            ref = f"award-{i}-" + "x" * 150
            yield ("/v1/points/award", {"member_id": member, "points": 7, "reference": ref}, f"a{i}", ref)


def test_disk_full_refuses_cleanly_and_retries_land_once(sqlite_app):
    engine = sqlite_app.state.engine
    limit = {"pages": ROOM}

    @event.listens_for(engine, "checkout")
    def _cap(dbapi_conn, *_):  # every connection the app takes sees the current "disk size"
        dbapi_conn.execute(f"PRAGMA max_page_count={limit['pages']}")

    configure(sqlite_app.state.sessions)  # the demo programme: a purchase earns points
    with TestClient(sqlite_app, raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {api_key(sqlite_app, 'admin')}"}
        for mid in MEMBERS:
            assert client.post("/v1/members", json={"member_id": mid}, headers=headers | {
                "Idempotency-Key": f"m-{mid}"}).status_code == 201
        with engine.connect() as conn:
            limit["pages"] = conn.exec_driver_sql("PRAGMA page_count").scalar() + 8

        sent = list(_requests(200))
        acked, refused, first = [], [], {}
        for path, body, key, ref in sent:
            r = client.post(path, json=body, headers=headers | {"Idempotency-Key": key})
            if r.status_code in (200, 201):
                acked.append(ref)
                first[key] = r.json()
            else:
                assert r.status_code == 503, r.text
                err = r.json()["error"]
                assert err["code"] == "storage_full" and "same Idempotency-Key" in err["message"]
                refused.append(ref)
        assert acked and len(refused) > 20  # the disk filled part-way through

        # Nothing half done: the ledger verifies, each landed operation has one journal entry.
        with sqlite_app.state.sessions() as s:
            assert verify(s) == []
            per = dict(s.execute(select(JournalEntry.reference, func.count()).group_by(JournalEntry.reference)).all())
        assert {ref: per.get(ref) for ref in acked} == dict.fromkeys(acked, 1)
        # A write committed whose audit line then found no room was refused too (its retry is a replay).
        landed = {ref for *_, ref in sent if ref in per}
        assert landed >= set(acked) and all(per[ref] == 1 for ref in landed)
        while_full = {mid: _balance(client, headers, mid) for mid in MEMBERS}

        # Space freed: everything sent again with the same keys, the acknowledged ones answered as replays.
        limit["pages"] = ROOM
        points = {}  # each operation's points, from its answer (a purchase's grow with the member's tier)
        for path, body, key, ref in sent:
            r = client.post(path, json=body, headers=headers | {"Idempotency-Key": key})
            assert r.status_code in (200, 201), r.text
            points[ref] = r.json()["points"]
            if key in first:
                assert r.headers["Idempotent-Replayed"] == "true"
                assert r.json() == first[key] | ({"status": "replayed"} if path == "/v1/events" else {})

        with sqlite_app.state.sessions() as s:
            assert verify(s) == []
            per = dict(s.execute(select(JournalEntry.reference, func.count()).group_by(JournalEntry.reference)).all())
        assert {ref: per.get(ref) for *_, ref in sent} == {ref: 1 for *_, ref in sent}
        # Balances are the sums of what landed: while full, the acknowledged (and audited-refused) alone.
        for mid in MEMBERS:
            for balance, refs in ((while_full[mid], landed), (_balance(client, headers, mid), per)):
                mine = [(path, ref) for path, b, _, ref in sent if b["member_id"] == mid and ref in refs]
                assert balance == (sum(points[r] for p, r in mine if p == "/v1/points/award"),
                                   sum(points[r] for p, r in mine if p == "/v1/events"))


def _balance(client, headers, mid) -> tuple[int, int]:
    """Available (awards) and pending (purchases) points."""
    b = client.get(f"/v1/members/{mid}/balance", headers=headers).json()
    return b["available"], b["pending"]


def test_openapi_lists_storage_full_on_writes(sqlite_app):
    with TestClient(sqlite_app) as client:
        spec = client.get("/openapi.json").json()
    assert "storage_full" in spec["paths"]["/v1/points/award"]["post"]["responses"]["503"]["description"]
    assert "storage_full" in spec["paths"]["/v1/events"]["post"]["responses"]["503"]["description"]
