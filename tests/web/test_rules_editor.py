"""The rule editor's JSON side: the draft checked as it is typed (the validation publishing runs, each
problem with its path and YAML line, nothing saved) and the background simulation with its progress."""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jifen.rules.expressions import MAX_DEPTH
from jifen.rules.models import RuleSet
from jifen.security.audit import AuditEntry
from jifen.web import rules_editor
from tests.support.console_login import console_as, csrf_of, sign_in
from tests.support.intake import SEED_001, two_recent_purchases

GOOD = "rules:\n- code: base\n  name: 每元3分\n  events: [purchase]\n  award: {per_yuan: 3}\n"


def _versions(app) -> int:
    with app.state.sessions() as s:
        return s.scalar(select(func.count()).select_from(RuleSet))


def _signed_in(client, user) -> str:
    assert sign_in(client, user).status_code == 303
    return csrf_of(client.get("/console/rules/draft").text)


def check(client, token, **body):
    return client.post("/console/rules/draft/check", json=body, headers={"X-CSRF-Token": token})


def test_a_good_draft_has_no_problem_and_comes_back_as_data(site):
    app, user = site
    with TestClient(app) as client:
        token = _signed_in(client, user)
        r = check(client, token, text=GOOD)
        assert r.status_code == 200 and r.json()["errors"] == []
        assert r.json()["doc"] == {"rules": [{"code": "base", "name": "每元3分", "events": ["purchase"],
                                              "award": {"per_yuan": 3}}]}
        # The form's data comes back as the YAML that is saved, and that YAML reads back as the same data.
        doc = r.json()["doc"]
        doc["rules"][0]["award"] = {"multiplier": 1.5}
        as_yaml = check(client, token, doc=doc)
        assert as_yaml.status_code == 200 and "multiplier: 1.5" in as_yaml.json()["text"]
        assert check(client, token, text=as_yaml.json()["text"]).json()["doc"] == doc


def test_problems_come_with_their_path_and_line_and_nothing_is_saved(site):
    app, user = site
    before = _versions(app)
    with TestClient(app) as client:
        token = _signed_in(client, user)
        broken = check(client, token, text="rules:\n- code: base\n  events: [purchase\n")
        assert broken.status_code == 422
        body = broken.json()["error"]
        assert body["code"] == "invalid_yaml" and body["message"].startswith("not valid YAML at line")
        assert body["errors"][0]["line"] == 4 and body["doc"] is None  # (where the parser gave up)

        bad_cel = check(client, token, text=GOOD + "  condition: event.amount >\n")
        assert bad_cel.status_code == 422
        [problem] = bad_cel.json()["error"]["errors"]
        assert problem["path"] == "rules.0.condition" and problem["line"] == 6
        assert problem["message"].startswith("Syntax error") and problem["message"].endswith("line 1, column 15")

        deep = "(" * (MAX_DEPTH + 1) + "true" + ")" * (MAX_DEPTH + 1)
        too_deep = check(client, token, text=GOOD + f"  condition: '{deep}'\n")
        [problem] = too_deep.json()["error"]["errors"]
        assert too_deep.status_code == 422 and problem["path"] == "rules.0.condition" and problem["line"] == 6
        assert problem["message"] == f"brackets nested {MAX_DEPTH + 1} deep (at most {MAX_DEPTH})"
        too_long = check(client, token, text=GOOD + "  condition: '" + " || ".join(["true"] * 900) + "'\n")
        [problem] = too_long.json()["error"]["errors"]
        assert too_long.status_code == 422 and problem["path"] == "rules.0.condition"
        assert problem["message"] == "too long: 7,196 characters (at most 4,096)"

        two = check(client, token, text=GOOD.replace("per_yuan: 3", "per_yuan: 3, fixed: 1")
                    + "- code: base\n  events: [Purchase]\n  award: {fixed: 1}\n")
        found = {(p["path"], p["line"]) for p in two.json()["error"]["errors"]}
        assert found == {("rules.0.award", 5), ("rules.1.events", 7)}

        wallet = check(client, token, text=GOOD + "  wallet: miles\n")  # the programme's wallets, as publishing
        assert wallet.status_code == 422 and wallet.json()["error"]["errors"][0]["path"] == "rules.0.wallet"
        empty = check(client, token, text="rules: []\n")
        assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_rule_set"
    assert _versions(app) == before


def test_checks_need_the_pages_token(site):
    app, user = site
    with TestClient(app) as client:
        _signed_in(client, user)
        refused = check(client, "not-the-token", text=GOOD)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
        no_draft = check(client, csrf_of(client.get("/console/rules/draft").text), rules=[])
        assert no_draft.status_code == 422 and no_draft.json()["error"]["code"] == "invalid_request"


def _finished(client, url: str) -> dict:
    for _ in range(600):  # (a thread of this process: it finishes; the bound only ends a broken test)
        run = client.get(url).json()
        if run["state"] != "running":
            return run
        time.sleep(0.05)
    raise AssertionError("the simulation did not finish")


