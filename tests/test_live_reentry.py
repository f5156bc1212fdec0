"""REENTRY_DAYS through the live path: a stock whose last trade ended at its take-profit is bought again, with a
server-side bracket on the fake Alpaca server, while it trades above its trend line; without the setting it is
not. The ledger's memory of take-profits is what the strategy hands its snapshot (tests/test_entries.py has the
rule itself)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import NY, UNIVERSE, LiveBot, accepted_orders, unprotected_positions

pytestmark = pytest.mark.usefixtures("close_bots")


@pytest.mark.parametrize("reentry_days, expect_reentry", [("10", True), ("0", False)])
def test_a_take_profit_lets_its_stock_be_bought_again_while_the_trend_holds(day_bars, tmp_path, reentry_days,
                                                                             expect_reentry):
    srv = FakeAlpaca(day_bars, now=pd.Timestamp("2024-03-05 09:31", tz=NY)).start()
    try:
        bot = LiveBot(srv, tmp_path / "journal.sqlite",
                      env={"REENTRY_DAYS": reentry_days, "BREADTH_ENTRY_GATE": "false", "MAX_POSITIONS": "20"})
        yesterday = srv.now - pd.Timedelta(days=1)  # srv.now: a datetime
        for sym in UNIVERSE:  # as if each had just closed at its take-profit (the ledger's record of the fill)
            bot.strategy.ledger.last_exit[sym] = ("take_profit", yesterday)
        bot.iterate()
        again = [line for line in bot.lines("entry") if line.startswith("re-entry after a take-profit")]
        bought = {o["symbol"] for o in accepted_orders(srv) if o.get("side") == "buy"
                  and o.get("order_class") == "bracket"}
        if not expect_reentry:
            assert not again
            return
        assert again, "at least one universe stock trades above its 200-bar line in the scripted market"
        reentered = {line.split(": buy")[0] for line in again}
        symbols = {r["symbol"] for r in bot.strategy.decision_log.records
                   if r["step"] == "entry" and r["reason"].startswith("re-entry")}
        assert len(symbols) == len(again) and symbols <= bought, f"each re-entry went out as a bracket: {reentered}"
        srv.advance(pd.Timedelta(minutes=5))
        assert unprotected_positions(srv) == []
    finally:
        srv.stop()
