"""A small demo programme (seeded through the normal path, as `jifen demo` does) on a copy of the SQLite
template, with an admin console user and an in-app message: the pages the language tests walk have
every kind of row to show."""

from __future__ import annotations

import shutil

from sqlalchemy import select, update

from jifen.api import create_app
from jifen.db import run_in_transaction, utcnow
from jifen.demo import seed_demo
from jifen.mall.models import Redemption
from jifen.members.models import Member
from jifen.notify.models import InboxItem
from jifen.programs.service import get_program
from jifen.security import member_tokens
from jifen.security.users import ConsoleUser
from tests.support.console_login import add_user


def demo_app(template, folder, locale: str = "zh-Hans"):
    path = folder / "demo.db"
    shutil.copy(template, path)
    app = create_app(f"sqlite:///{path}")
    seed_demo(app.state.sessions, members=40, days=20, locale=locale)
    add_user(app, "admin", "boss")

    member_id = shopper(app)

    def message(s):
        s.execute(update(ConsoleUser).values(display_name="王经理"))
        member = s.scalar(select(Member).where(Member.member_id == member_id))
        s.add(InboxItem(member_pk=member.id, delivery_id=1, topic="points.expiring", title="积分即将过期",
                        body="您的积分即将过期"))

    run_in_transaction(app.state.sessions, message)
    return app


def shopper(app) -> str:
    """A demo member who has redeemed something (history, orders and coupons to show)."""
    with app.state.sessions() as s:
        return s.scalar(select(Member.member_id).join(Redemption, Redemption.member_pk == Member.id)
                        .order_by(Member.id).limit(1))


def member_token(app, member_id: str) -> str:
    with app.state.sessions() as s:
        return member_tokens.issue(get_program(s, "default").id, member_id, utcnow())["token"]
