"""Live fills read back from the broker (broker/fills.py), unit by unit: every fill recorded once, with the
right role, quantity and price, including the fills that happen while the bot is down.

The broker at the edge is a stand-in that answers `order(id)` from a dict of Alpaca-shaped orders (the fields
alpaca-py's Order has); the journal and ledger are the real ones.
"""

from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from broker.fills import STATE_KEY, FillWatcher, leg_role
from trading.records.journal import Journal
from trading.records.ledger import Ledger

NY = ZoneInfo("America/New_York")
T0 = datetime(2024, 3, 5, 10, 30, tzinfo=NY)
T1 = datetime(2024, 3, 5, 11, 30, tzinfo=NY)


def order(oid, symbol="JPM", side="buy", type_="market", status="new", filled=0.0, avg=None, cid=None,
          legs=None, stop=None, limit=None, filled_at=None):
    return SimpleNamespace(id=oid, symbol=symbol, side=SimpleNamespace(value=side), type=SimpleNamespace(value=type_),
                           status=SimpleNamespace(value=status), filled_qty=str(filled) if filled else None,
                           filled_avg_price=str(avg) if avg is not None else None, client_order_id=cid or f"x-{oid}",
                           legs=legs, stop_price=stop, limit_price=limit, filled_at=filled_at)


class Broker:
    """The edge: Alpaca's GET /v2/orders/{id}, from a dict; records what was asked."""

    def __init__(self, **orders):
        self.orders, self.asked = dict(orders), []

    def order(self, oid):
        self.asked.append(oid)
        return self.orders[oid]


@pytest.fixture
def world():
    journal = Journal(":memory:")
    return SimpleNamespace(journal=journal, ledger=Ledger(journal=journal), watcher=FillWatcher(journal))


def test_leg_roles_come_from_the_leg_type():
    assert leg_role(order("a", type_="limit")) == "target"
    assert leg_role(order("b", type_="stop")) == "stop"
    assert leg_role(order("c", type_="stop_limit")) == "stop"


def test_an_entry_that_filled_between_iterations_opens_a_trade_with_its_bracket_levels(world):
    legs = [order("tp", side="sell", type_="limit", status="new", limit=115.0),
            order("sl", side="sell", type_="stop", status="held", stop=95.0)]
    entry = order("e1", status="filled", filled=10, avg=100.0, cid="combined-JPM-enter-20240305T0900-abc",
                  legs=legs, filled_at=T0)
    world.watcher.track("e1", "JPM", "buy", "entry")
    notes = world.watcher.sync(Broker(e1=entry), world.ledger, [], T1)
    assert notes == ["JPM: buy 10 filled at 100.00 (entry)"]
    lot = world.ledger.open_trades()["JPM"]
    assert (lot.qty, lot.price, lot.time, lot.kind) == (10, 100.0, T0, "entry")
    assert (lot.stop, lot.initial_stop, lot.target) == (95.0, 95.0, 115.0)
    assert set(world.watcher.watch) == {"tp", "sl"}, "the filled entry is done; its legs are watched now"
    assert world.watcher.watch["tp"]["role"] == "target" and world.watcher.watch["sl"]["role"] == "stop"
    assert world.journal.get_state(STATE_KEY) == world.watcher.watch, "the watch list survives a restart"


def test_a_partial_fill_is_recorded_once_and_the_rest_at_its_own_average(world):
    world.watcher.track("s1", "JPM", "sell", "trim")
    world.ledger.open_lot("JPM", 30, 90.0, T0, "entry", 85.0, 110.0)
    part = order("s1", side="sell", status="partially_filled", filled=10, avg=100.0)
    assert world.watcher.sync(Broker(), world.ledger, [part], T0) == ["JPM: sell 10 filled at 100.00 (trim)"]
    assert world.watcher.sync(Broker(), world.ledger, [part], T0) == [], "the same 10 shares are not counted twice"
    done = order("s1", side="sell", status="filled", filled=30, avg=101.0)  # 10 @ 100 then 20 @ 101.5
    assert world.watcher.sync(Broker(s1=done), world.ledger, [], T1) == ["JPM: sell 20 filled at 101.50 (trim)"]
    assert "s1" not in world.watcher.watch
    fills = world.journal.frame("fills")
    assert list(fills["qty"]) == [10, 20] and list(fills["price"]) == [100.0, 101.5]
    assert list(fills["role"]) == ["trim", "trim"]
    assert "JPM" not in world.ledger.open_trades()


def test_an_order_still_open_and_unfilled_is_kept_and_nothing_is_recorded(world):
    world.watcher.track("o1", "JPM", "sell", "protect")
    broker = Broker()
    assert world.watcher.sync(broker, world.ledger, [order("o1", side="sell", type_="limit")], T0) == []
    assert "o1" in world.watcher.watch and broker.asked == [], "an open order is read from the open list"
    assert world.journal.frame("fills").empty


