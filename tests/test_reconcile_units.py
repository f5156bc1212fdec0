"""Start-up reconciliation and orders in doubt (broker/reconcile.py), unit by unit.

The broker at the edge is a stand-in answering the gateway's reads from Alpaca-shaped objects; the journal,
ledger and fill watcher are the real ones.
"""

from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from broker.fills import FillWatcher
from broker.reconcile import reconcile, resolve_in_doubt
from trading.records.journal import Journal
from trading.records.ledger import Ledger

NY = ZoneInfo("America/New_York")
NOW = datetime(2024, 3, 5, 9, 31, tzinfo=NY)


def v(x):
    return SimpleNamespace(value=x)


def order(oid, cid, symbol="JPM", side="sell", type_="stop", status="new", legs=None, qty=10, stop=95.0,
          limit=None):
    return SimpleNamespace(id=oid, client_order_id=cid, symbol=symbol, side=v(side), type=v(type_),
                           status=v(status), legs=legs, qty=str(qty), filled_qty=None, filled_avg_price=None,
                           stop_price=stop, limit_price=limit, order_class=v("simple"), filled_at=None)


def position(symbol, qty, entry):
    return SimpleNamespace(symbol=symbol, qty=str(qty), avg_entry_price=str(entry))


class Gateway:
    def __init__(self, by_cid=None, open_=(), positions=(), prices=None, by_id=None):
        self.by_cid, self.open_, self.pos = dict(by_cid or {}), list(open_), list(positions)
        self.prices, self.by_id, self.asked = dict(prices or {}), dict(by_id or {}), []

    def order_by_client_id(self, cid):
        self.asked.append(cid)
        return self.by_cid.get(cid)

    def open_orders(self):
        return self.open_

    def positions(self):
        return self.pos

    def latest_prices(self, symbols):
        return {s: self.prices[s] for s in symbols if s in self.prices}

    def order(self, oid):
        return self.by_id[oid]


@pytest.fixture
def j():
    return Journal(":memory:")


def journal_order(j, cid, status, symbol="JPM"):
    j.record_order(NOW, client_order_id=cid, symbol=symbol, side="sell", order_type="market", order_class="simple",
                   qty=5, intent="trim", role="trim", status=status)


def test_orders_in_doubt_are_settled_by_their_client_id_and_nothing_else_is_looked_up(j):
    journal_order(j, "combined-JPM-trim-20240305T0900-aaa", "sending")
    journal_order(j, "combined-XOM-exit-20240305T0900-bbb", "unknown", "XOM")
    journal_order(j, "combined-MSFT-trim-20240305T0900-ccc", "accepted", "MSFT")
    found = order("id-1", "combined-JPM-trim-20240305T0900-aaa", type_="market", status="filled")
    gw = Gateway(by_cid={found.client_order_id: found})
    watcher = FillWatcher(j)
    lines = resolve_in_doubt(gw, j, watcher)
    assert gw.asked == ["combined-JPM-trim-20240305T0900-aaa", "combined-XOM-exit-20240305T0900-bbb"]
    assert lines == ["combined-JPM-trim-20240305T0900-aaa: was being sent when the bot stopped; Alpaca has it "
                     "(filled)",
                     "combined-XOM-exit-20240305T0900-bbb: had no answer from Alpaca; Alpaca has no such order "
                     "(not sent)"]
    jpm = j.order_by_client_id("combined-JPM-trim-20240305T0900-aaa")
    assert (jpm["broker_order_id"], jpm["status"]) == ("id-1", "filled")
    assert j.order_by_client_id("combined-XOM-exit-20240305T0900-bbb")["status"] == "not sent"
    assert watcher.watch["id-1"] == {"symbol": "JPM", "side": "sell", "role": "trim", "filled": 0.0, "avg": 0.0}
    assert resolve_in_doubt(gw, j, watcher) == [], "settled once"


def test_a_found_order_whose_id_is_not_the_bots_is_watched_with_an_unknown_role(j):
    journal_order(j, "by-hand-7", "unknown")
    watcher = FillWatcher(j)
    resolve_in_doubt(Gateway(by_cid={"by-hand-7": order("id-7", "by-hand-7")}), j, watcher)
    assert watcher.watch["id-7"]["role"] == "unknown"


def test_reconcile_counts_ours_and_foreign_orders_adopts_unknown_longs_and_names_the_unprotected(j):
    journal_order(j, "combined-JPM-protect-20240305T0900-aaa", "submitted")
    ours = order("o1", "combined-JPM-protect-20240305T0900-aaa", status="held")
    foreign = order("o2", "by-hand-1", symbol="MSFT", type_="limit", stop=None, limit=500.0)
    gw = Gateway(open_=[ours, foreign], positions=[position("JPM", 10, 100.0), position("MSFT", 5, 400.0),
                                                   position("TSLA", -7, 200.0), position("XOM", 0, 90.0)])
    ledger = Ledger(journal=j)
    lines = reconcile(gw, j, ledger, FillWatcher(j), NOW)
    assert lines[0] == ("reconciled with Alpaca: 3 position(s) (2 without a stop: MSFT, TSLA), 2 open order(s) "
                        "(1 placed by this bot, 1 not); adopted JPM, MSFT")
    assert "MSFT: open sell limit order by-hand-1 was not placed by this bot (left as it is)" in lines
    assert j.order_by_client_id(ours.client_order_id)["status"] == "held"
    trades = ledger.open_trades()
    assert set(trades) == {"JPM", "MSFT"}, "a short is never adopted as a trade (step 1 buys it back)"
    assert (trades["JPM"].qty, trades["JPM"].price, trades["JPM"].kind, trades["JPM"].time) == (10, 100.0,
                                                                                                  "legacy", NOW)
    assert j.get_state("watch") is not None and set(j.get_state("watch")) == {"o1", "o2"}


