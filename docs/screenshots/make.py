"""Screenshots of the member centre (375 px) and the main console pages, in 简体中文, 繁體中文 and English, over a
freshly seeded demo (zh-Hans demo for zh-Hans and English, zh-Hant demo for zh-Hant), in Debian's Chromium:

    PYTHONPATH=src .venv/bin/python docs/screenshots/make.py      # writes docs/screenshots/<lang>/*.png
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
WORK = Path(tempfile.mkdtemp(prefix="jifen-shots-"))
os.environ.setdefault("JIFEN_DATA_KEY_FILE", str(WORK / "data.key"))

import uvicorn  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402

from jifen.api import create_app  # noqa: E402
from jifen.db import run_in_transaction, utcnow  # noqa: E402
from jifen.demo import seed_demo  # noqa: E402
from jifen.mall.models import Redemption  # noqa: E402
from jifen.members.models import Member  # noqa: E402
from jifen.programs.service import get_program  # noqa: E402
from jifen.security import member_tokens  # noqa: E402
from jifen.security.users import create_user  # noqa: E402
from jifen.setup import init_database  # noqa: E402

PASSWORD = "screenshots-only-1"
CENTRE = [("m-home", "/m/"), ("m-mall", "/m/mall"), ("m-confirm", "/m/mall/lunch"), ("m-history", "/m/history"),
          ("m-check-in", "/m/check-in")]
CONSOLE = [("console-overview", "/console"), ("console-member", "/console/members/{member}"),
           ("console-risk", "/console/risk"), ("console-analytics-rfm", "/console/analytics/rfm"),
           ("console-analytics-clv", "/console/analytics/clv?check=1"),
           ("console-analytics-cohorts", "/console/analytics/cohorts"),
           ("console-analytics-economy", "/console/analytics/economy"), ("console-engagement", "/console/engagement")]


def demo(locale: str):
    url = f"sqlite:///{WORK / locale}.db"
    init_database(url)
    app = create_app(url)
    seed_demo(app.state.sessions, members=300, days=60, locale=locale)
    run_in_transaction(app.state.sessions, lambda s: create_user(s, get_program(s, "default"), "boss", "admin",
                                                                 PASSWORD, display_name="王经理"))
    with app.state.sessions() as s:
        member = s.scalar(select(Member.member_id).join(Redemption, Redemption.member_pk == Member.id)
                          .order_by(Member.id).limit(1))
        token = member_tokens.issue(get_program(s, "default").id, member, utcnow())["token"]
    return app, member, token


def shoot(app, member: str, token: str, languages: list[str]) -> None:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = "http://127.0.0.1:%d" % server.servers[0].sockets[0].getsockname()[1]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context()
            phone, desk = context.new_page(), context.new_page()
            phone.set_viewport_size({"width": 375, "height": 812})
            desk.set_viewport_size({"width": 1280, "height": 900})
            phone.goto(f"{base}/m/enter?token={token}")
            desk.goto(f"{base}/console/login")
            desk.fill("input[name=username]", "boss")
            desk.fill("input[name=password]", PASSWORD)
            desk.click("form.login button")
            desk.wait_for_url(f"{base}/console")
            for lang in languages:
                folder = HERE / lang
                folder.mkdir(exist_ok=True)
                phone.goto(f"{base}/m/?lang={lang}")
                for name, path in CENTRE:
                    phone.goto(base + path)
                    phone.screenshot(path=folder / f"{name}.png")
                for name, path in CONSOLE:
                    desk.goto(base + path.format(member=member))
                    desk.screenshot(path=folder / f"{name}.png")
                print(f"{lang}: {len(CENTRE) + len(CONSOLE)} screenshots in {folder}", file=sys.stderr)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    shoot(*demo("zh-Hans"), ["zh-Hans", "en"])
    shoot(*demo("zh-Hant"), ["zh-Hant"])