@pytest.mark.parametrize("status", ["canceled", "expired", "rejected", "replaced", "done_for_day", "stopped",
                                    "suspended"])
def test_a_terminal_order_without_a_fill_is_dropped_from_the_watch(world, status):
    world.watcher.track("o1", "JPM", "sell", "protect")
    assert world.watcher.sync(Broker(o1=order("o1", status=status)), world.ledger, [], T0) == []
    assert world.watcher.watch == {}


def test_open_orders_found_are_watched_from_what_already_filled_with_their_roles(world):
    legs = [order("tp", side="sell", type_="limit"), order("sl", side="sell", type_="stop", status="held")]
    found = [order("e1", status="partially_filled", filled=4, avg=50.0, legs=legs,
                   cid="combined-JPM-enter-20240305T0900-abc"),
             order("h1", symbol="SH", side="sell", cid="someone-else"),
             order("b1", symbol="XOM", cid="by-hand")]
    world.watcher.track("sl", "JPM", "sell", "custom")  # already watched: kept as it is
    world.watcher.track_open(found)
    w = world.watcher.watch
    assert w["e1"] == {"symbol": "JPM", "side": "buy", "role": "entry", "filled": 4.0, "avg": 50.0}
    assert w["tp"]["role"] == "target" and w["sl"]["role"] == "custom"
    assert w["h1"]["role"] == "unknown" and w["b1"]["role"] == "entry"
    assert w["h1"]["filled"] == 0.0 and w["h1"]["avg"] == 0.0
    # what filled before it was seen is already in the position: only growth counts
    grown = order("e1", status="filled", filled=10, avg=52.0, legs=legs)
    assert world.watcher.sync(Broker(e1=grown, h1=found[1], b1=found[2], tp=legs[0], sl=legs[1]), world.ledger,
                              [], T1)[0] == "JPM: buy 6 filled at 53.33 (entry)"


def test_a_fill_without_a_broker_time_is_stamped_now_and_the_watch_is_journalled(world):
    world.watcher.track("s1", "JPM", "sell", "exit")
    world.ledger.open_lot("JPM", 5, 10.0, T0, "entry", 9.5, 11.5)
    world.watcher.sync(Broker(s1=order("s1", side="sell", status="filled", filled=5, avg=9.0)), world.ledger, [],
                       T1)
    (fill,) = world.ledger.fills
    assert (fill.time, fill.qty, fill.price, fill.role, fill.order_id) == (T1, 5, 9.0, "exit", "s1")
    assert world.journal.get_state(STATE_KEY) == {}
    restarted = FillWatcher(world.journal)
    assert restarted.watch == {}


def test_a_sale_with_legs_never_sets_levels_only_a_buy_does(world):
    legs = [order("tp", side="sell", type_="limit", limit=20.0), order("sl", side="sell", type_="stop", stop=5.0)]
    world.ledger.open_lot("JPM", 5, 10.0, T0, "entry", 9.5, 11.5)
    world.watcher.track("s1", "JPM", "sell", "exit")
    world.watcher.sync(Broker(s1=order("s1", side="sell", status="filled", filled=2, avg=10.0, legs=legs)),
                       world.ledger, [], T1)
    lot = world.ledger.open_trades()["JPM"]
    assert (lot.stop, lot.target) == (9.5, 11.5)


def test_a_restarted_watcher_reloads_what_it_was_watching(world):
    world.watcher.track("s1", "JPM", "sell", "trim")
    world.watcher.sync(Broker(), world.ledger, [order("s1", side="sell", type_="market")], T0)
    restarted = FillWatcher(world.journal)
    assert restarted.watch == {"s1": {"symbol": "JPM", "side": "sell", "role": "trim", "filled": 0.0, "avg": 0.0}}


def test_a_new_leg_after_one_already_watched_is_watched_too_with_roles_from_ids(world):
    world.watcher.track("tp", "JPM", "sell", "target")
    legs = [order("tp", side="sell", type_="limit"), order("sl", side="sell", type_="stop", status="held")]
    world.watcher.track_open([order("p1", side="sell", type_="limit", cid="combined-JPM-protect-20240305T0900-a",
                                    legs=legs),
                              order("t1", side="sell", cid="combined-XOM-trim-20240305T0900-b", symbol="XOM")])
    assert world.watcher.watch["sl"]["role"] == "stop", "the leg after an already watched one"
    assert world.watcher.watch["t1"]["role"] == "trim" and world.watcher.watch["p1"]["role"] == "protect"


