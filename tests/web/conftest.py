"""The small demo programme the language and browser tests walk, seeded once for tests/web."""

from __future__ import annotations

import pytest

from tests.support.demo_site import demo_app


@pytest.fixture(scope="package")
def demo(sqlite_template, tmp_path_factory):
    app = demo_app(sqlite_template, tmp_path_factory.mktemp("demo"))
    yield app
    app.state.engine.dispose()
