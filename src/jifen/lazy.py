"""Heavy libraries imported on first use instead of at start-up.

SciPy, scikit-learn (with the pandas it pulls in), Polars, DuckDB, NetworkX, joblib, NumPy and OpenCC cost
seconds to import together, and every server worker, every `jifen` command and every test that starts a
server paid for them although most requests and commands use none (issue 14). A module that needs one
names it the same way everywhere, so that mypy still sees the real module:

    if TYPE_CHECKING:
        import polars as pl
    else:
        pl = lazy_import("polars")

and the library is imported when code first reads an attribute (`pl.DataFrame`), not when the module
is imported. tests/test_startup.py checks that `import jifen.api` and `import jifen.cli` load none of them.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands in for a module until one of its attributes is read; then imports it (the import system's
    lock makes that safe from several threads) and keeps each attribute read, so later reads are plain
    attribute reads with no import machinery on the path."""

    def __init__(self, name: str) -> None:
        self._lazy_name = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self._lazy_name), attr)
        setattr(self, attr, value)
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self._lazy_name!r}>"


def lazy_import(name: str) -> Any:
    """`name` (a dotted module name, e.g. "scipy.stats") imported on first attribute read."""
    return LazyModule(name)
