"""The races a real Alpaca account exposes, each reproduced on the hostile fake server (asynchronous fills and
cancels, shorting on) against the live bot as it runs: a leg that fills while the bot cancels it, a follow-up
order that fails after a sale went out, a client order id whose order has died, a cancel that is not confirmed
in time, a halt that cancels a partly filled entry, an iteration that runs past the close.

Each test names the defect of issue 9 it reproduces; each fails on the code before its fix.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import (
    NY,
    LiveBot,
    duplicate_orders,
    order_rejections,
    scripted_market,
    unprotected_positions,
)
from trading.execution.executor import next_client_id
from trading.order_ids import OrderIds, floor_time
from trading.orders import OcoOrder

OPEN = "2024-03-05 09:31"
GATE_OFF = {"BREADTH_ENTRY_GATE": "false"}
pytestmark = pytest.mark.usefixtures("close_bots")


@pytest.fixture(scope="module")
def calm_bars() -> dict[str, pd.DataFrame]:
    return scripted_market(shapes=())  # a gentle random walk: no hedge, no oversold entry


def server(bars, now: str = OPEN) -> FakeAlpaca:
    return FakeAlpaca(bars, now=pd.Timestamp(now, tz=NY)).start()


def seed(srv: FakeAlpaca, symbol: str, weight: float, entry_factor: float = 0.8, oco: bool = False) -> int:
    """A position bought before the bot existed, worth `weight` of the account, optionally under an OCO placed
    by hand (stop 30% below, target 50% above)."""
    px = srv.price(symbol)
    qty = int(weight / (1 - weight) * 100_000 / px)
    srv.add_position(symbol, qty, round(px * entry_factor, 2))
    if oco:
        with srv.engine.lock:
            status, body = srv.engine.submit({
                "symbol": symbol, "qty": str(qty), "side": "sell", "type": "limit", "order_class": "oco",
                "time_in_force": "gtc", "take_profit": {"limit_price": f"{px * 1.5:.2f}"},
                "stop_loss": {"stop_price": f"{px * 0.7:.2f}"}, "client_order_id": f"by-hand-{symbol}"})
        assert status == 200, body
        srv.settle()
    return qty


def sells(srv: FakeAlpaca, symbol: str, order_type: str = "market") -> list[dict]:
    return [o for o in srv.orders.values() if o["symbol"] == symbol and o["side"] == "sell"
            and o["type"] == order_type and o.get("order_class") in ("simple", "", None)]


def shorts(srv: FakeAlpaca) -> dict[str, float]:
    return {s: float(p["qty"]) for s, p in srv.positions().items() if float(p["qty"]) < 0}


class OnRequest:
    """Wraps a bot's HTTP sessions: calls `action(method, path, phase)` before ('send') and after ('sent') each
    request, so a test can inject a fault at an exact point of an iteration."""

    def __init__(self, action) -> None:
        self.action = action

    def __call__(self, session) -> None:
        plain = session.request

        def request(method, url, **kw):
            path = "/" + url.split("/", 3)[-1].split("?")[0]
            self.action(method.upper(), path, "send")
            answer = plain(method, url, **kw)
            self.action(method.upper(), path, "sent")
            return answer

        session.request = request


# ---------------------------------------------------------------------------------------------- defect 1
@pytest.mark.parametrize("race", ["fill_before_cancel", "fill_after_cancel"])
def test_a_leg_that_fills_while_the_bot_cancels_it_never_turns_the_trim_into_a_short(day_bars, tmp_path, race):
    """Defect 1: the trim sold the quantity it read before cancelling; the OCO leg filled first (before the
    DELETE arrived, or while it was pending), so the sale went into a flat position: an unprotected short."""
    srv = server(day_bars)
    try:
        seed(srv, "XOM", 0.25, oco=True)  # 25% of the account under a hand-placed OCO: the bot trims it
        srv.faults.add(race, symbol="XOM")
        bot = LiveBot(srv, tmp_path / "journal.sqlite")
        bot.iterate()
        srv.advance(pd.Timedelta(minutes=1))
        assert shorts(srv) == {}, "a long-only bot opened a short"
        assert "XOM" not in srv.positions(), "the leg's fill sold the whole position"
        assert sells(srv, "XOM") == [], "no sale into a flat position"
        assert any("XOM: nothing left to sell: the position is flat" in line for line in bot.lines())
        assert [r for r in order_rejections(srv) if r["method"] == "POST"] == []
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------- defect 3
def fail_nth_post(srv: FakeAlpaca, n: int):
    """Arms a 504 (answered without processing) on the n-th order POST after `arm()`."""
    state = {"armed": False, "posts": 0}

    def action(method, path, phase):
        if state["armed"] and phase == "send" and method == "POST" and path == "/v2/orders":
            state["posts"] += 1
            if state["posts"] == n:
                srv.faults.add("504", method="POST", path="/v2/orders")

    hook = OnRequest(action)
    hook.arm = lambda: state.update(armed=True, posts=0)
    return hook


def test_a_trim_whose_reprotecting_oco_fails_protects_what_the_broker_still_holds(day_bars, tmp_path):
    """Defect 3: the sale filled, the follow-up OCO failed (504), and the re-protection asked for the pre-sale
    quantity: Alpaca refused it (insufficient qty) and the remaining shares stayed without a stop."""
    srv = server(day_bars)
    try:
        qty = seed(srv, "XOM", 0.25)  # unprotected and oversized: the trim sells the excess, then an OCO
        hook = fail_nth_post(srv, 2)
        bot = LiveBot(srv, tmp_path / "journal.sqlite", wrap_session=hook)
        hook.arm()
        bot.iterate()
        srv.advance(pd.Timedelta(minutes=1))
        (sale,) = sells(srv, "XOM")
        assert sale["status"] == "filled" and 0 < float(sale["qty"]) < qty
        held = float(srv.positions()["XOM"]["qty"])
        assert held == qty - float(sale["qty"])
        assert unprotected_positions(srv) == []
        assert [r for r in order_rejections(srv) if r["method"] == "POST"] == [], "no OCO for shares already sold"
        assert any("re-protect after a failed or changed order" in line for line in bot.lines("protect"))
    finally:
        srv.stop()


def test_a_partial_whose_oco_fails_is_done_once_its_sale_went_out(calm_bars, tmp_path):
    """Defect 3: the partial's intent counted as failed, so `partial_done` was never set and the next hour sold
    half of the rest again (and the rest had no stop meanwhile)."""
    srv = server(calm_bars)
    try:
        qty = seed(srv, "JPM", 0.10, entry_factor=1 / 1.04)  # +4% on a 5% stop: +0.8R, above PARTIAL_AT_R
        hook = fail_nth_post(srv, 2)
        bot = LiveBot(srv, tmp_path / "journal.sqlite", env={"PARTIAL_AT_R": "0.5"}, wrap_session=hook)
        bot.iterate()  # 09:31: protect (the trade is adopted with its levels)
        assert unprotected_positions(srv) == []
        srv.advance(pd.Timedelta(hours=1))
        hook.arm()
        bot.iterate()  # 10:31: partial: cancel the OCO, sell half, OCO on the rest (this one fails)
        srv.advance(pd.Timedelta(minutes=1))
        assert unprotected_positions(srv) == []
        for _ in range(2):
            srv.advance(pd.Timedelta(hours=1))
            bot.iterate()
        partials = [o for o in sells(srv, "JPM") if "-partial-" in o["client_order_id"]]
        assert len(partials) == 1 and float(partials[0]["qty"]) == qty // 2, "half is sold once, not every hour"
        assert bot.strategy.ledger.open_trades()["JPM"].partial_done
        assert unprotected_positions(srv) == [] and shorts(srv) == {}
        assert [r for r in order_rejections(srv) if r["method"] == "POST"] == []
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------- defect 4
def test_an_id_whose_order_has_died_gets_the_next_id_and_the_position_its_protection(day_bars, tmp_path):
    """Defect 4: after a restart within the hour, the re-planned OCO's id belonged to an order since cancelled;
    'already sent earlier' was logged and the position stayed without protection."""
    srv = server(day_bars)
    try:
        seed(srv, "JPM", 0.10, entry_factor=0.98)
        cid = OrderIds("combined", floor_time(srv.now, 60))("JPM", "protect")
        with srv.engine.lock:  # the first run's OCO, cancelled since (by hand, or by a later step)
            status, body = srv.engine.submit({
                "symbol": "JPM", "qty": "1", "side": "sell", "type": "limit", "order_class": "oco",
                "time_in_force": "gtc", "take_profit": {"limit_price": "500"}, "stop_loss": {"stop_price": "50"},
                "client_order_id": cid})
            assert status == 200
            srv.engine.cancel(body["id"])
        srv.settle()
        assert srv.orders[body["id"]]["status"] == "canceled"
        bot = LiveBot(srv, tmp_path / "journal.sqlite")
        bot.iterate()
        srv.settle()
        assert unprotected_positions(srv) == []
        live = [o for o in srv.orders.values() if o["client_order_id"] == next_client_id(cid)]
        assert len(live) == 1 and live[0]["status"] == "new" and live[0]["order_class"] == "oco"
        assert not any("already sent earlier" in line for line in bot.lines())
        restarted = LiveBot(srv, tmp_path / "journal.sqlite")  # a second restart in the same hour
        restarted.iterate()
        assert len([o for o in srv.orders.values() if o["symbol"] == "JPM" and o.get("order_class") == "oco"
                    and o["status"] == "new"]) == 1, "protected once, not twice"
    finally:
        srv.stop()


def test_alpacas_unique_id_answer_counts_as_sent_only_while_that_order_lives(day_bars, tmp_path):
    """'client_order_id must be unique': found alive (or filled) it is the order already sent; found dead it is
    not, and the executor sends the order again under the next derived id."""
    srv = server(day_bars)
    try:
        seed(srv, "JPM", 0.10)
        bot = LiveBot(srv, tmp_path / "journal.sqlite")
        px = srv.price("JPM")
        oco = OcoOrder("JPM", 5, _tick(px * 1.2), _tick(px * 0.8), "combined-JPM-protect-20240305T0900-0123456789")
        first = bot.strategy.venue.submit(oco, "protect")
        assert first.ok and first.note == ""
        again = bot.strategy.venue.submit(oco, "protect")
        assert again.ok and again.broker_id == first.broker_id
        assert again.note.startswith("already sent earlier; found by client order id")
        assert [r["response"]["message"] for r in srv.rejections] == ["client_order_id must be unique"]
        with srv.engine.lock:
            srv.engine.cancel(first.broker_id)
        srv.settle()
        dead = bot.strategy.venue.submit(oco, "protect")
        assert not dead.ok and dead.status == "dead-duplicate"
        snap = bot.strategy.venue.snapshot(srv.now)
        from trading.intents import Intent, IntentKind

        sent = bot.strategy.executor.submit(oco, Intent(IntentKind.PROTECT, "JPM", (oco,)), snap)
        assert sent.ok
        assert srv.orders[sent.broker_id]["client_order_id"] == next_client_id(oco.client_order_id)
        assert bot.journal.order_by_client_id(next_client_id(oco.client_order_id))["broker_order_id"] == sent.broker_id
    finally:
        srv.stop()


def _tick(x: float):
    from trading.orders import to_tick

    return to_tick(x)


def test_client_order_ids_repeat_within_the_hour_and_change_in_the_next_through_the_strategy(day_bars, tmp_path):
    """Three runs of the bot (restarts) deciding the same trim: at 09:31 and 09:59 the same id (Alpaca refuses
    a second copy), at 10:01 a new one (a new decision)."""
    srv = server(day_bars)
    try:
        seed(srv, "XOM", 0.25)
        journal = tmp_path / "journal.sqlite"
        ids = {}
        for when in ("09:31", "09:59", "10:01"):
            srv.set_now(pd.Timestamp(f"2024-03-05 {when}", tz=NY))
            bot = LiveBot(srv, journal, dry_run=True)
            bot.iterate()
            sent = [line for line in bot.lines() if line.startswith("DRY RUN would send") and "'XOM'" in line]
            ids[when] = {line.split("'client_order_id': '")[1].split("'")[0] for line in sent}
            bot.close()
        assert len(ids["09:31"]) == 2  # the sale and the re-protecting OCO
        assert ids["09:59"] == ids["09:31"]
        assert ids["10:01"].isdisjoint(ids["09:31"])
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------- verify items
def test_a_cancel_confirmed_after_the_wait_is_protected_in_the_same_iteration(day_bars, tmp_path):
    """A cancel not confirmed within the bot's timeout used to leave the legs cancelling with nothing to replace
    them until the next iteration, an hour later."""
    srv = server(day_bars)
    try:
        seed(srv, "XOM", 0.25, oco=True)
        stuck = srv.faults.add("cancel_never_confirmed", symbol="XOM")
        reads = {"n": 0}

        def action(method, path, phase):  # Alpaca confirms once the bot has given up waiting the first time
            if method == "GET" and path == "/v2/positions/XOM" and phase == "sent":
                reads["n"] += 1
                if reads["n"] == 1:
                    srv.faults.remove(stuck)

        bot = LiveBot(srv, tmp_path / "journal.sqlite", wrap_session=OnRequest(action))
        bot.strategy.venue.cancel_wait_seconds = 0.3
        bot.iterate()
        srv.settle()
        assert unprotected_positions(srv) == [], "protected before the iteration ended"
        assert sells(srv, "XOM") == [], "the trim waits for the next iteration"
        lines = " | ".join(bot.lines())
        assert "not confirmed cancelled" in lines and "re-protect once its cancel was confirmed" in lines
        assert shorts(srv) == {} and [r for r in order_rejections(srv) if r["method"] == "POST"] == []
    finally:
        srv.stop()


def test_a_halt_that_cancels_a_partly_filled_entry_protects_what_filled(day_bars, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tests.live_harness import env_for_subprocess

    srv = server(day_bars)
    try:
        srv.faults.add("partial_fill", symbol="JPM", fraction=0.5)
        journal = tmp_path / "journal.sqlite"
        bot = LiveBot(srv, journal, env=GATE_OFF)
        bot.iterate()  # 09:31: the JPM bracket entry; half of it fills, the rest waits for the next bar
        srv.advance(pd.Timedelta(minutes=1))
        held = float(srv.positions()["JPM"]["qty"])
        entry = next(o for o in srv.orders.values() if o["client_order_id"].startswith("combined-JPM-enter-"))
        assert entry["status"] == "partially_filled" and 0 < held < float(entry["qty"])
        root = Path(__file__).resolve().parents[1]
        r = subprocess.run([sys.executable, str(root / "live_trader.py"), "halt", "--journal", str(journal)],
                           env=env_for_subprocess(srv, tmp_path), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        srv.advance(pd.Timedelta(minutes=1))  # still inside the first bar: the rest has not filled
        bot.iterate()
        srv.settle()
        assert bot.strategy.risk.mode.name == "HALTED"
        assert srv.orders[entry["id"]]["status"] == "canceled"
        assert float(srv.positions()["JPM"]["qty"]) == held
        assert unprotected_positions(srv) == [], "the filled half is under a stop at once"
    finally:
        srv.stop()


def test_an_iteration_that_runs_past_the_close_sends_no_session_order_after_it(day_bars, tmp_path):
    srv = server(day_bars, now="2024-03-05 15:59")
    try:
        seed(srv, "XOM", 0.25)
        seed(srv, "MSFT", 0.25)
        state = {"moved": False}

        def action(method, path, phase):  # the first order takes the iteration past 16:00
            if phase == "sent" and method == "POST" and path == "/v2/orders" and not state["moved"]:
                state["moved"] = True
                srv.set_now(pd.Timestamp("2024-03-05 16:00:30", tz=NY))

        bot = LiveBot(srv, tmp_path / "journal.sqlite", wrap_session=OnRequest(action))
        bot.iterate()
        close = pd.Timestamp("2024-03-05 16:00", tz=NY)
        late = [o for o in srv.orders.values() if pd.Timestamp(o["created_at"]) >= close and not o.get("replaces")]
        assert late and {o.get("order_class") for o in late} == {"oco"}, "only GTC protection after the close"
        assert any("the session closed at 16:00 while this iteration ran" in line for line in bot.lines())
        srv.settle()
        assert unprotected_positions(srv) == [] and shorts(srv) == {}
    finally:
        srv.stop()


def test_the_duplicate_detector_compares_order_slots_not_id_stamps(day_bars, tmp_path):
    """A planted bug that stamps ids with the minute instead of the slot sends a second order after a restart in
    the same hour; the detector must see it although the two ids carry different stamps."""
    srv = server(day_bars)
    try:
        with srv.engine.lock:
            for minute in ("0931", "0945"):
                status, _ = srv.engine.submit({
                    "symbol": "JPM", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
                    "client_order_id": f"combined-JPM-exit-20240305T{minute}-abc{minute}"})
                assert status == 200
        assert duplicate_orders(srv), "two live orders for one (symbol, intent) in one hour"
    finally:
        srv.stop()
