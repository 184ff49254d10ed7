"""What the console's tests share: `demo`, the small demo programme the language and browser tests walk
(seeded once for tests/web); `site`, an app on a fresh SQLite copy with M1 (a phone, 1,200 points after an
award and a spend), M2, and an operator console user "xiaowang"."""

from __future__ import annotations

import shutil

import pytest

from jifen.api import create_app
from jifen.db import run_in_transaction
from jifen.ledger import operations as ops
from jifen.members.service import create_member
from jifen.programs.service import get_program
from tests.conftest import Ledger, m
from tests.support.console_login import add_user
from tests.support.demo_site import demo_app


@pytest.fixture(scope="package")
def demo(sqlite_template, tmp_path_factory):
    app = demo_app(sqlite_template, tmp_path_factory.mktemp("demo"))
    yield app
    app.state.engine.dispose()


@pytest.fixture
def site(tmp_path, sqlite_template):
    path = tmp_path / "console.db"
    shutil.copy(sqlite_template, path)
    app = create_app(f"sqlite:///{path}")
    ledger = Ledger(app.state.sessions)
    run_in_transaction(app.state.sessions, lambda s: create_member(s, get_program(s, "default"), "M1",
                                                                   phone="13812341234"))
    ledger.add_members("M2")
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "M1"), 1500, reference="SO-9"))
    ledger.run(lambda sc, s: ops.spend(sc, m(sc, "M1"), 300))
    yield app, add_user(app, "operator", "xiaowang")
    app.state.engine.dispose()
