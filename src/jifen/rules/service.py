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
from jifen.rules.schema import RuleSetDoc

_IN_FORCE = (select(RuleSet).where(RuleSet.program_id == bindparam("program"),
                                   RuleSet.effective_from <= bindparam("at"))
             .order_by(RuleSet.effective_from.desc(), RuleSet.version.desc()).limit(1))


@functools.lru_cache(maxsize=256)
def _parsed(rule_set_id: int, document_json: str) -> RuleSetDoc:
    return RuleSetDoc.model_validate_json(document_json, context={"stored": True})


def doc_of(rule_set: RuleSet) -> RuleSetDoc:
    """Versions never change, so the parsed document is cached by id (and content, to be safe)."""
    return decoded(rule_set.document, lambda d: _parsed(rule_set.id, json.dumps(d, sort_keys=True)))


def in_force(session: Session, program: Program, at: dt.datetime) -> RuleSet | None:
    return session.scalar(_IN_FORCE, {"program": program.id, "at": at})


def versions(session: Session, program: Program) -> list[RuleSet]:
    return list(session.scalars(select(RuleSet).where(RuleSet.program_id == program.id).order_by(RuleSet.version)))


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
        if r.award.multiplier == "tier" and not program.tiers:
            raise InvalidRequest(f"rules.{r.code}.award: the programme has no tiers", code="invalid_config")


def changes(old: RuleSet | None, new: RuleSet) -> dict[str, list[dict]]:
    """Rules added, changed and withdrawn by a version, against the one before it (what members are told)."""
    before = {r["code"]: r for r in (old.document["rules"] if old else [])}
    after = {r["code"]: r for r in new.document["rules"]}
    return {"added": [r for c, r in after.items() if c not in before],
            "changed": [r for c, r in after.items() if c in before and before[c] != r],
            "withdrawn": [r for c, r in before.items() if c not in after]}


def publish(session: Session, program: Program, doc: RuleSetDoc, *, effective_from: dt.datetime, now: dt.datetime,
            note: str | None = None, actor: str | None = None) -> RuleSet | None:
    """A new version, unless the version in force at `effective_from` already says exactly this."""
    if effective_from.tzinfo is None:
        raise InvalidRequest("effective_from needs a timezone", code="invalid_config")
    check_wallets(session, program, doc)
    document = doc.model_dump(mode="json")
    current = in_force(session, program, effective_from)
    if current is not None and current.document == document and current.effective_from <= effective_from:
        return None
    last = session.scalar(select(func.max(RuleSet.version)).where(RuleSet.program_id == program.id)) or 0
    rule_set = RuleSet(program_id=program.id, version=last + 1, effective_from=effective_from, document=document,
                       note=note, created_by=actor, created_at=now)
    session.add(rule_set)
    session.flush()
    return rule_set