def test_a_simulation_runs_in_the_background_to_a_diff_per_rule(site):
    app, user = site
    now = dt.datetime.now(dt.UTC)
    two_recent_purchases(app.state.sessions, now, "50.00")
    before = _versions(app)
    with TestClient(app) as client:
        token = _signed_in(client, user)
        started = client.post("/console/rules/simulations", json={"text": GOOD}, headers={"X-CSRF-Token": token})
        assert started.status_code == 202 and started.json()["state"] in ("running", "done")
        run = _finished(client, started.json()["url"])
        assert run["state"] == "done" and (run["done"], run["total"]) == (2, 2)
        report = run["report"]
        assert report["events"] == 2 and report["members_affected"] == 2
        rules = {r["rule"]: r for r in report["rules"]}
        # base: 600 + 150 where the rules in force gave purchase_base 200 + 50 and the bonus 20 (M2's ¥200).
        assert rules["base"] == {"rule": "base", "baseline": 0, "draft": 750, "difference": 750, "percent": None,
                                 "members_affected": 2}
        assert rules["purchase_base"]["percent"] == "-100.0" and rules["big_order_bonus"]["members_affected"] == 1
        assert report["names"]["base"] == "每元3分" and report["names"]["purchase_base"] == "消費1元得1積分"
        bad = client.post("/console/rules/simulations", json={"text": "rules: ["}, headers={"X-CSRF-Token": token})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_yaml"
        assert client.get("/console/rules/simulations/nope").json()["error"]["code"] == "unknown_simulation"
    with TestClient(app) as client:
        token = console_as(client, app, "auditor")  # may read the draft page, not simulate
        denied = client.post("/console/rules/simulations", json={"text": GOOD}, headers={"X-CSRF-Token": token})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    assert _versions(app) == before


def test_one_simulation_at_a_time_per_programme(site, monkeypatch):
    app, user = site
    release = threading.Event()
    real = rules_editor.simulate

    def held(session, program, draft, start, end, progress=None):
        release.wait(60)
        return real(session, program, draft, start, end, progress)

    monkeypatch.setattr(rules_editor, "simulate", held)
    with TestClient(app) as client:
        token = _signed_in(client, user)
        first = client.post("/console/rules/simulations", json={"text": GOOD}, headers={"X-CSRF-Token": token})
        second = client.post("/console/rules/simulations", json={"text": GOOD}, headers={"X-CSRF-Token": token})
        assert second.status_code == 409 and second.json()["error"]["code"] == "simulation_running"
        assert second.json()["error"]["url"] == first.json()["url"]
        release.set()
        assert _finished(client, first.json()["url"])["state"] == "done"
        again = client.post("/console/rules/simulations", json={"text": GOOD}, headers={"X-CSRF-Token": token})
        assert again.status_code == 202  # once the first has finished
        assert _finished(client, again.json()["url"])["state"] == "done"


def _seed_draft(**normal) -> str:
    """Seed 001's rules and tiers as the editor's YAML, with the entry tier's terms changed by `normal`."""
    ladder = copy.deepcopy(SEED_001["tiers"])
    ladder["levels"][0].update(normal)
    rules = {k: v for k, v in SEED_001["rules"].items() if k not in ("effective_from", "note")}
    return yaml.safe_dump(rules | {"tiers": ladder}, allow_unicode=True, sort_keys=False)


def test_tiers_are_drafted_checked_simulated_and_published_with_the_rules(site):
    app, user = site
    now = dt.datetime.now(dt.UTC)
    two_recent_purchases(app.state.sessions, now, "50.00")
    with TestClient(app) as client:
        token = _signed_in(client, user)
        page = client.get("/console/rules/draft").text
        assert "tiers:" in page and "earn_multiplier: &#39;1.3&#39;" in page  # the ladder in force is in the draft
        bad = check(client, token, text=_seed_draft(earn_multiplier=0))
        assert bad.status_code == 422
        problem = bad.json()["error"]["errors"][0]
        assert problem["path"] == "tiers.levels.0.earn_multiplier" and problem["line"] is not None
        unordered = check(client, token, text=_seed_draft(threshold=5000))
        assert unordered.status_code == 422 and "entry tier" in unordered.json()["error"]["message"]
        draft = _seed_draft(earn_multiplier="2")
        assert check(client, token, text=draft).status_code == 200

        started = client.post("/console/rules/simulations", json={"text": draft}, headers={"X-CSRF-Token": token})
        report = _finished(client, started.json()["url"])["report"]
        # Both members are at the entry tier: × 2 adds the running total again (M2: 200 × 1.1, M1: 50).
        tier_rule = next(r for r in report["rules"] if r["rule"] == "tier_bonus")
        assert (tier_rule["baseline"], tier_rule["draft"], tier_rule["members_affected"]) == (0, 270, 2)

        before = _versions(app)
        effective = (now + dt.timedelta(days=31)).astimezone(dt.timezone(dt.timedelta(hours=8)))
        published = client.post("/console/rules/draft", data={
            "text": draft, "effective": effective.strftime("%Y-%m-%dT%H:%M"), "action": "publish",
            "note": "entry tier doubled", "csrf": token}, follow_redirects=False)
        assert published.status_code == 303 and _versions(app) == before + 1
        shown = client.get(published.headers["location"]).text
        assert "等级调整" in shown and 'data-tier="normal"' in shown and "× 2" in shown
        announced = client.get("/p/default/rules").text
        assert 'data-tier="normal"' in announced and 'data-tier="silver"' not in announced


def test_checking_a_draft_writes_no_audit_line_and_publishing_does(site):
    app, user = site
    with TestClient(app) as client:
        token = _signed_in(client, user)
        for text in (GOOD, "rules: [", GOOD):  # (a valid, a broken, a valid draft: each a debounced check)
            check(client, token, text=text)
        client.post("/console/rules/draft", data={"text": GOOD, "effective": "2030-01-01T00:00", "action": "publish",
                                                  "csrf": token}, follow_redirects=False)
    with app.state.sessions() as s:
        paths = list(s.scalars(select(AuditEntry.path).where(AuditEntry.path.like("/console/rules/draft%"))))
    assert paths == ["/console/rules/draft"]