@pytest.mark.parametrize("qty", [1, 0.5, 0.001])
def test_a_fill_of_one_share_or_a_fraction_is_recorded(world, qty):
    world.watcher.track("s1", "JPM", "sell", "exit")
    world.ledger.open_lot("JPM", 5, 10.0, T0, "entry", 9.5, 11.5)
    notes = world.watcher.sync(Broker(s1=order("s1", side="sell", status="filled", filled=qty, avg=10.0)),
                               world.ledger, [], T1)
    assert notes == [f"JPM: sell {qty:g} filled at 10.00 (exit)"]


def test_missing_fields_read_as_empty_and_a_leg_without_a_type_is_a_stop():
    from broker.fills import _value

    assert _value(None) == "" and _value(SimpleNamespace(value="sell")) == "sell" and _value("buy") == "buy"
    assert leg_role(SimpleNamespace(type=None)) == "stop"


def test_legs_learned_from_a_filled_entry_close_the_trade_when_their_stop_fills(world):
    legs = [order("tp", side="sell", type_="limit", limit=115.0, status="new"),
            order("sl", side="sell", type_="stop", stop=95.0, status="held")]
    world.ledger.pending_levels["JPM"] = (94.0, 120.0)  # what the bracket asked for; the legs are the truth
    world.watcher.track("e1", "JPM", "buy", "entry")
    entry = order("e1", status="filled", filled=10, avg=100.0, legs=legs, filled_at=T0)
    world.watcher.sync(Broker(e1=entry), world.ledger, [], T0)
    lot = world.ledger.open_trades()["JPM"]
    assert (lot.initial_stop, lot.stop, lot.target) == (95.0, 95.0, 115.0)
    assert world.watcher.watch["sl"] == {"symbol": "JPM", "side": "sell", "role": "stop", "filled": 0.0, "avg": 0.0}
    stopped = order("sl", side="sell", type_="stop", status="filled", filled=10, avg=95.0, filled_at=T1)
    notes = world.watcher.sync(Broker(sl=stopped, tp=order("tp", side="sell", type_="limit", status="canceled")),
                               world.ledger, [], T1)
    assert notes == ["JPM: sell 10 filled at 95.00 (stop)"]
    assert "JPM" not in world.ledger.open_trades()
    assert list(world.journal.frame("closed_trades")["exit_reason"]) == ["stop"]


def test_an_entry_that_filled_through_its_stop_still_records_the_legs_stop_as_its_initial_stop(world):
    """A gap fill at or below the stop leg: the trade's record keeps the stop it really has (the journal's
    open-trade state shows it), even though no 1R can be measured from it."""
    legs = [order("tp", side="sell", type_="limit", limit=115.0), order("sl", side="sell", type_="stop", stop=95.0)]
    world.watcher.track("e1", "JPM", "buy", "entry")
    world.watcher.sync(Broker(e1=order("e1", status="filled", filled=10, avg=94.0, legs=legs, filled_at=T0)),
                       world.ledger, [], T0)
    lot = world.ledger.open_trades()["JPM"]
    assert (lot.initial_stop, lot.stop) == (95.0, 95.0) and lot.risk_per_share is None
    assert world.journal.open_trades()["JPM"]["initial_stop"] == 95.0


# ---------------------------------------------------------------------------------------------- stream updates
def fills_of(world) -> list[tuple]:
    return [(f.symbol, f.side, f.qty, f.price, f.role) for f in world.journal.frame("fills").itertuples()]


def test_a_stream_fill_is_recorded_once_and_the_rest_sync_finds_nothing_more(world):
    world.journal.record_order(T0, client_order_id="combined-JPM-enter-20240305T0900-abc", symbol="JPM", side="buy",
                               order_type="market", order_class="bracket", qty=10, intent="enter", role="entry")
    world.watcher.track("e1", "JPM", "buy", "entry")
    half = order("e1", status="partially_filled", filled=4, avg=100.0, cid="combined-JPM-enter-20240305T0900-abc")
    assert world.watcher.on_update(half, world.ledger, T0, event_qty=4) == ("JPM: buy 4 filled at 100.00 (entry)", True)
    assert world.watcher.on_update(half, world.ledger, T0, event_qty=4) == (None, True)  # the same message again
    full = order("e1", status="filled", filled=10, avg=101.2, cid="combined-JPM-enter-20240305T0900-abc")
    note, known = world.watcher.on_update(full, world.ledger, T0, event_qty=6)
    assert known and note == "JPM: buy 6 filled at 102.00 (entry)"  # (10 x 101.2 - 4 x 100) / 6
    assert "e1" not in world.watcher.watch  # terminal: no longer watched
    assert world.watcher.sync(Broker(e1=full), world.ledger, [], T1) == []  # REST finds nothing new
    assert fills_of(world) == [("JPM", "buy", 4.0, 100.0, "entry"), ("JPM", "buy", 6.0, pytest.approx(102.0), "entry")]
    assert world.journal.get_state(STATE_KEY) == {}


