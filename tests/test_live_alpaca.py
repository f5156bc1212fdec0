"""The live path, proven offline: the bot as it runs live, through Lumibot's real Alpaca broker and the real
alpaca-py clients, against the fake Alpaca server (tests/fake_alpaca), which enforces Alpaca's order rules.

Nothing here mocks the broker, the SDK or Lumibot: the only fake is the server at the other end of the
socket. See tests/live_harness.py for the scripted market and the checks.
"""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import (
    NY,
    LiveBot,
    accepted_orders,
    duplicate_orders,
    journal_mismatches,
    order_rejections,
    run_day,
    scripted_market,
    unprotected_positions,
)

OPEN = "2024-03-05 09:31"  # a minute into the scripted day (Tuesday)
# the breadth gate holds new longs back while the bellwethers are overbought (the first hours of the scripted
# day); tests that need an entry in the busy first hour switch it off
GATE_OFF = {"BREADTH_ENTRY_GATE": "false"}
pytestmark = pytest.mark.usefixtures("close_bots")


def start_server(bars, now: str = OPEN, xom_weight: float = 0.25, **kw) -> FakeAlpaca:
    """The fake with $100k cash and, unless xom_weight=0, an unprotected XOM position bought before the bot
    existed, worth `xom_weight` of the account (a winner grown past the 15% cap)."""
    srv = FakeAlpaca(bars, now=pd.Timestamp(now, tz=NY), **kw).start()
    if xom_weight:
        px = srv.price("XOM")
        srv.add_position("XOM", int(xom_weight / (1 - xom_weight) * 100_000 / px), 80.0)
    return srv


@pytest.fixture
def srv(day_bars):
    s = start_server(day_bars)
    yield s
    s.stop()


def parents(srv: FakeAlpaca, intent: str) -> list[dict]:
    """The bot's orders for one intent (client ids are strategy-SYMBOL-intent-YYYYmmddTHHMM-hash)."""
    return [o for o in accepted_orders(srv) if o.get("client_order_id", "").startswith("combined-")
            and "-".join(o["client_order_id"].split("-")[2:-2]) == intent]


# ---------------------------------------------------------------------------------------------- a trading day
def test_scripted_day_enters_trims_hedges_and_unwinds_with_no_rejected_order(srv, tmp_path):
    bot = LiveBot(srv, tmp_path / "journal.sqlite")
    start = bot.lines("plan")
    assert any("reconciled with Alpaca: 1 position(s) (1 without a stop: XOM)" in line and "adopted XOM" in line
               for line in start)
    run_day(srv, bot, hours=7)

    (trim,) = parents(srv, "trim")
    assert (trim["symbol"], trim["side"], trim["type"], trim["status"]) == ("XOM", "sell", "market", "filled")
    (reprotect,) = parents(srv, "trim-oco")
    assert reprotect["symbol"] == "XOM" and reprotect["order_class"] == "oco" and reprotect["status"] == "new"
    (hedge,) = parents(srv, "hedge")
    assert hedge["order_class"] == "bracket" and hedge["symbol"] in ("SH", "SPXS", "SQQQ")
    assert hedge["status"] == "filled" and float(hedge["qty"]) == int(float(hedge["qty"]))
    (unwind,) = parents(srv, "unhedge")
    assert unwind["symbol"] == hedge["symbol"] and unwind["status"] == "filled"
    assert hedge["symbol"] not in srv.positions()
    (entry,) = parents(srv, "enter")
    assert (entry["symbol"], entry["order_class"], entry["time_in_force"]) == ("JPM", "bracket", "gtc")
    legs = [o for o in srv.orders.values() if o.get("legs") is None and o["symbol"] == "JPM" and o["side"] == "sell"]
    assert {o["type"] for o in legs} == {"limit", "stop"}
    # no new long while the bellwethers were overbought: JPM waited for breadth to normalise
    assert any(line.startswith("RSI") and "breadth 100% >= 60%" in line for line in bot.lines("entry"))
    assert entry["created_at"] >= unwind["created_at"] > hedge["created_at"]

    answer = json.loads(bot.journal.order_by_client_id(entry["client_order_id"])["response"])
    assert answer["id"] == entry["id"] and answer["order_class"] == "bracket" and len(answer["legs"]) == 2
    assert order_rejections(srv) == []  # not one request Alpaca's rules refuse, cancels included
    assert duplicate_orders(srv) == []
    assert unprotected_positions(srv) == []
    assert journal_mismatches(bot.journal, srv) == []
    closed = bot.journal.frame("closed_trades")
    assert set(closed["exit_reason"]) >= {"trim", "hedge_unwind"}


