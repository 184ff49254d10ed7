"""Rule conditions: CEL expressions (google/cel-spec, evaluated by the Rust `cel` core). Never eval.

An expression may read the variables `event`, `member` and `tier` and call the standard CEL functions
plus the counters below, which are evaluated lazily (only when the expression reaches them).

The CEL library has no cost limit, holds the GIL while it evaluates (a slow condition stalls every
request of the process, not only its own) and overflows its native stack on very long expressions. So
before the library sees a condition it is bounded here: length, tokens, bracket depth and an estimated
evaluation cost (see `estimated_cost`); and when it is saved it is tried once on a sample purchase, so
that `1/0` or an overflow is refused then rather than at every event.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

import cel

VARIABLES = frozenset({"event", "member", "tier"})
# count(type, period), amount(type, period): this member's events of a type, the current one included;
# period is day / week / month / year (calendar, programme timezone), all, or a rolling window "30d".
# streak(type): consecutive days with such an event, ending today. days_since(type): whole days since the
# previous such event (-1 when there is none).
# team_size(): members in the member's team (0 without one) — seed 001's team boost.
COUNTERS = frozenset({"count", "amount", "streak", "days_since", "team_size"})
PERIOD = re.compile(r"^(day|week|month|year|all|[1-9][0-9]{0,3}d)$")
_CEL_FUNCTIONS = frozenset({
    "size", "has", "all", "exists", "exists_one", "map", "filter", "matches", "contains", "startsWith",
    "endsWith", "int", "uint", "double", "string", "bool", "timestamp", "duration", "max", "min",
    "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getHours",
    "getMinutes", "getSeconds", "lowerAscii", "upperAscii", "type", "dyn",
})
_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*?)(?:\n|$)")

# Bounds on a condition (docs/rules.md). The CEL core crashed the process at ~15,000 chained terms.
MAX_LENGTH = 4096  # characters
MAX_TOKENS = 512
MAX_DEPTH = 24  # nested brackets
MAX_COST = 250_000  # estimated steps per evaluation (estimated_cost): about 0.2 s at worst here
INPUT_LIST = 500  # the longest list an event or member brings (order lines; arrays in free-form attributes)


class ExpressionError(ValueError):
    """An expression that cannot be saved; `position` is 1-based (line, column) when known."""

    def __init__(self, message: str, position: tuple[int, int] | None = None):
        self.position = position
        where = f" at line {position[0]}, column {position[1]}" if position else ""
        super().__init__(f"{message}{where}")


class ConditionError(Exception):
    """A condition that failed while it was evaluated: division by zero, an overflow, a bad conversion."""


_STRING = "|".join((
    r"[bB]?[rR][bB]?(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|\"[^\"\n]*\")",  # raw: no escapes
    r"[bB]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\")",
))
_TOKEN = re.compile(
    r"(?P<space>\s+|//[^\n]*)"
    rf"|(?P<string>{_STRING})"
    r"|(?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?[uU]?)"
    r"|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|.)", re.DOTALL)
_OPEN, _CLOSE = "([{", ")]}"
_LOOPS = {"all": False, "exists": False, "exists_one": False, "map": True, "filter": True}  # True: builds a list
Token = tuple[str, str]  # (kind, text)


def tokens(source: str) -> list[Token]:
    """The tokens without spaces and comments: enough of CEL's grammar to bound its cost."""
    return [(m.lastgroup or "op", m[0]) for m in _TOKEN.finditer(source) if m.lastgroup != "space"]


def _pairs(tokens: list[Token]) -> dict[int, int]:
    """Each opening bracket's closing one."""
    pairs, stack = {}, []
    for i, (_, text) in enumerate(tokens):
        if text in _OPEN:
            stack.append(i)
        elif text in _CLOSE and stack:
            pairs[stack.pop()] = i
    return pairs


