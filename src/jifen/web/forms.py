"""What the console's action forms share. Each form carries a one-time key rendered with the page, so a
form sent twice (a double click, a reload) does its work once: the API's idempotency records, keyed per
form. A refusal comes back as its message for the page to show; its transaction is rolled back, so
nothing has changed (the key included: the corrected form may be sent again)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi import Request
from markupsafe import Markup

from jifen.apikit import scope
from jifen.db import run_in_transaction
from jifen.errors import InvalidRequest, JifenError
from jifen.idempotency import idempotent
from jifen.ledger.operations import Scope
from jifen.security.service import Principal


def once_field() -> Markup:
    """{{ once_field() }}: the hidden one-time key of an action form."""
    return Markup(f'<input type="hidden" name="once" value="{uuid.uuid4().hex}">')


def done_of(request: Request, known) -> str | None:
    """The `?done=` an action redirected with, if it is one of the page's (anything else is not shown)."""
    done = request.query_params.get("done")
    return done if done in known else None


def whole(text: str, label: str, *, blank: int | None = None, minimum: int | None = None) -> int:
    """A form's whole number, or a clear refusal (`blank`: the value of an empty field, if one is allowed)."""
    text = (text or "").strip().replace(",", "")
    if not text and blank is not None:
        return blank
    try:
        number = int(text)
    except ValueError:
        raise InvalidRequest(f"{label} must be a whole number, not {text!r}", code="invalid_number") from None
    if minimum is not None and number < minimum:
        raise InvalidRequest(f"{label} must be at least {minimum}", code="invalid_number")
    return number


def submit(request: Request, who: Principal, once: str, operation: str, payload: dict,
           work: Callable[[Scope], object]) -> str | None:
    """Run one form's work at most once per key; None when done, else the refusal's message."""
    def tx(session):
        sc = scope(session, who)
        def once_only() -> dict:
            work(sc)
            return {"done": operation}

        return idempotent(session, who.program_id, f"console:{once}" if once else "", f"console.{operation}",
                          payload, once_only)

    try:
        run_in_transaction(request.app.state.sessions, tx)
    except JifenError as exc:
        return exc.message
    return None
