"""The demo speaks one script: with --locale zh-Hans (the default) its people, addresses, programme and
catalogue are Simplified; with zh-Hant they are Traditional (Faker's zh_TW, names converted by OpenCC)."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from jifen import hanzi
from jifen.db import make_engine, make_sessionmaker
from jifen.demo import seed_demo
from jifen.mall.models import Redemption, Reward
from jifen.members.models import Member
from jifen.programs.models import Program
from tests.test_cli import jifen


def _seeded(template, folder, locale):
    path = folder / f"{locale}.db"
    shutil.copy(template, path)
    engine = make_engine(f"sqlite:///{path}")
    factory = make_sessionmaker(engine)
    seed_demo(factory, members=30, days=10, locale=locale)
    with factory() as s:
        names = [m.name for m in s.scalars(select(Member).where(Member.member_id.like("M%")))]
        addresses = [r.address["line"] for r in s.scalars(select(Redemption)) if r.address]
        program = s.scalar(select(Program).where(Program.code == "default"))
        shown = {"programme": program.name, "tiers": [t["name"] for t in program.tiers["levels"]],
                 "oven": s.scalar(select(Reward.name).where(Reward.code == "oven"))}
    engine.dispose()
    return names, addresses, shown


@pytest.mark.parametrize("locale", ["zh-Hans", "zh-Hant"])
def test_demo_names_and_addresses_are_in_the_script_of_its_locale(sqlite_template, tmp_path, locale):
    names, addresses, shown = _seeded(sqlite_template, tmp_path, locale)
    assert len(names) >= 30
    people = names + addresses
    if locale == "zh-Hans":
        assert all(hanzi.simplified(p) == p for p in people), [p for p in people if hanzi.simplified(p) != p]
        assert shown == {"programme": "星享会员", "tiers": ["普通", "银卡", "金卡", "黑金"], "oven": "电烤箱"}
    else:
        # Taiwanese names: most carry a character whose simplified form differs (陳 → 陈); none is Simplified-only
        assert sum(hanzi.simplified(p) != p for p in names) >= len(names) // 3
        assert all(hanzi.traditional(hanzi.simplified(p)) == p or hanzi.simplified(p) != p for p in people)
        assert shown == {"programme": "星享會員", "tiers": ["普通", "銀卡", "金卡", "黑金"], "oven": "電烤箱"}


def test_demo_refuses_an_unknown_locale(tmp_path):
    done = jifen(tmp_path / "x.db", "demo", "--locale", "fr")
    assert done.returncode == 2 and "locale is zh-Hans or zh-Hant" in done.stderr
    assert not (tmp_path / "x.db").exists() or (tmp_path / "x.db").stat().st_size == 0
