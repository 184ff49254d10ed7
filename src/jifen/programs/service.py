"""Creating and finding programmes and wallets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jifen.errors import Conflict, NotFound
from jifen.ledger import operations as ops
from jifen.members.models import Member
from jifen.programs.config import ProgramConfig
from jifen.programs.models import Program, Wallet
from jifen.rules.schema import RuleSetDoc
from jifen.rules.service import doc_of, in_force, publish, versions_exist

DEFAULT_PROGRAM = "default"
DEFAULT_WALLET = "points"


def create_program(
    session: Session,
    code: str,
    name: str,
    *,
    wallets: Sequence[tuple[str, str]] = ((DEFAULT_WALLET, "積分"),),
    timezone: str = "Asia/Shanghai",
    point_value: Decimal = Decimal("0.01"),
    expiry_months: int | None = 24,
    allow_debt: bool = False,
) -> Program:
    if session.scalar(select(Program.id).where(Program.code == code)) is not None:
        raise Conflict(f"programme {code!r} already exists", code="program_exists")
    program = Program(
        code=code,
        name=name,
        timezone=timezone,
        point_value=point_value,
        expiry_months=expiry_months,
        allow_debt=allow_debt,
    )
    session.add(program)
    session.flush()
    ops.open_chain(session, program)
    for i, (wcode, wname) in enumerate(wallets):
        add_wallet(session, program, wcode, wname, is_default=(i == 0))
    return program


def add_wallet(session: Session, program: Program, code: str, name: str, is_default: bool = False) -> Wallet:
    """A new point currency: its system accounts, and accounts for every existing member."""
    wallet = Wallet(program_id=program.id, code=code, name=name, is_default=is_default)
    session.add(wallet)
    session.flush()
    member_pks = session.scalars(select(Member.id).where(Member.program_id == program.id)).all()
    ops.open_accounts(session, [wallet.id], member_pks, system=True)
    return wallet


def ensure_default_program(session: Session) -> Program:
    program = session.scalar(select(Program).where(Program.code == DEFAULT_PROGRAM))
    return program or create_program(session, DEFAULT_PROGRAM, "Jifen 會員積分")


_PROGRAM = select(Program).where(Program.code == bindparam("code"))
_WALLET = select(Wallet).where(Wallet.program_id == bindparam("program"), Wallet.code == bindparam("code"))
_DEFAULT_WALLET = select(Wallet).where(Wallet.program_id == bindparam("program"), Wallet.is_default.is_(True))


def get_program(session: Session, code: str) -> Program:
    program = session.scalar(_PROGRAM, {"code": code})
    if program is None:
        raise NotFound(f"unknown programme {code!r}", code="unknown_program")
    return program


def get_wallet(session: Session, program: Program, code: str | None) -> Wallet:
    """The named wallet, or the programme's default one when code is None."""
    if code:
        wallet = session.scalar(_WALLET, {"program": program.id, "code": code})
    else:
        wallet = session.scalar(_DEFAULT_WALLET, {"program": program.id})
    if wallet is None:
        raise NotFound(f"unknown wallet {code!r} in programme {program.code!r}", code="unknown_wallet")
    return wallet


def apply_config(session: Session, cfg: ProgramConfig, *, now: dt.datetime, actor: str | None = None) -> dict:
    """Create or update a programme from its configuration document; rules become a new version when
    they differ from the version in force. The caller's transaction makes it all-or-nothing."""
    program = session.scalar(_PROGRAM, {"code": cfg.code})
    created = program is None
    months, rounding = cfg.expiry.columns()
    if created:
        program = create_program(session, cfg.code, cfg.name, wallets=[(w.code, w.name) for w in cfg.wallets],
                                 timezone=cfg.timezone, point_value=cfg.point_value, expiry_months=months,
                                 allow_debt=cfg.allow_debt)
    else:
        assert program is not None  # (not created: it was found)
        have = {w.code: w for w in program.wallets}
        for w in cfg.wallets:
            if w.code in have:
                have[w.code].name = w.name  # (the demo's zh-Hans 积分 over the first start's default 積分)
            else:
                add_wallet(session, program, w.code, w.name)
        program.name, program.timezone, program.point_value = cfg.name, cfg.timezone, cfg.point_value
        program.expiry_months, program.allow_debt = months, cfg.allow_debt
    program.point_name, program.expiry_round = cfg.point_name, rounding
    program.pending_days = dict(cfg.pending_days)
    program.reminder_rewards = [r.model_dump(mode="json") for r in cfg.reminder_rewards]
    program.double_value = cfg.double_value.model_dump(mode="json") if cfg.double_value else {}
    program.risk = cfg.risk.model_dump(mode="json", exclude_unset=True) if cfg.risk else {}
    session.flush()
    # Tiers change as the rules do, through a version (rules/schema.py RuleSetDoc.tiers): the programme's own
    # ladder is only the one before its first version.
    start = (cfg.rules.effective_from or now) if cfg.rules else now
    first = not versions_exist(session, program)
    if first:
        program.tiers = cfg.tiers.model_dump(mode="json") if cfg.tiers else {}
    doc = cfg.rules.doc() if cfg.rules is not None else None
    if doc is None and cfg.tiers and not first:  # a new ladder for the rules in force
        live = in_force(session, program, start)
        doc = doc_of(live) if live is not None else RuleSetDoc()
    version = None
    if doc is not None:
        doc = doc.model_copy(update={"tiers": cfg.tiers}) if cfg.tiers else doc
        version = publish(session, program, doc, effective_from=start, now=now,
                          note=cfg.rules.note if cfg.rules else None, actor=actor)
    return {"program": program.code, "created": created, "rule_version": version.version if version else None}
