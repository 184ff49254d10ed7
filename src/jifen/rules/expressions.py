"""Rule conditions: CEL expressions (google/cel-spec, evaluated by the Rust `cel` core). Never eval.

An expression may read the variables `event`, `member` and `tier` and call the standard CEL functions
plus the counters below, which are evaluated lazily (only when the expression reaches them).
"""

from __future__ import annotations

import functools
import re

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


class ExpressionError(ValueError):
    """An expression that cannot be saved; `position` is 1-based (line, column) when known."""

    def __init__(self, message: str, position: tuple[int, int] | None = None):
        self.position = position
        where = f" at line {position[0]}, column {position[1]}" if position else ""
        super().__init__(f"{message}{where}")


@functools.lru_cache(maxsize=4096)
def compile_condition(source: str) -> cel.Program:
    """Compile and check an expression: syntax, known variables, known functions."""
    if not source.strip():
        raise ExpressionError("empty expression")
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


def _locate(source: str, name: str) -> tuple[int, int] | None:
    found = re.search(rf"\b{re.escape(name)}\b", source)
    if not found:
        return None
    line = source.count("\n", 0, found.start()) + 1
    return line, found.start() - (source.rfind("\n", 0, found.start()) + 1) + 1


def evaluate(program: cel.Program, context: cel.Context) -> bool:
    """A condition holds only when it yields true; a missing field or a wrong type does not fire the rule."""
    try:
        return program.execute(context) is True
    except (KeyError, TypeError, ValueError, RuntimeError):
        return False