def _literal_length(tokens: list[Token], start: int | None, pairs: dict[int, int]) -> int:
    """Elements of the list or map literal opened at `start`; INPUT_LIST for anything else (an index,
    a variable, a call), whose length only the event knows."""
    if start is None or start not in pairs or tokens[start][1] not in "[{":
        return INPUT_LIST
    before = tokens[start - 1] if start else ("op", "(")
    if before[1] in _CLOSE or (before[0] in ("name", "number", "string") and before[1] != "in"):
        return INPUT_LIST  # `x[0]`, `f()[0]`: an index, not a literal
    end, depth, commas = pairs[start], 0, 0
    for _, text in tokens[start + 1:end]:
        depth += (text in _OPEN) - (text in _CLOSE)
        commas += depth == 0 and text == ","
    return 0 if end == start + 1 else commas + 1 - (tokens[end - 1][1] == ",")


def estimated_cost(tokens: list[Token]) -> int:
    """Steps one evaluation may take at worst (a step, about 1 µs here, is one element copied by `filter`).
    A comprehension (`all`, `exists`, `exists_one`, `map`, `filter`) runs its body once per element of
    the list it is called on: the literal's length, else INPUT_LIST. `map` and `filter` copy the list
    they build at every step (measured: quadratic), and a list of lists costs as many steps per element
    as the inner lists hold. Inside a comprehension, `x in list` and `a + b` (unless a side is a literal
    number or string) may walk a whole list, at about a tenth of a step per element. Nesting multiplies."""
    pairs = _pairs(tokens)
    opener = {end: start for start, end in pairs.items()}
    loops = []  # (open paren, close paren, elements, builds a list)
    for i in range(1, len(tokens) - 2):
        if tokens[i][1] == "." and tokens[i + 1][1] in _LOOPS and tokens[i + 2][1] == "(" and i + 2 in pairs:
            loops.append((i + 2, pairs[i + 2], _literal_length(tokens, opener.get(i - 1), pairs),
                          _LOOPS[tokens[i + 1][1]]))

    def runs(at: int) -> int:
        return math.prod(n for start, end, n, _ in loops if start < at < end)

    def walks(i: int) -> int:  # elements `in` or `+` at token i may walk
        if tokens[i][1] == "in":
            return _literal_length(tokens, i + 1 if i + 1 < len(tokens) else None, pairs)
        scalar = any(0 <= j < len(tokens) and tokens[j][0] in ("number", "string") for j in (i - 1, i + 1))
        return 0 if tokens[i][1] != "+" or scalar else INPUT_LIST

    cost = sum(runs(i) * (1 + walks(i) // 10) for i in range(len(tokens)))
    for start, end, n, builds in loops:
        if builds:  # each element built may itself be a list: of a nested loop, a literal or a concatenation
            inner = [m for s, _, m, _ in loops if start < s < end] + [walks(i) for i in range(start, end)] + [
                _literal_length(tokens, i, pairs) for i in range(start + 1, end) if tokens[i][1] in "[{"]
            cost += runs(start) * (n * n // 2) * max([1, *inner])
        cost += runs(start) * n
    return cost


def check_bounds(source: str) -> None:
    """Refuse a condition too long, too deep or too costly to evaluate, before the CEL library parses it."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"too long: {len(source):,} characters (at most {MAX_LENGTH:,})")
    found = tokens(source)
    if len(found) > MAX_TOKENS:
        raise ExpressionError(f"too long: {len(found):,} terms and operators (at most {MAX_TOKENS})")
    depth = deepest = 0
    for _, text in found:
        depth += (text in _OPEN) - (text in _CLOSE)
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise ExpressionError(f"brackets nested {deepest} deep (at most {MAX_DEPTH})")
    cost = estimated_cost(found)
    if cost > MAX_COST:
        raise ExpressionError(f"too costly: up to {cost:,} steps per event (at most {MAX_COST:,}); "
                              "avoid nesting map, filter, exists or all over lists")


@functools.lru_cache(maxsize=4096)
def compile_condition(source: str) -> cel.Program:
    """Bound, compile and check an expression: size and cost, syntax, known variables, known functions."""
    if not source.strip():
        raise ExpressionError("empty expression")
    check_bounds(source)
    try:
        program = cel.compile(source)
    except ValueError as exc:
        found = _POSITION.search(str(exc))
        if found:
            line, col, msg = int(found[1]), int(found[2]), found[3]  # CEL columns are 1-based
            raise ExpressionError(msg, (line, col)) from None
        raise ExpressionError(str(exc).splitlines()[0]) from None
    functions = {f for f in program.functions() if not (f.startswith("_") or f.startswith("@") or f.startswith("!"))}
    # Comprehension macros bind their own names (`lines.exists(l, ...)`), which CEL reports as variables.
    bound = set(re.findall(r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,", source))
    unknown_vars = set(program.variables()) - VARIABLES - bound
    if unknown_vars:
        name = sorted(unknown_vars)[0]
        raise ExpressionError(f"unknown variable {name!r} (use event, member, tier)", _locate(source, name))
    unknown_fns = functions - COUNTERS - _CEL_FUNCTIONS
    if unknown_fns:
        name = sorted(unknown_fns)[0]
        raise ExpressionError(f"unknown function {name!r}", _locate(source, name))
    for fn, args in re.findall(r"\b(count|amount|streak|days_since)\s*\(([^)]*)\)", source):
        parts = [a.strip().strip("'\"") for a in args.split(",")]
        if fn in ("count", "amount") and (len(parts) != 2 or not PERIOD.match(parts[1])):
            raise ExpressionError(f"{fn}(type, period) needs a period of day, week, month, year, all or Nd",
                                  _locate(source, fn))
    return program


# A purchase as rules see it (the shape of rules/engine.py event_variables), to try a condition on.
_SAMPLE = {
    "event": {"type": "purchase", "channel": "app", "amount": 100.0, "order_id": "SO-1",
              "lines": [{"sku": "SKU-1", "category": "food", "amount": 100.0, "quantity": 1}],
              "categories": ["food"], "attributes": {},
              "local": {"date": "2026-01-15", "hour": 12, "weekday": 4, "day": 15, "month": 1, "year": 2026}},
    "member": {"id": "M1", "tier": "", "attributes": {}, "segments": [], "credit": 100, "joined_days": 30,
               "birthday_month": False, "birthday_today": False},
    "tier": "",
}
_SAMPLE_COUNTERS: dict[str, Callable[..., Any]] = {
    "count": lambda _t, _p: 1, "amount": lambda _t, _p: 100.0, "streak": lambda _t: 1,
    "days_since": lambda _t: 1, "team_size": lambda: 1}


@functools.lru_cache(maxsize=4096)
def check_condition(source: str) -> cel.Program:
    """What saving a condition checks: compile_condition, then one evaluation on a sample purchase that
    must not fail, so that a condition dividing by zero or overflowing is refused now, not at every event."""
    program = compile_condition(source)
    try:
        evaluate(program, cel.Context(variables=_SAMPLE, functions=_SAMPLE_COUNTERS))
    except ConditionError as exc:
        raise ExpressionError(f"fails on a sample purchase: {exc}") from None
    return program


def _locate(source: str, name: str) -> tuple[int, int] | None:
    found = re.search(rf"\b{re.escape(name)}\b", source)
    if not found:
        return None
    line = source.count("\n", 0, found.start()) + 1
    return line, found.start() - (source.rfind("\n", 0, found.start()) + 1) + 1


def evaluate(program: cel.Program, context: cel.Context) -> bool:
    """A condition holds only when it yields true. A missing field or a value of another type does not
    fire the rule; an arithmetic or conversion error raises ConditionError (the caller skips the rule and
    reports it)."""
    try:
        return program.execute(context) is True
    except (LookupError, TypeError):
        return False
    except (ArithmeticError, ValueError, RuntimeError) as exc:
        raise ConditionError(str(exc).splitlines()[0][:200]) from None
