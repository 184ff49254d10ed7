"""Start-up (issue 14): the server's and the command's modules load no heavy library until a request or a
command uses it — SciPy, scikit-learn, pandas, Polars, statsmodels, DuckDB, NetworkX, joblib, NumPy, OpenCC
and Plotly cost seconds together, paid by every worker, every `jifen` command and every test that starts a
server. Each check runs in a fresh interpreter: this one has imported half of them already."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("scipy", "sklearn", "pandas", "polars", "statsmodels", "duckdb", "networkx", "joblib", "numpy", "opencc",
         "plotly")


def loaded_after(code: str) -> list[str]:
    """The heavy libraries in sys.modules after `code` has run in a new interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], env=os.environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("module", ["jifen.api", "jifen.cli"])
def test_importing_the_server_or_the_command_loads_no_heavy_library(module):
    assert loaded_after(f"import {module}") == []


def test_an_english_label_needs_no_opencc_and_a_chinese_one_converts_on_first_use():
    assert loaded_after("from jifen.web.i18n import translator\nassert translator('en')('members') == 'Members'") == []
    assert "opencc" in loaded_after("from jifen.web.i18n import translator\n"
                                    "assert translator('zh-Hant')('member_count') == '會員數'")


def test_a_deferred_library_is_imported_when_the_code_uses_it():
    used = loaded_after("from jifen.analytics import stats\n"
                        "c = stats.compare_means([1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0])\n"
                        "assert round(c.difference, 6) == -1.0, c")
    assert "scipy" in used and "numpy" in used and "sklearn" not in used
