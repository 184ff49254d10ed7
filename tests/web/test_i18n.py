"""Languages: one catalogue, Traditional derived from Simplified by OpenCC; a label for every code the
product shows; language tags and locale formats."""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal

import opencc
import pytest
from sqlalchemy import select

from jifen.engagement.tasks import PERIODS
from jifen.ledger import operations as ops
from jifen.ledger.models import JournalEntry
from jifen.mall.models import KINDS as REWARD_KINDS
from jifen.notify.service import CHANNELS as MESSAGE_CHANNELS
from jifen.programs.config import RISK_WEIGHTS
from jifen.risk import cases, restrictions, scan, scoring
from jifen.rules.schema import LAYERS
from jifen.security.service import ROLES
from jifen.web import i18n
from jifen.web.codes import CODES
from jifen.web.i18n import CATALOGUE, CODE_CATALOGUE, LANGUAGES, from_accept_language, language, translator
from jifen.web.notifications_page import STATUSES as DELIVERY_STATUSES
from tests.conftest import NOW, Ledger, m

S2T, T2S = opencc.OpenCC("s2twp"), opencc.OpenCC("t2s")


def _catalogues():
    yield "labels", CATALOGUE
    yield from CODE_CATALOGUE.items()


def test_traditional_is_opencc_of_the_simplified_catalogue():
    for name, catalogue in _catalogues():
        assert catalogue["zh-Hant"] == {k: S2T.convert(v) for k, v in catalogue["zh-Hans"].items()}, name
        # the source is Simplified through and through (an entry written in Traditional was normalised)
        assert catalogue["zh-Hans"] == {k: T2S.convert(v) for k, v in catalogue["zh-Hans"].items()}, name
        assert catalogue["zh-Hans"].keys() == catalogue["zh-Hant"].keys() == catalogue["en"].keys(), name
    assert CATALOGUE["zh-Hans"]["member_count"] == "会员数" and CATALOGUE["zh-Hant"]["member_count"] == "會員數"


def test_an_entry_written_in_traditional_is_read_as_simplified(monkeypatch):
    """Entries added in the older (zh, en) form with Traditional text still come out right in both scripts."""
    built = i18n._catalogue({"x": ("積分帳戶已凍結", "Frozen")})
    assert built["zh-Hans"]["x"] == "积分帐户已冻结" and built["zh-Hant"]["x"] == "積分帳戶已凍結"


def test_each_language_has_the_same_placeholders():
    fields = lambda text: sorted(f for _, f, _, _ in string.Formatter().parse(text) if f)  # noqa: E731
    for name, catalogue in _catalogues():
        for key, text in catalogue["en"].items():
            assert fields(catalogue["zh-Hans"][key]) == fields(catalogue["zh-Hant"][key]) == fields(text), (name, key)


def test_every_code_the_product_defines_has_a_label_in_each_language():
    t = {lang: translator(lang) for lang in LANGUAGES}
    defined = {
        "reward_kind": REWARD_KINDS, "layer": LAYERS, "channel": MESSAGE_CHANNELS + ("app", "h5", "mini_program", "pos",
                                                                                    "ecommerce"),
        "risk_reason": tuple(RISK_WEIGHTS) + tuple(scan.WEIGHTS), "case": cases.STATUSES,
        "restriction": restrictions.KINDS, "risk_action": scoring.ACTIONS, "role": ROLES, "period": tuple(PERIODS),
        "delivery": DELIVERY_STATUSES, "order": ("held", "review", "fulfilled", "cancelled", "refunded", "rejected"),
    }
    for kind, codes in defined.items():
        for code in codes:
            labels = {lang: t[lang].code(kind, code) for lang in LANGUAGES}
            assert code not in labels.values() and all(labels.values()), (kind, code, labels)