@pytest.mark.parametrize(("side", "type_", "cid", "role"), [
    ("sell", "stop", "leg-1", "stop"), ("sell", "limit", "leg-2", "target"), ("buy", "market", "by-hand", "entry"),
    ("sell", "market", "by-hand", "unknown"), ("sell", "market", "combined-XOM-trim-20240305T1000-abc", "trim"),
])
def test_an_order_first_seen_on_the_stream_is_watched_with_its_role_from_before_this_fill(world, side, type_, cid,
                                                                                          role):
    o = order("u1", symbol="XOM", side=side, type_=type_, status="partially_filled", filled=7, avg=50.0, cid=cid)
    note, known = world.watcher.on_update(o, world.ledger, T0, event_qty=3)  # 4 filled before: in the position
    assert known is False and note == f"XOM: {side} 3 filled at 50.00 ({role})"
    assert world.watcher.watch["u1"]["role"] == role and world.watcher.watch["u1"]["filled"] == 7
    assert world.journal.get_state(STATE_KEY)["u1"]["filled"] == 7  # persisted: a restart keeps the count


def test_a_stream_update_for_a_bracket_watches_its_legs_and_a_non_fill_event_records_nothing(world):
    legs = [order("tp", side="sell", type_="limit", limit=115.0), order("sl", side="sell", type_="stop", stop=95.0)]
    world.journal.record_order(T0, client_order_id="combined-JPM-enter-x", symbol="JPM", side="buy",
                               order_type="market", order_class="bracket", qty=10, intent="enter", role="entry")
    new = order("e2", status="new", cid="combined-JPM-enter-x", legs=legs)
    assert world.watcher.on_update(new, world.ledger, T0) == (None, True)  # known by its client id
    assert {k: v["role"] for k, v in world.watcher.watch.items()} == {"e2": "entry", "tp": "target", "sl": "stop"}
    assert fills_of(world) == []


def test_a_stream_message_that_arrives_after_the_rest_sync_counted_the_order_counts_nothing(world):
    world.watcher.track("s1", "JPM", "sell", "stop")
    done = order("s1", side="sell", type_="stop", status="filled", filled=10, avg=85.0)
    assert world.watcher.sync(Broker(s1=done), world.ledger, [], T0) == ["JPM: sell 10 filled at 85.00 (stop)"]
    assert world.watcher.on_update(done, world.ledger, T1, event_qty=10) == (None, True)  # queued during the sync
    world.watcher.track("e1", "JPM", "buy", "entry")
    full = order("e1", status="filled", filled=10, avg=101.2)
    world.watcher.sync(Broker(e1=full), world.ledger, [], T0)
    half = order("e1", status="partially_filled", filled=4, avg=100.0)  # older messages, handled late
    assert world.watcher.on_update(half, world.ledger, T1, event_qty=4) == (None, True)
    assert world.watcher.on_update(full, world.ledger, T1, event_qty=6) == (None, True)
    assert "e1" not in world.watcher.watch  # not watched again: the next sync has nothing to re-read
    assert [f[2] for f in fills_of(world)] == [10.0, 10.0]  # the stop's 10 and the entry's 10, once each
    restarted = FillWatcher(world.journal)  # the counted orders survive a restart
    assert restarted.on_update(done, world.ledger, T1, event_qty=10) == (None, True)


def test_stream_legs_are_watched_with_their_symbol_and_side_and_fills_keep_the_message_time(world):
    # an order first seen on the stream as 'new' (nothing filled): one share filling later is one share
    first = order("n1", symbol="XOM", status="new", cid="by-hand")
    assert world.watcher.on_update(first, world.ledger, T0) == (None, False)
    one = order("n1", symbol="XOM", status="filled", filled=1, avg=50.0, cid="by-hand")
    assert world.watcher.on_update(one, world.ledger, T1, event_qty=1)[0] == "XOM: buy 1 filled at 50.00 (entry)"
    # a bracket's legs, learned from its update, fill later with the leg's own symbol and side
    legs = [order("tp", side="sell", type_="limit", limit=115.0), order("sl", side="sell", type_="stop", stop=95.0)]
    world.watcher.on_update(order("b1", status="new", cid="combined-JPM-enter-y", legs=legs), world.ledger, T0)
    stop = order("sl", side="sell", type_="stop", status="filled", filled=10, avg=95.0, cid="leg")
    assert world.watcher.on_update(stop, world.ledger, T1, event_qty=10)[0] == "JPM: sell 10 filled at 95.00 (stop)"
    times = list(world.journal.frame("fills")["time"])
    assert times == [T1.isoformat(), T1.isoformat()]  # no filled_at on the message: the time it was handled
    assert fills_of(world) == [("XOM", "buy", 1.0, 50.0, "entry"), ("JPM", "sell", 10.0, 95.0, "stop")]