def test_a_trade_the_journal_holds_but_alpaca_does_not_was_closed_while_away(j):
    ledger = Ledger(journal=j)
    ledger.open_lot("JPM", 10, 100.0, NOW, "entry", 95.0, 115.0)
    ledger.open_lot("XOM", 4, 50.0, NOW, "entry", 47.5, 57.5)
    lines = reconcile(Gateway(prices={"JPM": 96.0}), j, ledger, FillWatcher(j), NOW)
    assert lines[0] == ("reconciled with Alpaca: 0 position(s) (0 without a stop), 0 open order(s) (0 placed by "
                        "this bot, 0 not); closed while away: JPM, XOM")
    assert ledger.open_trades() == {}
    fills = {f.symbol: f for f in ledger.fills}
    assert (fills["JPM"].qty, fills["JPM"].price, fills["JPM"].side) == (10, 96.0, "sell")
    assert fills["XOM"].price == 50.0, "no price: closed at its entry price (no invented P&L)"
    assert fills["JPM"].order_id == "away-JPM" and fills["JPM"].time == NOW


def test_a_position_protected_by_a_resting_stop_leg_is_not_called_unprotected(j):
    leg = order("sl", "x-sl", type_="stop", status="held")
    parent = order("tp", "combined-JPM-protect-20240305T0900-aaa", type_="limit", stop=None, limit=120.0,
                   legs=[leg])
    lines = reconcile(Gateway(open_=[parent], positions=[position("JPM", 10, 100.0)]), j, Ledger(journal=j),
                      FillWatcher(j), NOW)
    assert lines[0].startswith("reconciled with Alpaca: 1 position(s) (0 without a stop), 1 open order(s)")


def test_reconcile_settles_doubt_records_downtime_fills_and_counts_every_order(j):
    journal_order(j, "combined-JPM-trim-20240305T0900-aaa", "sending")
    journal_order(j, "combined-AAPL-protect-20240305T0900-p1", "submitted", "AAPL")
    journal_order(j, "combined-MSFT-protect-20240305T0900-p2", "submitted", "MSFT")
    sent = order("id-1", "combined-JPM-trim-20240305T0900-aaa", type_="market", status="filled")
    sent.filled_qty, sent.filled_avg_price = "5", "101.0"
    ours = [order("o1", "combined-AAPL-protect-20240305T0900-p1", symbol="AAPL"),
            order("o2", "combined-MSFT-protect-20240305T0900-p2", symbol="MSFT")]
    part = order("o3", "by-hand-1", symbol="XOM", type_="limit", stop=None, limit=120.0, status="partially_filled")
    part.filled_qty, part.filled_avg_price = "2", "119.0"
    foreign = [part, order("o4", "by-hand-2", symbol="XOM", type_="stop")]
    watcher = FillWatcher(j)
    watcher.track("o3", "XOM", "sell", "unknown")  # watched before the stop: what filled since is a fill
    ledger = Ledger(journal=j)
    ledger.open_lot("JPM", 5, 90.0, NOW, "entry", 85.0, 110.0)
    ledger.open_lot("XOM", 2, 100.0, NOW, "legacy", 95.0, 130.0)
    gw = Gateway(by_cid={sent.client_order_id: sent}, open_=[*ours, *foreign], by_id={"id-1": sent},
                 positions=[position("AAPL", 1, 180.0), position("MSFT", 3, 400.0), position("XOM", 2, 100.0)])
    lines = reconcile(gw, j, ledger, watcher, NOW)
    assert "4 open order(s) (2 placed by this bot, 2 not)" in lines[0]
    assert "adopted AAPL, MSFT" in lines[0], "a single share is a position too"
    assert j.order_by_client_id("combined-JPM-trim-20240305T0900-aaa")["status"] == "filled"
    assert j.order_by_client_id("combined-AAPL-protect-20240305T0900-p1")["broker_order_id"] == "o1"
    assert j.order_by_client_id("combined-MSFT-protect-20240305T0900-p2")["broker_order_id"] == "o2"
    fills = {f.order_id: f for f in ledger.fills}
    assert (fills["id-1"].qty, fills["id-1"].price, fills["id-1"].role) == (5, 101.0, "trim")
    assert (fills["o3"].qty, fills["o3"].time) == (2, NOW), "a partial fill found at start is stamped now"
    assert "while the bot was down: JPM: sell 5 filled at 101.00 (trim)" in lines
    assert set(j.open_trades()) >= {"AAPL", "MSFT"}, "adopted trades are saved in the journal"


def test_a_trade_closed_while_away_is_recorded_with_an_unknown_exit(j):
    ledger = Ledger(journal=j)
    ledger.open_lot("JPM", 10, 100.0, NOW, "entry", 95.0, 115.0)
    reconcile(Gateway(prices={"JPM": 96.0}), j, ledger, FillWatcher(j), NOW)
    (fill,) = ledger.fills
    assert fill.role == "unknown"
    closed = j.frame("closed_trades")
    assert list(closed["exit_reason"]) == ["manual"] and list(j.frame("fills")["role"]) == ["unknown"]