def test_every_entry_type_the_ledger_writes_has_a_label(sqlite_app):
    ledger = Ledger(sqlite_app.state.sessions)
    ledger.add_members("A", "B")
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "A"), 1000))
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "A"), 100, pending_until=NOW - dt.timedelta(seconds=1)))
    ledger.run(lambda sc, s: ops.spend(sc, m(sc, "A"), 50))
    ledger.run(lambda sc, s: ops.adjust(sc, m(sc, "A"), 5, reason="goodwill"))
    ledger.run(lambda sc, s: ops.transfer(sc, m(sc, "A"), m(sc, "B"), 20))
    ledger.run(lambda sc, s: ops.freeze(sc, m(sc, "A"), 10))
    ledger.run(lambda sc, s: ops.unfreeze(sc, m(sc, "A"), 10))
    held = ledger.run(lambda sc, s: ops.hold(sc, m(sc, "A"), 30))
    ledger.run(lambda sc, s: ops.capture(sc, held.id))
    again = ledger.run(lambda sc, s: ops.hold(sc, m(sc, "A"), 30))
    ledger.run(lambda sc, s: ops.release(sc, again.id))
    with sqlite_app.state.sessions() as s:
        written = set(s.scalars(select(JournalEntry.type).distinct()))
    assert {"award", "spend", "adjust", "transfer", "freeze", "unfreeze", "hold", "capture", "release"} <= written
    assert written <= CODES["entry"].keys(), written - CODES["entry"].keys()


@pytest.mark.parametrize(("tag", "expected"), [
    ("zh", "zh-Hans"), ("zh-CN", "zh-Hans"), ("zh_CN", "zh-Hans"), ("zh-Hans", "zh-Hans"), ("zh-TW", "zh-Hant"),
    ("zh-HK", "zh-Hant"), ("zh-Hant-HK", "zh-Hant"), ("en", "en"), ("en-GB", "en"), ("fr", None), ("", None),
    ("xx-zh", None)])
def test_language_tags(tag, expected):
    assert language(tag) == expected


def test_accept_language_takes_the_first_we_speak():
    assert from_accept_language("fr-FR,fr;q=0.9,zh-TW;q=0.8,en;q=0.5") == "zh-Hant"
    assert from_accept_language("de, en-US;q=0.7") == "en"
    assert from_accept_language("de") is None and from_accept_language(None) is None


def test_numbers_money_and_dates_per_locale():
    hans, hant, en = (translator(lang) for lang in LANGUAGES)
    assert [t.num(1234567) for t in (hans, hant, en)] == ["1,234,567"] * 3
    assert hans.money(Decimal("1234.5")) == hant.money("1234.5") == en.money(1234.5) == "¥1,234.50"
    assert hans.signed(-300) == "-300" and en.signed(1500) == "+1,500"
    day = dt.date(2027, 12, 31)
    assert (hans.date(day), hant.date(day), en.date(day)) == ("2027年12月31日", "2027年12月31日", "Dec 31, 2027")
    # a UTC instant is dated in the programme's timezone: 17:00 UTC on 31 December is 1 January in Shanghai
    late = dt.datetime(2027, 12, 31, 17, 0, tzinfo=dt.UTC)
    assert en.date(late) == "Jan 1, 2028" and hans.date(late.isoformat()) == "2028年1月1日"
    spaced = lambda text: " ".join(text.split())  # noqa: E731  (CLDR puts thin and narrow spaces in times)
    assert spaced(hant.datetime(late)) == "2028/1/1 凌晨1:00" and spaced(en.datetime(late)) == "1/1/28, 1:00 AM"
    assert (hans.month(day), en.month(day)) == ("2027年12月", "Dec 2027")
    assert translator("nonsense").lang == "zh-Hans"  # the default


def test_messages_to_members_are_in_their_script():
    from jifen.notify.templates import render

    change = {"old": "普通", "new": "银卡"}
    assert render("tier.changed", change, "zh") == ("会员等级变更", "您的会员等级已由普通变更为银卡。")
    # the template's words are converted; the programme's own names (data) are left as they are
    assert render("tier.changed", change, "zh-Hant") == ("會員等級變更", "您的會員等級已由普通變更為银卡。")
    assert render("tier.changed", change, "en")[0] == "Your tier changed"
