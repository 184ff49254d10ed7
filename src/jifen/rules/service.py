"""Saving and finding rule set versions."""

from __future__ import annotations

import datetime as dt
import functools
import json

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from jifen.db import decoded
from jifen.errors import InvalidRequest, NotFound
from jifen.programs.models import Program, Wallet
from jifen.rules.models import RuleSet
from jifen.rules.schema import RuleSetDoc, TierConfig

_IN_FORCE = (select(RuleSet).where(RuleSet.program_id == bindparam("program"),
                                   RuleSet.effective_from <= bindparam("at"))
             .order_by(RuleSet.effective_from.desc(), RuleSet.version.desc()).limit(1))


@functools.lru_cache(maxsize=256)
def _parsed(rule_set_id: int, document_json: str) -> RuleSetDoc:
    return RuleSetDoc.model_validate_json(document_json, context={"stored": True})


def doc_of(rule_set: RuleSet) -> RuleSetDoc:
    """Versions never change, so the parsed document is cached by id (and content, to be safe)."""
    return decoded(rule_set.document, lambda d: _parsed(rule_set.id, json.dumps(d, sort_keys=True)))


@functools.lru_cache(maxsize=64)
def _ladder(text: str) -> TierConfig:
    return TierConfig.model_validate_json(text)


def ladder(program: Program, doc: RuleSetDoc | None) -> TierConfig | None:
    """The tier ladder in force with a rule version (doc None: no version yet): the one it carries; versions
    published before tiers were versioned carry none, and the programme's own (programs.tiers, written by
    `jifen program apply` until a programme has a version) was the ladder then."""
    if doc is not None and doc.tiers is not None:
        return doc.tiers
    return decoded(program.tiers, lambda t: _ladder(json.dumps(t, sort_keys=True))) if program.tiers else None


def ladder_at(session: Session, program: Program, at: dt.datetime) -> TierConfig | None:
    live = in_force(session, program, at)
    return ladder(program, doc_of(live) if live else None)


def in_force(session: Session, program: Program, at: dt.datetime) -> RuleSet | None:
    return session.scalar(_IN_FORCE, {"program": program.id, "at": at})


def versions(session: Session, program: Program) -> list[RuleSet]:
    return list(session.scalars(select(RuleSet).where(RuleSet.program_id == program.id).order_by(RuleSet.version)))


def versions_exist(session: Session, program: Program) -> bool:
    return session.scalar(select(RuleSet.id).where(RuleSet.program_id == program.id).limit(1)) is not None


def get_version(session: Session, program: Program, version: int) -> RuleSet:
    found = session.scalar(select(RuleSet).where(RuleSet.program_id == program.id, RuleSet.version == version))
    if found is None:
        raise NotFound(f"no rule set version {version}", code="unknown_rule_version")
    return found


def check_wallets(session: Session, program: Program, doc: RuleSetDoc) -> None:
    wallets = set(session.scalars(select(Wallet.code).where(Wallet.program_id == program.id)))
    for r in doc.rules:
        if r.wallet is not None and r.wallet not in wallets:
            raise InvalidRequest(f"rules.{r.code}.wallet: unknown wallet {r.wallet!r}", code="invalid_config")
        if r.award.multiplier == "tier" and ladder(program, doc) is None:
            raise InvalidRequest(f"rules.{r.code}.award: the programme has no tiers", code="invalid_config")


def changes(program: Program, old: RuleSet | None, new: RuleSet) -> dict[str, list[dict]]:
    """Rules added, changed and withdrawn by a version, against the one before it (what members are told);
    `tiers`: the tier levels whose terms it changes, each {code, old, new} (old or new None: added, removed)."""
    before = {r["code"]: r for r in (old.document["rules"] if old else [])}
    after = {r["code"]: r for r in new.document["rules"]}
    was, now = (ladder(program, doc_of(v) if v else None) for v in (old, new))
    levels_before = {lv.code: lv.model_dump(mode="json") for lv in (was.levels if was else [])}
    levels_after = {lv.code: lv.model_dump(mode="json") for lv in (now.levels if now else [])}
    return {"added": [r for c, r in after.items() if c not in before],
            "changed": [r for c, r in after.items() if c in before and before[c] != r],
            "withdrawn": [r for c, r in before.items() if c not in after],
            "tiers": [{"code": c, "old": levels_before.get(c), "new": levels_after.get(c)}
                      for c in [*levels_after, *(c for c in levels_before if c not in levels_after)]
                      if levels_before.get(c) != levels_after.get(c)]}


def publish(session: Session, program: Program, doc: RuleSetDoc, *, effective_from: dt.datetime, now: dt.datetime,
            note: str | None = None, actor: str | None = None) -> RuleSet | None:
    """A new version, unless the version in force at `effective_from` already says exactly this. A document
    without tiers keeps the ladder in force then; every new version carries its ladder."""
    if effective_from.tzinfo is None:
        raise InvalidRequest("effective_from needs a timezone", code="invalid_config")
    check_wallets(session, program, doc)
    current = in_force(session, program, effective_from)
    carried = ladder(program, doc_of(current) if current else None)
    if doc.tiers is None and carried is not None:
        doc = doc.model_copy(update={"tiers": carried})
    document = doc.model_dump(mode="json")
    if (current is not None and current.effective_from <= effective_from
            and {**current.document, "tiers": carried.model_dump(mode="json") if carried else None} == document):
        return None
    last = session.scalar(select(func.max(RuleSet.version)).where(RuleSet.program_id == program.id)) or 0
    rule_set = RuleSet(program_id=program.id, version=last + 1, effective_from=effective_from, document=document,
                       note=note, created_by=actor, created_at=now)
    session.add(rule_set)
    session.flush()
    return rule_set
