"""The live path: the bot as it runs live (tests/live_harness.py) against the fake Alpaca server, its alerts
through real apprise to a receiver on loopback. One trading day: an unprotected position found and
protected, an entry Alpaca refuses, the kill-switch file halting the bot, a broker outage and its end,
then the daily summary after the close, each arriving once, between "bot started" and "bot stopped"."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import NY, LiveBot
from tests.ops.receiver import Receiver

OPEN = "2024-03-05 09:31"
pytestmark = pytest.mark.usefixtures("close_bots")


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def srv(day_bars):
    s = FakeAlpaca(day_bars, now=pd.Timestamp(OPEN, tz=NY)).start()
    s.add_position("XOM", 100, 80.0)  # bought before the bot existed, no stop
    s.set_asset("JPM", tradable=False)  # the scripted day's entry is refused
    yield s
    s.stop()


def test_a_live_day_sends_each_event_once_to_the_receiver(srv, receiver, tmp_path):
    halt = tmp_path / "HALT"
    bot = LiveBot(srv, tmp_path / "journal.sqlite", env={
        "ALERT_URLS": receiver.url, "ALERT_LEVEL": "info", "KILL_SWITCH_FILE": str(halt),
        "BREADTH_ENTRY_GATE": "false", "ALPACA_API_SECRET": srv.secret})
    bot.iterate()  # 09:31: XOM protected, the JPM entry refused
    halt.write_text("stop")
    srv.advance(pd.Timedelta(hours=1))
    bot.iterate()  # 10:31: HALTED by the kill-switch file
    srv.faults.add("503", times=None)
    srv.advance(pd.Timedelta(hours=1))
    bot.iterate()  # 11:31: Alpaca answers 503 to everything
    srv.faults.clear()
    srv.advance(pd.Timedelta(hours=1))
    bot.iterate()  # 12:31: back
    srv.set_now(pd.Timestamp("2024-03-05 16:05", tz=NY))
    bot.iterate()  # after the close: the daily summary
    bot.iterate()  # and only once
    bot.strategy.alerts.stopped()  # what the launcher does when Lumibot's trader returns

    titles = receiver.titles()
    assert sorted(titles) == sorted([
        "[paper] Bot started", "[paper] Bot stopped", "[paper] Position unprotected: XOM",
        "[paper] Protection placed: XOM", "[paper] Order rejected: JPM", "[paper] HALTED",
        "[paper] Broker unreachable", "[paper] Broker back", "[paper] Daily summary"]), titles
    by = {m["title"].removeprefix("[paper] "): m for m in receiver.messages}
    assert 'rejected by Alpaca (422: asset "JPM" is not tradable)' in by["Order rejected: JPM"]["message"]
    assert f"kill_switch: kill-switch file {halt} exists; until resumed" in by["HALTED"]["message"]
    assert by["HALTED"]["type"] == "failure" and by["Broker unreachable"]["type"] == "failure"
    account = srv.engine.account_number
    masked = "*" * (len(account) - 4) + account[-4:]
    assert f"bot started: Alpaca PAPER account {masked} | equity $" in by["Bot started"]["message"]
    assert account not in " ".join(m["message"] for m in receiver.messages)
    summary = by["Daily summary"]["message"]
    assert summary.startswith("Daily summary Tue 2024-03-05\nEquity $")
    assert "XOM 100 sh @ 80.00 (legacy): stop " in summary and "risk HALTED" in summary
    assert srv.secret not in " ".join(m["message"] for m in receiver.messages)
    sent = bot.journal.frame("alerts")
    assert set(sent["status"]) == {"sent"} and len(sent) == len(titles)
