"""Ledger tables. Only jifen.ledger writes them.

journal_entries, postings and lot_moves are append-only history (hash-chained per programme);
accounts.balance, lots' state columns and holds.status are state kept for speed, always equal to what
the history implies (`jifen ledger verify` proves it).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow

# Member account kinds. Debt is the only balance allowed below zero (refund claw-back).
AVAILABLE, PENDING, HELD, FROZEN, DEBT = "available", "pending", "held", "frozen", "debt"
MEMBER_KINDS = (AVAILABLE, PENDING, HELD, FROZEN, DEBT)
LOT_KINDS = (AVAILABLE, PENDING, HELD, FROZEN)  # the states a lot's points can be in
# Programme (system) account kinds, one per wallet. Issuance and adjustment run negative by design.
ISSUANCE, REDEMPTION, EXPIRY, ADJUSTMENT = "issuance", "redemption", "expiry", "adjustment"
SYSTEM_KINDS = (ISSUANCE, REDEMPTION, EXPIRY, ADJUSTMENT)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("wallet_id", "member_pk", "kind"),
        Index(
            "uq_accounts_system",
            "wallet_id",
            "kind",
            unique=True,
            sqlite_where=text("member_pk IS NULL"),
            postgresql_where=text("member_pk IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"))
    member_pk: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(16))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)


class JournalEntry(Base):
    __tablename__ = "journal_entries"
    __table_args__ = (
        UniqueConstraint("program_id", "seq"),
        Index("ix_journal_reverses", "reverses_entry_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    # Position in the programme's hash chain; assigned last, under the chain-head lock.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(16))
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    member_pk: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    counterparty_pk: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    reverses_entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))
    hold_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class Posting(Base):
    __tablename__ = "postings"
    __table_args__ = (
        Index("ix_postings_entry", "entry_id"),
        Index("ix_postings_account", "account_id"),
        Index("ix_postings_member_entry", "member_pk", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    member_pk: Mapped[int | None] = mapped_column(BigInteger)  # copied from the account for listing
    amount: Mapped[int] = mapped_column(BigInteger)


class Lot(Base):
    """Points from one award, with their expiry, and how many of them are in each state now."""

    __tablename__ = "lots"
    __table_args__ = (
        Index("ix_lots_member_fifo", "member_pk", "wallet_id", "expires_at"),
        Index(
            "ix_lots_expirable",
            "expires_at",
            sqlite_where=text("available > 0"),
            postgresql_where=text("available > 0"),
        ),
        Index(
            "ix_lots_maturing",
            "pending_until",
            sqlite_where=text("pending > 0"),
            postgresql_where=text("pending > 0"),
        ),
        Index("ix_lots_source_entry", "source_entry_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"))
    source_entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))
    # A transfer moves points into new lots of the receiver that keep the giver's expiry.
    origin_lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    pending_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    frozen: Mapped[int] = mapped_column(BigInteger, default=0)


class LotMove(Base):
    """Which lots paid for (or received) an entry's posting on a member account."""

    __tablename__ = "lot_moves"
    __table_args__ = (Index("ix_lot_moves_entry", "entry_id"), Index("ix_lot_moves_lot", "lot_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)


class Hold(Base):
    """A two-phase reservation of points: open → captured | released."""

    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_open_expiry", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")
    reference: Mapped[str | None] = mapped_column(String(200))
    hold_entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))
    settle_entry_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ChainHead(Base):
    """The last link of a programme's hash chain; locked briefly by every entry's commit."""

    __tablename__ = "chain_heads"

    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64), default="0" * 64)


class ChainCheckpoint(Base):
    """How far a programme's chain was last proven whole by `jifen ledger verify`: `--since-checkpoint`
    re-checks only the entries after it (and that the checkpoint's entry still has this hash)."""

    __tablename__ = "chain_checkpoints"

    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
