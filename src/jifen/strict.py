"""The strict base model of request bodies and configuration documents: unknown fields are refused, and a
value must be of the JSON type the API document gives it — `false` is not 0, `"5"` is not 5, `0` is not `false`,
and a number is not a date (the document says an ISO 8601 string); 5.0 is 5, as in JSON Schema. No text
carries a NUL character (U+0000): PostgreSQL cannot store one, and no name, code or reference needs it.

Pydantic's lax mode would take all of those. Its strict mode cannot be used as a whole: FastAPI validates the
decoded JSON in Python mode, where strict also refuses the strings that JSON carries dates and decimals in. So
the model's core schema is tightened instead: booleans and numbers strict, integers refuse text and booleans,
dates refuse numbers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

_DONE = "jifen.strict"
# What JSON may carry for each: a date is an ISO 8601 string, never a number; an integer is a number (600.0
# is 600, as in JSON Schema; 600.5 stays refused), never `true` or "600".
_REFUSED = {"datetime": (int, float), "date": (int, float), "int": (bool, str)}
_EXPECTED = {"datetime": "a datetime (an ISO 8601 string)", "date": "a date (an ISO 8601 string)",
             "int": "an integer (a JSON number)"}


def _refuse(kind: str):
    def check(value: Any) -> Any:
        if isinstance(value, _REFUSED[kind]):
            raise PydanticCustomError(f"{kind}_type", f"Input should be {_EXPECTED[kind]}")
        return value

    return check


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "Input should not contain a NUL character (U+0000)")
    return value


def _tighten(node: Any) -> None:
    """Walk a core schema in place: booleans and numbers strict; dates and integers refuse what JSON cannot mean;
    text refuses NUL."""
    if isinstance(node, list):
        for item in node:
            _tighten(item)
    elif isinstance(node, dict) and not node.get("metadata", {}).get(_DONE):  # (a nested model's, done already)
        for value in list(node.values()):
            _tighten(value)
        kind = node.get("type") if isinstance(node.get("type"), str) else None
        if kind in ("bool", "float"):
            node["strict"] = True
        elif kind in _REFUSED:
            inner = {k: v for k, v in node.items() if k != "strict"}  # (StrictInt too: 600.0 is an integer)
            node.clear()
            node.update(type="function-before", function={"type": "no-info", "function": _refuse(kind)},
                        schema=inner, metadata={_DONE: True})
        elif kind == "str":
            inner = dict(node)
            node.clear()
            node.update(type="function-after", function={"type": "no-info", "function": _no_nul}, schema=inner,
                        metadata={_DONE: True})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        schema = handler(source)
        _tighten(schema)
        return schema
