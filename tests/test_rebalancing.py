"""Step 2: trims cancel the legs, sell the excess and re-protect the rest; inverse ETFs have their own cap."""

from decimal import Decimal

import pytest

from tests.builders import oco_legs, snapshot
from trading.intents import IntentKind
from trading.order_ids import OrderIds
from trading.orders import MarketOrder, OcoOrder
from trading.steps.protection import Levels
from trading.steps.rebalancing import plan_trims

IDS = OrderIds("combined", snapshot().now)


def trims(decisions):
    return [d for d in decisions if d.action == "trim"]


@pytest.mark.parametrize("qty, trimmed", [(150, False), (151, True), (100, False)])
def test_trim_boundary_at_exactly_the_cap(settings, qty, trimmed):
    # 150 sh at $100 of a $100,000 portfolio is exactly 15%: left alone; one share more is above the cap
    snap = snapshot(cash=100_000 - qty * 100, holdings=[("AAPL", qty, 90.0)], prices={"AAPL": 100.0})
    assert bool(trims(plan_trims(snap, settings, {}, set(), IDS))) is trimmed


def test_trim_cancels_legs_sells_to_below_the_cap_and_reprotects_at_original_levels(settings):
    legs = oco_legs("NVDA", 300, 85.0, 120.0, group="br1")
    snap = snapshot(cash=70_000, holdings=[("NVDA", 300, 90.0)], prices={"NVDA": 100.0}, orders=legs)
    levels = {"NVDA": Levels(Decimal("85.00"), Decimal("120.00"))}
    (d,) = trims(plan_trims(snap, settings, levels, set(), IDS))
    intent = d.intent
    assert intent.kind == IntentKind.TRIM
    assert set(intent.cancel_order_ids) == {"br1-tp", "br1-sl", "br1"}, "every leg that holds shares is cancelled"
    sell, oco = intent.orders
    assert isinstance(sell, MarketOrder) and sell.side == "sell"
    assert isinstance(oco, OcoOrder) and sell.qty + oco.qty == 300, "the whole position stays accounted for"
    assert (oco.stop_loss, oco.take_profit) == (Decimal("85.00"), Decimal("120.00"))
    pv = snap.portfolio_value
    assert oco.qty * 100 / pv <= settings.max_position_pct - settings.trim_buffer_pct + 1e-9
    assert (oco.qty + 1) * 100 / pv > settings.max_position_pct - settings.trim_buffer_pct


def test_trim_never_sells_more_than_held_and_exiting_symbols_are_skipped(settings):
    snap = snapshot(cash=1000, holdings=[("AMD", 50, 100.0)], prices={"AMD": 200.0})  # ~91% of portfolio
    (d,) = trims(plan_trims(snap, settings, {}, set(), IDS))
    sell, oco = d.intent.orders
    assert 1 <= sell.qty < 50 and sell.qty + oco.qty == 50
    assert not trims(plan_trims(snap, settings, {}, {"AMD"}, IDS))


def test_inverse_etfs_are_not_trimmed_at_the_position_cap_but_at_their_own(settings):
    # SH at 18% of the portfolio: above the 15% position cap, within the 20% inverse cap
    snap = snapshot(cash=82_000, holdings=[("SH", 1800, 10.0)], prices={"SH": 10.0})
    assert not trims(plan_trims(snap, settings, {}, set(), IDS))
    snap = snapshot(cash=75_000, holdings=[("SH", 2500, 10.0)], prices={"SH": 10.0})  # 25%
    (d,) = trims(plan_trims(snap, settings, {}, set(), IDS))
    _sell, oco = d.intent.orders
    remaining = oco.qty * 10.0 / snap.portfolio_value
    assert remaining <= settings.max_inverse_allocation and "inverse" in d.reason


def test_remainder_that_cannot_be_protected_is_sold_too(settings):
    # the original stop (101) is above the price: no valid OCO exists for the remainder
    snap = snapshot(cash=10_000, holdings=[("XOM", 100, 110.0)], prices={"XOM": 100.0})
    levels = {"XOM": Levels(Decimal("101.00"), Decimal("126.50"))}
    (d,) = trims(plan_trims(snap, settings, levels, set(), IDS))
    assert [type(o) for o in d.intent.orders] == [MarketOrder] and d.intent.orders[0].qty == 100
    assert "whole position is sold" in d.reason


def test_zero_portfolio_value_trims_nothing(settings):
    snap = snapshot(cash=0, portfolio_value=0.0, holdings=[("A", 1, 1.0)], prices={"A": 1.0})
    assert not trims(plan_trims(snap, settings, {}, set(), IDS))
