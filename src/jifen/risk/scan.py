"""The account graph, scanned for organised abuse (`jifen risk scan`, `GET /v1/risk/scan`):

- **shared devices**: five or more accounts seen on one device (seed 001), or on one IP address (a
  higher bar, since a family or an office shares one);
- **referral rings**: invitations that go round in a circle (A invited B, B invited C, C invited A — a
  genuine newcomer cannot invite the one who invited them), and clusters of accounts that share devices
  and invite each other (farmed invitation rewards);
- **shared addresses**: many members' redemptions delivered to one address (addresses are compared by
  their keyed hash; the scan never decrypts them).

Findings name the members and the evidence. The job runner scans each programme hourly and puts every
member of a new finding in the review queue (a case per member and finding, with a `risk.alert`), where a
person clears them or freezes the account; nothing is blocked by the scan itself."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.engagement.models import Referral
from jifen.lazy import lazy_import
from jifen.mall.models import Redemption
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.risk import cases
from jifen.risk.models import MemberDevice, RiskCase, RiskScan
from jifen.risk.scoring import Verdict

if TYPE_CHECKING:
    import networkx as nx
else:
    nx = lazy_import("networkx")

ACCOUNTS_PER_DEVICE = 5  # seed 001: five accounts on one device
ACCOUNTS_PER_IP = 10
MEMBERS_PER_ADDRESS = 3
INVITES_IN_CLUSTER = 2  # invitations between accounts that share devices
LONGEST_CYCLE = 12
# How much each finding weighs as a case's score (0–1000): a ring cannot be innocent, an IP can.
WEIGHTS = {"shared_device": 600, "shared_ip": 300, "referral_cycle": 900, "referral_cluster": 800,
           "shared_address": 500}
SCAN_EVERY = dt.timedelta(hours=1)


@dataclass
class Finding:
    kind: str  # shared_device, shared_ip, referral_cycle, referral_cluster, shared_address
    key: str  # what they share: the device, the IP, the first member of the ring, the address hash
    members: list[str]  # the brand's member ids, sorted
    detail: dict = field(default_factory=dict)


def scan(session: Session, program: Program, since: dt.datetime | None = None) -> list[Finding]:
    ids = dict(session.execute(select(Member.id, Member.member_id).where(Member.program_id == program.id)).all())
    sightings = _sightings(session, program, since)
    findings = _shared(sightings, "device", ACCOUNTS_PER_DEVICE, ids) + _shared(sightings, "ip", ACCOUNTS_PER_IP, ids)
    invites = [tuple(r) for r in session.execute(
        select(Referral.inviter_pk, Referral.invitee_pk).where(Referral.program_id == program.id,
                                                               *([Referral.created_at >= since] if since else [])))]
    findings += _rings(cast(list[tuple[int, int]], invites), sightings.get("device", {}), ids)
    findings += _addresses(session, program, since, ids)
    return findings


def _sightings(session: Session, program: Program, since: dt.datetime | None) -> dict[str, dict[str, set[int]]]:
    """kind → value → members seen there."""
    found: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    rows = session.execute(select(MemberDevice.kind, MemberDevice.value, MemberDevice.member_pk).where(
        MemberDevice.program_id == program.id, *([MemberDevice.last_seen >= since] if since else [])))
    for kind, value, member_pk in rows:
        found[kind][value].add(member_pk)
    return found


def _shared(sightings: dict, kind: str, at_least: int, ids: dict[int, str]) -> list[Finding]:
    return [Finding(f"shared_{kind}", value, sorted(ids[m] for m in members), {"accounts": len(members)})
            for value, members in sorted(sightings.get(kind, {}).items()) if len(members) >= at_least]


def _rings(invites: list[tuple[int, int]], devices: dict[str, set[int]], ids: dict[int, str]) -> list[Finding]:
    invited = nx.DiGraph(invites)
    findings = []
    for cycle in nx.simple_cycles(invited, length_bound=LONGEST_CYCLE):
        start = cycle.index(min(cycle))  # the same ring reported once, from a fixed member
        ring = [ids[m] for m in cycle[start:] + cycle[:start]]
        findings.append(Finding("referral_cycle", ring[0], sorted(ring), {"order": ring}))
    # Accounts that share devices and invite each other: farmed invitations. Clusters are taken on shared
    # devices first, so one farm hanging off a large genuine referral tree is not diluted by it.
    shared = nx.Graph()
    for members in devices.values():
        if len(members) <= 50:  # a device seen on more is already reported as shared; pairs would explode
            shared.add_edges_from(itertools.combinations(sorted(members), 2))
    in_cycles = {frozenset(f.members) for f in findings}
    for component in nx.connected_components(shared):
        inside = invited.subgraph(component).number_of_edges() if len(component) >= 3 else 0
        members = sorted(ids[m] for m in component)
        if inside >= INVITES_IN_CLUSTER and frozenset(members) not in in_cycles:
            linked = nx.compose(shared.subgraph(component), invited.subgraph(component).to_undirected())
            findings.append(Finding("referral_cluster", members[0], members,
                                    {"accounts": len(members), "invitations": inside,
                                     "density": round(nx.density(linked), 2)}))
    return findings


def _addresses(session: Session, program: Program, since: dt.datetime | None, ids: dict[int, str]) -> list[Finding]:
    rows = session.execute(
        select(Redemption.address_hash, Redemption.member_pk, func.count())
        .where(Redemption.program_id == program.id, Redemption.address_hash.is_not(None),
               Redemption.status != "cancelled", *([Redemption.created_at >= since] if since else []))
        .group_by(Redemption.address_hash, Redemption.member_pk))
    by_address: dict[str, dict[int, int]] = defaultdict(dict)
    for address, member_pk, orders in rows:
        by_address[cast(str, address)][member_pk] = orders  # (never NULL: the query asks for is_not(None))
    return [Finding("shared_address", address, sorted(ids[m] for m in members),
                    {"accounts": len(members), "redemptions": sum(members.values())})
            for address, members in sorted(by_address.items()) if len(members) >= MEMBERS_PER_ADDRESS]


def as_dicts(findings: list[Finding]) -> list[dict]:
    return [asdict(f) for f in findings]


def subject(f: Finding) -> str:
    """A finding's name in the review queue (long keys hashed to fit)."""
    name = f"{f.kind}:{f.key}"
    return name if len(name) <= 128 else f"{f.kind}:{hashlib.sha256(f.key.encode()).hexdigest()}"