def test_market_data_is_one_bars_and_one_latest_trades_request_per_iteration(srv, tmp_path):
    bot = LiveBot(srv, tmp_path / "journal.sqlite")
    for _ in range(3):
        srv.clear_log()
        bot.iterate()
        data = [r for r in srv.requests if r["path"].startswith("/v2/stocks")]
        assert [r["path"] for r in data] == ["/v2/stocks/bars", "/v2/stocks/trades/latest"]
        symbols = data[0]["query"]["symbols"].split(",")
        assert {"AAPL", "JPM", "XOM", "SH", "SPXS", "SQQQ", "SPY"} <= set(symbols)
        assert data[1]["query"]["symbols"].split(",") == symbols
        assert data[0]["query"]["feed"] == "iex"
        reads = [r["path"] for r in srv.requests if r["method"] == "GET"]
        acted = any(r["method"] in ("POST", "PATCH", "DELETE") for r in srv.requests)
        # the bot's snapshot reads each once; Lumibot's executor re-reads account and positions for its own books;
        # after an iteration that sent orders, the status the API shows re-reads positions and orders once
        assert [reads.count(p) for p in ("/v2/clock", "/v2/account", "/v2/positions")] == [1, 2, 2 + acted]
        srv.advance(pd.Timedelta(hours=1))


def test_bar_window_is_fetched_in_full_once_then_only_from_the_last_bars_held(srv, tmp_path):
    from broker.live_bars import LiveBars

    bot = LiveBot(srv, tmp_path / "journal.sqlite")
    srv.clear_log()
    for _ in range(4):
        bot.iterate()
        srv.advance(pd.Timedelta(hours=1))
    srv.set_now(pd.Timestamp("2024-03-06 09:45", tz=NY))  # the next morning
    bot.iterate()
    bars = [r for r in srv.requests if r["path"] == "/v2/stocks/bars"]
    spans = [(pd.Timestamp(r["time"]) - pd.Timestamp(r["query"]["start"])) for r in bars]
    assert len(bars) == 5
    assert spans[0] > pd.Timedelta(days=60)  # the full window, once
    assert all(sp < pd.Timedelta(days=1) for sp in spans[1:4])  # then from the last bar held
    assert spans[4] < pd.Timedelta(days=2)  # the next morning: from a few bars back, to see re-adjusted history
    now = srv.now
    symbols = list(bot.strategy.venue.bars.frames)
    kept = bot.strategy.venue.bars.update(symbols, now)
    fresh = LiveBars(bot.gateway, pd.Timedelta(hours=1), bot.strategy.venue.history_bars).update(symbols, now)
    assert set(kept) == set(fresh) and len(kept["AAPL"]) > 250
    for sym in fresh:
        pd.testing.assert_frame_equal(kept[sym], fresh[sym])


