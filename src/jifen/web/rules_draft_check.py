"""Checking a rules draft as the operator types: the validation publishing runs (the YAML, the rule set's
schema with its CEL bounds, an empty set, the programme's wallets and tiers), each problem with the
field path and the YAML line it is on, so the editor can show it beside the field or the line."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import yaml
from fastapi.encoders import jsonable_encoder
from pydantic import ValidationError
from sqlalchemy.orm import Session

from jifen.errors import InvalidRequest
from jifen.programs.config import RulesConfig
from jifen.programs.models import Program
from jifen.rules.service import check_wallets


@dataclass
class Problem:
    path: str  # "rules.0.condition"; "" for the whole draft
    line: int | None  # 1-based line of the YAML text
    message: str
    code: str = "invalid_config"


@dataclass
class Checked:
    text: str  # the draft as YAML (what is saved)
    data: Any  # the draft as data (what the form shows); None when the YAML does not parse
    config: RulesConfig | None  # set when there is no problem
    problems: list[Problem]

    def answer(self) -> dict[str, Any]:
        return {"text": self.text, "doc": self.data, "errors": [asdict(p) for p in self.problems]}


def dump_draft(data: Any) -> str:
    """Form data as the YAML the draft is saved as (keys in the order the form keeps them)."""
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110)


def check_text(session: Session, program: Program, text: str) -> Checked:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = Problem("", mark.line + 1 if mark else None, f"not valid YAML{where}", "invalid_yaml")
        return Checked(text, None, None, [problem])
    return _check(session, program, text, jsonable_encoder(data))


def check_data(session: Session, program: Program, data: Any) -> Checked:
    return _check(session, program, dump_draft(data), data)


def _check(session: Session, program: Program, text: str, data: Any) -> Checked:
    if not isinstance(data, dict):
        return Checked(text, data, None, [Problem("", 1, "expected a mapping with a rules list")])
    try:
        config = RulesConfig.model_validate(data)
    except ValidationError as exc:
        root = _root(text)
        problems = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if isinstance(p, int) or p in _FIELDS]  # (union branches left out)
            problems.append(Problem(".".join(map(str, loc)), _line(root, loc),
                                    err["msg"].removeprefix("Value error, ")))
        return Checked(text, data, None, problems)
    try:
        check_wallets(session, program, config.doc())  # (an empty set unless allow_empty, as publishing)
    except InvalidRequest as exc:
        path = _rule_path(exc.message, config)
        return Checked(text, data, None, [Problem(path, _line(_root(text), path.split(".") if path else []),
                                                  exc.message, exc.code)])
    return Checked(text, data, config, [])


def _fields(model) -> set[str]:
    out = set(model.model_fields)
    for f in model.model_fields.values():
        for t in getattr(f.annotation, "__args__", ()) + (f.annotation,):
            if isinstance(t, type) and hasattr(t, "model_fields"):
                out |= _fields(t)
    return out


_FIELDS = _fields(RulesConfig)
_RULE_FIELD = re.compile(r"^rules\.([a-z][a-z0-9_]*)\.([a-z_]+):")


def _rule_path(message: str, config: RulesConfig) -> str:
    """check_wallets names a rule by its code ("rules.<code>.wallet: …"): the path by its place."""
    m = _RULE_FIELD.match(message)
    codes = [r.code for r in config.rules]
    if m and m[1] in codes:
        return f"rules.{codes.index(m[1])}.{m[2]}"
    return "rules" if not config.rules else ""


def _root(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text)
    except yaml.YAMLError:
        return None  # (the text parsed a moment ago; composing it cannot fail in practice)


def _line(node: yaml.Node | None, loc: list) -> int | None:
    """The line of the deepest node of `loc` the YAML has (a missing field: the line of its parent)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.SequenceNode) and str(part).isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
        elif isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
            continue
        else:
            break
        line = node.start_mark.line + 1
    return line