def open_cases(session: Session, program: Program, findings: list[Finding], now: dt.datetime) -> int:
    """Each member of each finding into the review queue, once per member and finding (a case a person
    already decided is not opened again while the finding stays the same). Returns the cases opened."""
    named = {mid for f in findings for mid in f.members}
    pks = dict(session.execute(select(Member.member_id, Member.id).where(
        Member.program_id == program.id, Member.member_id.in_(sorted(named) or [""]))).all())
    known: set[tuple[int, str | None]] = set(session.execute(select(RiskCase.member_pk, RiskCase.subject_id).where(
        RiskCase.program_id == program.id, RiskCase.subject_kind == "member")).all())
    opened = 0
    for f in findings:
        name = subject(f)
        for mid in f.members:
            if (pks[mid], name) in known:
                continue
            reason = {"code": f.kind, "weight": WEIGHTS[f.kind], "key": f.key[:64], "accounts": len(f.members)}
            verdict = Verdict(score=min(1000, WEIGHTS[f.kind]), action="review", reasons=[reason])
            cases.record(session, program.id, (pks[mid], mid), now, verdict, "member", name, now)
            known.add((pks[mid], name))
            opened += 1
    return opened


def scan_due(session: Session, program: Program, now: dt.datetime) -> int:
    """The job runner's hourly scan: findings of the last 90 days into the review queue; the cases opened
    (0 when the last scan is under an hour old)."""
    last = session.scalar(select(func.max(RiskScan.at)).where(RiskScan.program_id == program.id))
    if last is not None and now - last < SCAN_EVERY:
        return 0
    findings = scan(session, program, now - dt.timedelta(days=90))
    run = RiskScan(program_id=program.id, at=now, findings=len(findings),
                   cases_opened=open_cases(session, program, findings, now))
    session.add(run)
    return run.cases_opened
