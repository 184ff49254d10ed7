"""Simple conditions run as Python: comparisons of typed event and member fields with literals, `in` a
list of literals, joined by `&&`, `||`, `!` and brackets — `event.amount > 100`, `member.tier in ["gold",
"vip"] && event.channel == "app"`.

Why: the CEL library converts every variable into a CEL value when a context is built, about 100 µs per
event even for `event.amount > 100`, while the comparison itself takes under a microsecond. Anything
outside this subset (counters, `has`, arithmetic, attributes, macros, escapes in strings) returns None
and runs through CEL, which stays the reference: tests compare the two on generated conditions.

Only fields whose type rules/engine.event_variables fixes are allowed, and only comparisons CEL
defines between those types, so a compiled condition never meets a value of another type.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

from jifen.rules.expressions import ExpressionError, Token, check_bounds, tokens

Check = Callable[[dict[str, Any]], bool]

# (path) → "int" | "double" | "string" | "bool", as event_variables builds them.
FIELDS: dict[tuple[str, ...], str] = {
    ("event", "type"): "string", ("event", "channel"): "string", ("event", "order_id"): "string",
    ("event", "amount"): "double", ("event", "local", "date"): "string", ("event", "local", "hour"): "int",
    ("event", "local", "weekday"): "int", ("event", "local", "day"): "int", ("event", "local", "month"): "int",
    ("event", "local", "year"): "int", ("member", "id"): "string", ("member", "tier"): "string",
    ("member", "credit"): "int", ("member", "joined_days"): "int", ("member", "birthday_month"): "bool",
    ("member", "birthday_today"): "bool", ("tier",): "string",
}
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_EQUAL = {"==": operator.eq, "!=": operator.ne}


class _Outside(Exception):
    """The condition is not in the subset: CEL runs it."""


@functools.lru_cache(maxsize=4096)
def native(source: str) -> Check | None:
    """The condition as a Python function of event_variables' dict, or None outside the subset."""
    try:
        check_bounds(source)  # (a stored condition beyond them is refused where CEL compiles it)
        parser = _Parser(tokens(source))
        check = parser.expr()
        if parser.peek() is not None:
            raise _Outside
        return check
    except (_Outside, ExpressionError):
        return None


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.at = tokens, 0

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or (text is not None and token[1] != text):
            raise _Outside
        self.at += 1
        return token

    def expr(self) -> Check:
        return self.joined("||", self.conj, any)

    def conj(self) -> Check:
        return self.joined("&&", self.unary, all)

    def joined(self, op: str, part: Callable[[], Check], combine: Callable[[Any], bool]) -> Check:
        """`part (op part)*`, combined with any (||) or all (&&), which stop at the first decisive part."""
        parts = [part()]
        while self.peek() == ("op", op):
            self.take()
            parts.append(part())
        return parts[0] if len(parts) == 1 else (lambda v: combine(p(v) for p in parts))

    def unary(self) -> Check:
        token = self.peek()
        if token == ("op", "!"):
            self.take()
            inner = self.unary()
            return lambda v: not inner(v)
        if token == ("op", "("):
            self.take()
            inner = self.expr()
            self.take(")")
            return inner
        if token in (("name", "true"), ("name", "false")):
            self.take()
            value = token[1] == "true"
            return lambda v: value
        return self.comparison()

    def comparison(self) -> Check:
        left = self.operand()
        token = self.peek()
        if token is None or token[1] not in (*_ORDER, *_EQUAL, "in"):
            if left[0] != "bool" or left[1] is None:  # a bare boolean field
                raise _Outside
            get = left[1]
            return lambda v: get(v) is True
        self.take()
        if token[1] == "in":
            return self.membership(left)
        right = self.operand()
        return _compare(token[1], left, right)

    def membership(self, left: tuple[str, Callable | None, Any]) -> Check:
        kind, get, _ = left
        if get is None:
            raise _Outside
        self.take("[")
        values = []
        while True:
            item = self.operand()
            if item[1] is not None or item[0] != kind or kind not in ("string", "int"):
                raise _Outside  # (a double `in` compares like ==: left to CEL)
            values.append(item[2])
            if self.peek() == ("op", ","):
                self.take()
                continue
            self.take("]")
            break
        options = frozenset(values)
        return lambda v: get(v) in options

    def operand(self) -> tuple[str, Callable | None, Any]:
        """(type, getter for a field or None, literal value)."""
        kind, text = self.take()
        if kind == "number":
            if text[:2].lower() == "0x" or text[-1] in "uU":
                raise _Outside
            is_double = any(c in text for c in ".eE")
            return ("double" if is_double else "int"), None, float(text) if is_double else int(text)
        if kind == "string":
            if text[0] not in "'\"" or "\\" in text or text[:3] in ("'''", '"""'):
                raise _Outside
            return "string", None, text[1:-1]
        if kind == "name" and text in ("event", "member", "tier"):
            path = [text]
            while self.peek() == ("op", "."):
                self.take()
                path.append(self.take()[1])
            field = FIELDS.get(tuple(path))
            if field is None:
                raise _Outside
            return field, _getter(tuple(path)), None
        raise _Outside


def _getter(path: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
    if len(path) == 1:
        return operator.itemgetter(path[0])
    if len(path) == 2:
        a, b = path
        return lambda v: v[a][b]
    a, b, c = path
    return lambda v: v[a][b][c]


def _compare(op: str, left: tuple[str, Callable | None, Any], right: tuple[str, Callable | None, Any]) -> Check:
    numbers = {left[0], right[0]} <= {"int", "double"}
    if op in _ORDER:
        allowed = numbers or left[0] == right[0] == "string"
    else:  # equality across int and double is left to CEL
        allowed = left[0] == right[0]
    if not allowed or (left[1] is None and right[1] is None):
        raise _Outside
    fn = _ORDER.get(op) or _EQUAL[op]
    lget, lval = left[1], left[2]
    rget, rval = right[1], right[2]
    if lget is not None and rget is not None:
        return lambda v: fn(lget(v), rget(v))
    if lget is not None:
        return lambda v: fn(lget(v), rval)
    assert rget is not None
    return lambda v: fn(lval, rget(v))
