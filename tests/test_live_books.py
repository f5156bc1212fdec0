"""Lumibot's own order books over a long run: they hold what is open at Alpaca and nothing else, so the
requests an iteration sends and the memory the bot holds do not grow with the orders it has ever sent.

Lumibot's trade stream is off (the bot reconciles fills itself), so nothing tells Lumibot an order finished
but its pre-iteration re-read. Before the fix, a filled bracket entry stayed "active" in its books for ever
(its copies of the legs never change) and, once out of Alpaca's last 100 orders, was fetched by id before
every iteration: 90 such requests an iteration after 300 iterations of a 500-symbol soak.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import NY, LiveBot, order_rejections, run_day, unprotected_positions

pytestmark = pytest.mark.usefixtures("close_bots")
OPEN_STATUSES = {"new", "accepted", "pending_new", "partially_filled", "held", "pending_cancel", "pending_replace"}


def test_lumibot_books_keep_only_open_orders_and_no_finished_order_is_fetched_again(day_bars, tmp_path):
    srv = FakeAlpaca(day_bars, now=pd.Timestamp("2024-03-05 09:31", tz=NY), rate_limit=None).start()
    try:
        srv.add_position("XOM", int(0.25 / 0.75 * 100_000 / srv.price("XOM")), 80.0)
        bot = LiveBot(srv, tmp_path / "journal.sqlite")
        run_day(srv, bot, hours=7)  # a trim, a hedge bracket filled and unwound, an entry bracket, re-protection
        bot.iterate()  # the re-read after the last hour's orders finished

        orders = srv.orders
        finished_brackets = [o for o in orders.values() if o.get("order_class") == "bracket"
                             and o["status"] == "filled" and o.get("client_order_id", "").startswith("combined-")]
        assert finished_brackets, "the scripted day fills at least one bracket entry (the hedge)"
        books = {str(o.identifier) for o in bot.strategy.broker.tracked_orders()}
        open_at_alpaca = {oid for oid, o in orders.items() if o["status"] in OPEN_STATUSES}
        assert books <= open_at_alpaca, f"finished orders still in Lumibot's books: {books - open_at_alpaca}"
        assert books, "the entry's legs are open and tracked"

        # 120 orders from the trader's phone push the bot's own out of Alpaca's last 100
        for i in range(120):
            status, placed = srv.dispatch("POST", "/v2/orders", {}, {
                "symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit", "time_in_force": "day",
                "limit_price": "1.00", "client_order_id": f"phone-{i}"})[:2]
            assert status == 200, placed
            assert srv.dispatch("DELETE", f"/v2/orders/{placed['id']}", {}, None)[0] == 204
        srv.advance(pd.Timedelta(minutes=5))
        for _ in range(3):
            srv.clear_log()
            bot.iterate()
            # Lumibot re-reads by id the open orders its list of the last 100 no longer shows (the legs still
            # working); a finished order is never among them
            by_id = {r["path"].rsplit("/", 1)[1] for r in srv.requests
                     if r["method"] == "GET" and r["path"].startswith("/v2/orders/")}
            open_at_alpaca = {oid for oid, o in srv.orders.items() if o["status"] in OPEN_STATUSES}
            assert by_id <= open_at_alpaca, f"finished orders fetched one by one: {by_id - open_at_alpaca}"
            srv.advance(pd.Timedelta(minutes=20))
        assert order_rejections(srv) == [] and unprotected_positions(srv) == []
    finally:
        srv.stop()