def test_dry_run_decides_and_journals_the_exact_requests_but_sends_nothing(srv, tmp_path):
    bot = LiveBot(srv, tmp_path / "journal.sqlite", dry_run=True, env=GATE_OFF)
    srv.clear_log()
    bot.iterate()
    assert [r for r in srv.requests if r["method"] != "GET"] == []
    assert srv.orders == {}
    lines = bot.lines()
    sent = [line for line in lines if line.startswith("DRY RUN would send")]
    assert any("'order_class': 'bracket'" in line and "'symbol': 'JPM'" in line for line in sent)
    assert any("'symbol': 'XOM'" in line and "'side': 'sell'" in line for line in sent)
    orders = bot.journal.frame("orders")
    assert set(orders["status"]) == {"dry-run"} and {"JPM", "XOM"} <= set(orders["symbol"])
    assert '"take_profit"' in orders.loc[orders["symbol"] == "JPM", "request"].iloc[0]


def test_a_permanent_rejection_is_journaled_with_alpacas_message_and_not_retried(day_bars, tmp_path):
    srv = start_server(day_bars, xom_weight=0)
    try:
        srv.set_asset("JPM", tradable=False)
        bot = LiveBot(srv, tmp_path / "journal.sqlite", env=GATE_OFF)
        bot.iterate()
        posts = [r for r in srv.requests if r["method"] == "POST" and (r["body"] or {}).get("symbol") == "JPM"]
        assert len(posts) == 1 and posts[0]["status"] == 422
        row = bot.journal.order_by_client_id(posts[0]["body"]["client_order_id"])
        assert row["status"] == "rejected" and 'asset \\"JPM\\" is not tradable' in row["response"]
        assert any("rejected by Alpaca (422: asset \"JPM\" is not tradable)" in line for line in bot.lines())
    finally:
        srv.stop()


def test_restart_adopts_positions_and_orders_it_did_not_place_and_protects_them(day_bars, tmp_path):
    srv = start_server(day_bars, xom_weight=0)
    try:
        srv.add_position("MSFT", 10, 390.0)
        srv.add_position("JPM", 20, 150.0)
        stop = srv.engine.submit({"symbol": "JPM", "qty": "20", "side": "sell", "type": "stop", "stop_price": "120",
                                  "time_in_force": "gtc", "client_order_id": "by-hand-1"})[1]
        bot = LiveBot(srv, tmp_path / "journal.sqlite")
        start = " | ".join(bot.lines("plan"))
        assert "2 position(s) (1 without a stop: MSFT), 1 open order(s) (0 placed by this bot, 1 not)" in start
        assert "open sell stop order by-hand-1 was not placed by this bot (left as it is)" in start
        bot.iterate()
        assert unprotected_positions(srv) == []
        assert srv.orders[stop["id"]]["status"] == "new"  # the user's own stop is left alone
        (protect,) = parents(srv, "protect")
        assert protect["symbol"] == "MSFT" and protect["order_class"] == "oco" and protect["qty"] == "10"
        assert order_rejections(srv) == []
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------- kill and restart
class Killed(BaseException):
    """The process dies here (BaseException: no `except Exception` in the bot can swallow it)."""


def killer(at: int, after_sending: bool, writes_only: bool):
    """Wraps the clients' HTTP sessions: the bot dies at its `at`-th request of this run (or its `at`-th
    order write: POST, PATCH, DELETE), either before it leaves (never sent) or after the server handled it
    (sent, the answer lost with the process)."""
    count = [0]

    def wrap(session) -> None:
        plain = session.request

        def request(method, url, **kw):
            counted = not writes_only or method.upper() in ("POST", "PATCH", "DELETE")
            count[0] += counted
            if counted and count[0] == at and not after_sending:
                raise Killed(f"before {method} {url}")
            response = plain(method, url, **kw)
            if counted and count[0] == at:
                raise Killed(f"after {method} {url}")
            return response

        session.request = request

    return wrap


