"""Simplified and Traditional Chinese kept consistent by OpenCC rather than by hand: the console's and
member centre's labels are written once in Simplified and converted; the demo writes its names in the
script of its locale. Converters are built once (loading OpenCC's dictionaries costs a few milliseconds)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from jifen.lazy import lazy_import

if TYPE_CHECKING:
    import opencc
else:
    opencc = lazy_import("opencc")

SCRIPTS = ("zh-Hans", "zh-Hant")
# Simplified → Traditional with Taiwan's usage (登录 → 登入, 信息 → 資訊), the zh-Hant demo's locale (zh_TW).
TO_TRADITIONAL = "s2twp"


@functools.cache
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def simplified(text: str) -> str:
    return _converter("t2s").convert(text)


def traditional(text: str) -> str:
    """From Simplified text (convert Traditional with `simplified` first: s2twp reads Simplified)."""
    return _converter(TO_TRADITIONAL).convert(text)


def in_script(value: Any, script: str) -> Any:
    """Every string inside `value` (dicts, lists, nested) in `script` ("zh-Hans" or "zh-Hant")."""
    if isinstance(value, str):
        hans = simplified(value)
        return traditional(hans) if script == "zh-Hant" else hans
    if isinstance(value, dict):
        return {k: in_script(v, script) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(in_script(v, script) for v in value)
    return value
