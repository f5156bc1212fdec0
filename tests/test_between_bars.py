"""What a stream price may do between iterations (trading/steps/between_bars.py): the planners' step 1 and the exit
policy's stop moves for the one symbol, never the hourly actions."""

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.builders import NOW, oco_legs, snapshot
from trading.intents import IntentKind
from trading.order_ids import OrderIds
from trading.records.ledger import Lot
from trading.settings import Settings
from trading.steps.between_bars import plan_between_bars, with_price

NY = ZoneInfo("America/New_York")
S = Settings.defaults()
IDS = OrderIds("combined", NOW)


def lot(symbol="AAPL", entry=100.0, stop=95.0, target=115.0, hours=0.0) -> Lot:
    t = Lot(symbol, 100, entry, datetime(2024, 3, 4, 9, 30, tzinfo=NY), "entry", stop, stop, target)
    t.hours_held = hours
    return t


def held(price: float, protected: bool = True, atr: float = 2.0, others=()):
    orders = oco_legs("AAPL", 100, 95.0, 115.0) if protected else ()
    prices = {"AAPL": {"close": price, "atr": atr, "high": price}, **{s: 50.0 for s in others}}
    return snapshot(holdings=[("AAPL", 100, 100.0), *((s, 10, 50.0) for s in others)], orders=orders, prices=prices)


def test_with_price_replaces_the_close_and_raises_the_high_only():
    snap = with_price(held(101.0), "AAPL", 108.0, NOW)
    assert snap.price("AAPL") == 108.0 and snap.bar_range()[0]["AAPL"] == 108.0
    assert with_price(held(101.0), "AAPL", 99.0, NOW).bar_range()[0]["AAPL"] == 101.0  # a lower print is no high
    assert snap.atr("AAPL") == 2.0 and snap.holdings == held(101.0).holdings


def test_a_new_high_past_two_r_moves_the_stop_even_though_a_partial_is_due():
    trade = lot()
    trade.highest = 111.0  # +2.2R: the iteration would take the partial; the stream moves the stop
    (d,) = plan_between_bars(with_price(held(100.0), "AAPL", 111.0, NOW), S, {"AAPL": trade}, IDS, "AAPL")
    assert d.intent.kind == IntentKind.MOVE_STOP and d.action == "trailing"
    (update,) = d.intent.orders
    assert float(update.stop_price) == pytest.approx(109.0)  # the high 111 minus 1 ATR (2.0)
    assert d.intent.orders[0].order_id == "g1-sl"  # the resting stop leg, replaced in place


def test_breakeven_at_one_r_and_nothing_below_it():
    trade = lot()
    assert plan_between_bars(with_price(held(100.0), "AAPL", 104.0, NOW), S, {"AAPL": trade}, IDS, "AAPL") == []
    (d,) = plan_between_bars(with_price(held(100.0), "AAPL", 105.5, NOW), S, {"AAPL": trade}, IDS, "AAPL")
    assert d.action == "breakeven" and float(d.intent.orders[0].stop_price) == pytest.approx(100.10)


def test_a_time_exit_due_is_left_to_the_iteration():
    trade = lot(hours=30.0)  # past TIME_EXIT_HOURS without +1R: the hourly iteration sells it
    timed = replace(S, time_exit_hours=24.0)
    assert plan_between_bars(with_price(held(100.0), "AAPL", 100.5, NOW), timed, {"AAPL": trade}, IDS, "AAPL") == []


def test_an_unprotected_position_past_its_stop_is_sold_at_once_and_near_it_is_warned():
    snap = with_price(held(100.0, protected=False), "AAPL", 94.0, NOW)
    (d,) = plan_between_bars(snap, S, {"AAPL": lot()}, IDS, "AAPL")
    assert d.intent.kind == IntentKind.EXIT  # the software stop
    near = plan_between_bars(with_price(held(100.0, protected=False), "AAPL", 96.2, NOW), S, {"AAPL": lot()}, IDS,
                             "AAPL")
    # near its stop: the warning, and the OCO it lacks (step 1 as the iteration would do it)
    assert [(x.level, x.intent.kind if x.intent else None) for x in near] == [("warning", None),
                                                                              ("info", IntentKind.PROTECT)]


def test_only_the_symbol_that_moved_and_only_if_held():
    snap = with_price(held(100.0, protected=False, others=("MSFT",)), "AAPL", 101.0, NOW)
    decisions = plan_between_bars(snap, S, {"AAPL": lot()}, IDS, "AAPL")
    assert {d.symbol for d in decisions} <= {"AAPL"}  # MSFT is unprotected too: its own price will ask for it
    assert plan_between_bars(snap, S, {}, IDS, "NVDA") == []