@pytest.mark.parametrize("seed", range(50))
def test_killed_mid_iteration_then_restarted_sends_no_duplicate_and_protects_everything(day_bars, tmp_path, seed):
    rng = random.Random(seed)
    srv = start_server(day_bars)
    try:
        journal = tmp_path / "journal.sqlite"
        # the busy first hour: ~20 requests, 6 of them writes (a trim with its OCO, a hedge, an entry, cancels)
        writes_only = rng.random() < 0.5
        kill = killer(rng.randint(1, 6 if writes_only else 24), rng.random() < 0.5, writes_only)
        try:  # killed while starting (reconciliation) or in one of its first two iterations
            bot = LiveBot(srv, journal, wrap_session=kill)
            for _ in range(2):
                bot.iterate()
                srv.advance(pd.Timedelta(minutes=rng.choice([1, 60])))
        except Killed:
            pass
        srv.advance(pd.Timedelta(minutes=rng.choice([0, 2, 30, 60])))  # restart in the same hour or a later one
        restarted = LiveBot(srv, journal)
        restarted.iterate()
        assert unprotected_positions(srv) == [], f"seed {seed}"
        assert duplicate_orders(srv) == [], f"seed {seed}"
        assert [r for r in order_rejections(srv) if r["method"] == "POST"] == [], f"seed {seed}"
        srv.advance(pd.Timedelta(hours=1))
        restarted.iterate()
        assert journal_mismatches(restarted.journal, srv) == [], f"seed {seed}"
        assert duplicate_orders(srv) == [] and unprotected_positions(srv) == []
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------- faults
FAULTS = [
    # (id, fault kind, fault arguments, what the bot must have done)
    ("429 on a read", "429", dict(method="GET", path="/v2/account", times=2), "retried"),
    ("500 on a submit", "500", dict(method="POST", path="/v2/orders"), "looked up, decided again"),
    ("503 for three iterations", "503", dict(method="GET", path="/v2/positions", times=10), "skipped"),
    ("504 on a submit", "504", dict(method="POST", path="/v2/orders"), "looked up, decided again"),
    ("timeout on a submit that lands late", "timeout", dict(method="POST", path="/v2/orders", seconds=2.5),
     "in doubt, then found"),
    ("timeout on the bars", "timeout", dict(method="GET", path="/v2/stocks/bars", seconds=2.5), "retried"),
    ("reset before a submit", "reset", dict(method="POST", path="/v2/orders"), "looked up, decided again"),
    ("reset after a submit", "reset", dict(method="POST", path="/v2/orders", after=True), "found"),
    ("accepted, response lost", "lost_response", dict(method="POST", path="/v2/orders", times=2), "found"),
    ("partial fill", "partial_fill", dict(fraction=0.3), "protected"),
    ("rejected stop leg", "reject_leg", {}, "orphan take-profit replaced by an OCO"),
    ("halted symbol", "halt_symbol", dict(symbol="JPM"), "no fill, no repeat"),
    ("stale data", "stale_data", dict(symbol="JPM", bars=3), "no entry"),
]


