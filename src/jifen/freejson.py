"""Free-form JSON in request bodies (event and member `attributes`, a redemption's `address`): any JSON
object, within two bounds, so that a hostile one cannot take the server down or bloat the database.

- **Depth ≤ 16** nested objects or arrays, the field's own object counting as 1. What the value passes
  through recurses once per level and gives up at a few hundred (pydantic's serializer, used for the
  idempotency digest, at 256; Python's json at about 1,000): past that a request was a 500. Real
  attributes are flat, or one or two levels deep.
- **Arrays ≤ 500 items.** Rule conditions may walk these arrays (`event.attributes.tags.exists(…)`), and
  their cost bound counts on no list an event brings being longer (rules/expressions.py INPUT_LIST).
- **Size ≤ 16 KiB** as compact JSON (UTF-8). The value is stored with the event, member or order, and
  hashed on every replay; a store code, a campaign tag or a delivery address is a few hundred bytes.

NaN and ±Infinity (and numbers too large for a double, read as Infinity) are not JSON: refused too.

Past either bound: 422 `invalid_request` naming the field (e.g. `events.3.attributes`). Rows stored before
these bounds keep reading as they are: the bounds apply to requests, never to what is read back."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator

MAX_DEPTH = 16
MAX_BYTES = 16 * 1024
MAX_ITEMS = 500  # = rules.expressions.INPUT_LIST


def _check_shape(value, levels: int = MAX_DEPTH) -> None:
    """Refuse objects/arrays nested more than `levels` deep or arrays over MAX_ITEMS; looks no deeper
    than that, so its own recursion is bounded whatever the value."""
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    if children is None:
        return
    if levels == 0:
        raise ValueError(f"too deep: more than {MAX_DEPTH} levels of nested objects or arrays")
    if isinstance(value, list) and len(value) > MAX_ITEMS:
        raise ValueError(f"an array of {len(value)} items (at most {MAX_ITEMS})")
    for child in children:
        _check_shape(child, levels - 1)


def _bounded(value: dict[Any, Any]) -> dict[Any, Any]:
    _check_shape(value)
    try:  # NaN and ±Infinity: Python's parser takes them (and 1e400 as Infinity), JSON has no such numbers
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())
    except ValueError:
        raise ValueError("NaN and Infinity are not JSON numbers") from None
    if size > MAX_BYTES:
        raise ValueError(f"too large: {size} bytes as JSON, at most {MAX_BYTES}")
    return value


FreeJson = Annotated[dict[Any, Any], AfterValidator(_bounded)]  # dict[Any, Any]: pydantic's schema for a bare dict