@pytest.mark.parametrize(("kind", "args", "expect"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_each_injected_fault_is_survived_without_duplicates_and_the_journal_matches(srv, tmp_path, kind, args,
                                                                                    expect, caplog):
    import time

    bot = LiveBot(srv, tmp_path / "journal.sqlite", env=GATE_OFF)  # the entry too, in the busy first hour
    fault = srv.faults.add(kind, **args)
    with caplog.at_level("WARNING", logger="trader"):
        for hour in range(4):
            bot.iterate()  # nothing escapes: a fault never stops the bot
            if kind == "timeout":
                time.sleep(0.6)  # the request the client gave up on completes at the server
            if hour == 1 and kind in ("halt_symbol", "stale_data"):
                srv.faults.remove(fault)
            srv.advance(pd.Timedelta(hours=1))
    assert duplicate_orders(srv) == []
    assert [r for r in order_rejections(srv) if r["method"] == "POST"] == []
    assert journal_mismatches(bot.journal, srv) == []
    assert unprotected_positions(srv) == []
    lines = " | ".join(bot.lines())
    orders = bot.journal.frame("orders")
    if expect == "retried":
        assert "broker unreachable, skipping" not in lines
        assert {"JPM", "XOM"} <= set(parents_symbols(srv, "enter") + parents_symbols(srv, "trim"))
    elif expect == "skipped":
        assert lines.count("broker unreachable, skipping this iteration") == 1  # once per incident
        assert "broker answering again after 2 skipped iteration(s)" in lines
        assert caplog.text.count("broker unreachable (") == 1 and caplog.text.count("broker reachable again") == 1
        assert parents_symbols(srv, "enter") == ["JPM"]  # it came back and traded
    elif expect == "looked up, decided again":
        assert "the next iteration looks it up again" in lines and "Alpaca has no such order (not sent)" in lines
        assert set(orders["status"]) >= {"not sent"}
    elif expect in ("found", "in doubt, then found"):
        assert "found by client order id" in lines or "had no answer from Alpaca; Alpaca has it" in lines
        assert "not sent" not in set(orders["status"])
    elif expect == "protected":
        pass  # the common checks above: every position under a stop, nothing rejected
    elif expect == "orphan take-profit replaced by an OCO":
        assert "(cancel 1 sell order(s) with no stop, which hold the shares)" in lines
    elif expect == "no fill, no repeat":
        assert len([o for o in parents(srv, "enter") if o["symbol"] == "JPM"]) == 1
    elif expect == "no entry":
        assert "stale_data" in lines and parents_symbols(srv, "enter") in ([], ["JPM"])
        first = [o for o in parents(srv, "enter") if o["symbol"] == "JPM"]
        assert not first or first[0]["created_at"] > "2024-03-05T15"  # only once the data was fresh again


def parents_symbols(srv: FakeAlpaca, intent: str) -> list[str]:
    return [o["symbol"] for o in parents(srv, intent)]


# ---------------------------------------------------------------------------------------------- sessions
def test_outside_the_session_only_day_limit_extended_orders_and_never_a_bracket(day_bars, tmp_path):
    srv = start_server(day_bars, now="2024-03-05 17:05")  # after the close, inside the after-hours session
    try:
        closed = LiveBot(srv, tmp_path / "closed.sqlite")
        srv.clear_log()
        closed.iterate()
        assert [r for r in srv.requests if r["method"] != "GET"] == []  # regular session only by default
        assert "market closed (Alpaca clock)" in " | ".join(closed.lines())

        bot = LiveBot(srv, tmp_path / "journal.sqlite", env={"ENABLE_EXTENDED_HOURS": "true"})
        bot.iterate()
        posts = [r["body"] for r in srv.requests if r["method"] == "POST"]
        assert posts, "the oversized XOM position is trimmed after hours"
        for body in posts:
            assert body.get("order_class") != "bracket"
            if body.get("order_class") in (None, "", "simple"):
                assert (body["type"], body["time_in_force"], body.get("extended_hours")) == ("limit", "day", True)
        trim = next(b for b in posts if b["client_order_id"].split("-")[2] == "trim")
        assert trim["symbol"] == "XOM" and trim["side"] == "sell"
        assert any(b.get("order_class") == "oco" and b["time_in_force"] == "gtc" for b in posts)  # stays protected
        assert "brackets are not allowed outside the regular session" in " | ".join(bot.lines("entry"))
        assert order_rejections(srv) == []
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------- connections
def test_soak_reuses_one_connection_per_api_so_the_socket_count_stays_flat(day_bars, tmp_path):
    import os
    import re
    import subprocess

    from tests.conftest import ROOT

    def established() -> int:
        out = subprocess.run(["bash", str(ROOT / "utils" / "monitor_sockets.sh"), "--pid", str(os.getpid())],
                             capture_output=True, text=True, check=True).stdout
        return int(re.search(r"ESTABLISHED (\d+)", out).group(1))

    # the fake's 200-a-minute limit is wall-clock; 41 iterations a few seconds apart are not how the bot runs
    srv = start_server(day_bars, rate_limit=None, data_rate_limit=None)
    try:
        bot = LiveBot(srv, tmp_path / "journal.sqlite")
        bot.iterate()
        at_start = established()
        for _ in range(40):  # two sessions and the night between, every 20 minutes
            srv.advance(pd.Timedelta(minutes=20))
            bot.iterate()
        assert established() == at_start == 4  # the bot's trading and data clients, and the fake's two ends
        assert srv.connections_accepted == 2
        assert order_rejections(srv) == [] and unprotected_positions(srv) == []
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------- human controls
def test_halt_keeps_protection_and_cancels_entries_then_flatten_closes_everything(srv, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.live_harness import env_for_subprocess

    journal = tmp_path / "journal.sqlite"
    bot = LiveBot(srv, journal, env=GATE_OFF)  # JPM is entered in the first hour, during the rally
    halt = srv.faults.add("halt_symbol", symbol="JPM")  # JPM's entry is accepted but cannot fill
    bot.iterate()
    (entry,) = parents(srv, "enter")
    assert srv.orders[entry["id"]]["status"] in ("new", "accepted")

    def command(name: str) -> None:
        r = subprocess.run([sys.executable, str(ROOT / "live_trader.py"), name, "--journal", str(journal)],
                           env=env_for_subprocess(srv, tmp_path), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr

    command("halt")
    srv.advance(pd.Timedelta(hours=1))
    bot.iterate()
    assert bot.strategy.risk.mode.name == "HALTED"
    assert srv.orders[entry["id"]]["status"] == "canceled"  # the open entry order is cancelled
    assert unprotected_positions(srv) == [] and set(srv.positions()) >= {"XOM"}  # protective legs stay
    sells_before = len([o for o in srv.orders.values() if o["side"] == "sell" and o["type"] == "market"])

    srv.faults.remove(halt)
    command("flatten")
    srv.advance(pd.Timedelta(hours=1))
    bot.iterate()
    srv.advance(pd.Timedelta(minutes=1))  # market orders fill after their POST answered, as on Alpaca
    assert srv.positions() == {}
    assert [o for o in srv.orders.values() if o["status"] in ("new", "held", "accepted")] == []
    assert len([o for o in srv.orders.values() if o["side"] == "sell" and o["type"] == "market"]) > sells_before
    srv.advance(pd.Timedelta(hours=1))
    bot.iterate()
    assert "flatten complete: no positions, no open orders" in " | ".join(bot.lines("risk"))
    assert bot.strategy.risk.mode.name == "HALTED" and not bot.strategy.risk.flatten_pending

    restarted = LiveBot(srv, journal, env=GATE_OFF)  # a restart while HALTED stays HALTED
    restarted.iterate()
    assert restarted.strategy.risk.mode.name == "HALTED" and [o["id"] for o in parents(srv, "enter")] == [entry["id"]]
    command("resume")
    srv.advance(pd.Timedelta(hours=1))
    restarted.iterate()
    assert restarted.strategy.risk.mode.name == "ACTIVE"
    assert order_rejections(srv) == [] and duplicate_orders(srv) == []


# ---------------------------------------------------------------------------------------------- backtest = live
# JPM slides into deep oversold before the scripted day, is bought at its open, rises ~6% (past +1R: the stop
# moves to breakeven), then falls 9% through it
AGREE = (("JPM", -16, 16, -0.012), ("JPM", 0, 3, 0.02), ("JPM", 3, 3, -0.03))


def test_the_backtest_and_the_live_bot_move_the_same_stop_to_the_same_price_and_fill_it_there(tmp_path):
    from backtest.runner import BacktestConfig, execute, prepare
    from trading.records.journal import Journal
    from trading.settings import Settings

    bars = scripted_market(shapes=AGREE, symbols=("JPM", "AAPL", "SPY", "QQQ"))
    folder = tmp_path / "csv"
    folder.mkdir()
    for sym, df in bars.items():
        df.to_csv(folder / f"{sym}.csv", index_label="datetime")
    common = {"UNIVERSE": "JPM", "BELLWETHERS": "AAPL", "NASDAQ_SYMBOLS": "AAPL"}

    # the fake fills at the bar without slippage: the backtest's fills are compared with its costs off
    settings = Settings.load(environ={**common, "BACKTEST_COSTS": "false"}, dotenv_path=None)
    day = pd.Timestamp("2024-03-05").date()
    prep = prepare(BacktestConfig(data=f"csv:{folder}", start=day, end=day + pd.Timedelta(days=1), book="cash",
                                  out_root=tmp_path / "reports", progress=False), settings)
    run = execute(prep)
    backtest = Journal(run.out_dir / "journal.sqlite").frame("orders")
    bt_moves = [json.loads(r)["stop_price"] for r in backtest.loc[backtest["order_type"] == "replace", "request"]]
    bt_fills = Journal(run.out_dir / "journal.sqlite").frame("fills")

    srv = FakeAlpaca(bars, now=pd.Timestamp(OPEN, tz=NY)).start()
    try:
        bot = LiveBot(srv, tmp_path / "live.sqlite", env=common)
        run_day(srv, bot, hours=7)
        live_moves = [r["body"]["stop_price"] for r in srv.requests if r["method"] == "PATCH"]
        live_fills = bot.journal.frame("fills")
        assert order_rejections(srv) == []
    finally:
        srv.stop()

    entry_bt = bt_fills[bt_fills["role"] == "entry"].iloc[0]
    entry_live = live_fills[live_fills["role"] == "entry"].iloc[0]
    assert (entry_bt["symbol"], entry_bt["qty"], entry_bt["price"]) == (entry_live["symbol"], entry_live["qty"],
                                                                        pytest.approx(entry_live["price"]))
    assert bt_moves and [float(x) for x in bt_moves] == [float(x) for x in live_moves]  # same stop, same price
    assert float(bt_moves[0]) == pytest.approx(entry_bt["price"] * 1.001, abs=0.011)  # breakeven: entry + 0.1%
    stop_bt = bt_fills[bt_fills["role"] == "stop"].iloc[0]
    stop_live = live_fills[live_fills["role"] == "stop"].iloc[0]
    assert stop_bt["price"] == pytest.approx(float(bt_moves[-1])) == pytest.approx(stop_live["price"])
    bt_entry = backtest[backtest["intent"] == "enter"].iloc[0]
    assert {leg["type"] for leg in json.loads(bt_entry["response"])["legs"]} == {"limit", "stop"}
    closed = Journal(run.out_dir / "journal.sqlite").frame("closed_trades")
    assert closed.loc[closed["symbol"] == "JPM", "exit_reason"].tolist() == ["breakeven"]


def test_a_feed_that_stalls_for_every_symbol_blocks_new_exposure_until_it_catches_up(day_bars, tmp_path):
    srv = start_server(day_bars, now="2024-03-05 12:31", xom_weight=0)
    try:
        stall = srv.faults.add("stale_data", bars=2)  # every symbol: the last two hourly bars never arrive
        bot = LiveBot(srv, tmp_path / "journal.sqlite", env=GATE_OFF)
        bot.iterate()
        lines = " | ".join(bot.lines())
        assert "the data feed's newest bar started 2024-03-05 09:30" in lines
        assert "denied by stale_data: the whole data feed is behind the clock" in lines
        assert [r for r in srv.requests if r["method"] == "POST"] == []
        srv.faults.remove(stall)
        srv.advance(pd.Timedelta(hours=1))
        bot.iterate()
        assert parents_symbols(srv, "enter") == ["JPM"]
    finally:
        srv.stop()
