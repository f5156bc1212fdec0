"""Step 1: unprotected positions get a software stop check, a near-stop warning and an OCO."""

from decimal import Decimal

import pytest

from tests.builders import oco_legs, snapshot
from trading.intents import IntentKind
from trading.order_ids import OrderIds
from trading.orders import MarketOrder, OcoOrder
from trading.steps.protection import plan_protection

IDS = OrderIds("combined", snapshot().now)


def only(decisions, action):
    found = [d for d in decisions if d.action == action]
    assert len(found) == 1, [d.line() for d in decisions]
    return found[0]


def test_unprotected_position_gets_an_oco_at_entry_based_levels(settings):
    snap = snapshot(holdings=[("AAPL", 10, 100.0)], prices={"AAPL": 102.0})
    res = plan_protection(snap, settings, IDS)
    d = only(res.decisions, "protect")
    (oco,) = d.intent.orders
    assert isinstance(oco, OcoOrder) and oco.qty == 10
    assert (oco.stop_loss, oco.take_profit) == (Decimal("95.00"), Decimal("115.00"))
    assert "no server-side protection" in d.reason


def test_protected_position_needs_nothing(settings):
    snap = snapshot(holdings=[("AAPL", 10, 100.0)], prices={"AAPL": 102.0}, orders=oco_legs("AAPL", 10, 95, 115))
    res = plan_protection(snap, settings, IDS)
    assert [d.action for d in res.decisions] == ["check"]
    assert "1 protected" in res.decisions[0].reason
    assert res.levels["AAPL"].stop == Decimal("95.00")


@pytest.mark.parametrize("price, action", [
    (95.00, "software-stop"),  # exactly at -5%
    (94.00, "software-stop"),  # past it
    (95.01, "protect"),  # -4.99%: the stop sits exactly one cent below, a valid OCO
    (95.004, "software-stop"),  # rounds onto the stop: no valid OCO exists, so sell
    (96.40, "near-stop"),  # -3.6%: within 1.5 points of the stop
    (96.60, "protect"),  # -3.4%: not near
])
def test_software_stop_and_near_stop_boundaries(settings, price, action):
    snap = snapshot(holdings=[("TSLA", 20, 100.0)], prices={"TSLA": price})
    res = plan_protection(snap, settings, IDS)
    assert action in [d.action for d in res.decisions]
    if action == "software-stop":
        d = only(res.decisions, "software-stop")
        assert d.intent.kind == IntentKind.EXIT and "TSLA" in res.exiting
        (sell,) = d.intent.orders
        assert isinstance(sell, MarketOrder) and sell.side == "sell" and sell.qty == 20
        assert "protect" not in [x.action for x in res.decisions]
    if action == "near-stop":
        assert only(res.decisions, "near-stop").level == "warning"
        assert "protect" in [x.action for x in res.decisions], "a warned position is still protected"


def test_partially_covered_position_protects_only_the_uncovered_shares(settings):
    orders = oco_legs("MSFT", 6, 380, 450)
    snap = snapshot(holdings=[("MSFT", 10, 400.0)], prices={"MSFT": 405.0}, orders=orders)
    d = only(plan_protection(snap, settings, IDS).decisions, "protect")
    assert d.intent.orders[0].qty == 4
    assert d.intent.orders[0].stop_loss == Decimal("380.00"), "the existing levels are reused"


def test_position_above_its_target_is_re_anchored_not_sold(settings):
    snap = snapshot(holdings=[("AMD", 50, 100.0)], prices={"AMD": 140.0})
    d = only(plan_protection(snap, settings, IDS).decisions, "protect")
    oco = d.intent.orders[0]
    assert (oco.stop_loss, oco.take_profit) == (Decimal("133.00"), Decimal("161.00"))
    assert "re-anchored" in d.reason


def test_unknown_cost_basis_anchors_on_the_price_and_says_so(settings):
    snap = snapshot(holdings=[("JPM", 10, None)], prices={"JPM": 150.0})
    d = only(plan_protection(snap, settings, IDS).decisions, "protect")
    assert "cost basis unknown" in d.reason and d.intent.orders[0].stop_loss == Decimal("142.50")


def test_fractional_position_protects_whole_shares_and_sells_everything_on_a_stop(settings):
    d = only(plan_protection(snapshot(holdings=[("KO", 10.5, 60.0)], prices={"KO": 61.0}), settings, IDS).decisions,
             "protect")
    assert d.intent.orders[0].qty == 10 and "fractional" in d.reason
    stop = only(plan_protection(snapshot(holdings=[("KO", 10.5, 60.0)], prices={"KO": 56.0}), settings,
                                IDS).decisions, "software-stop")
    assert stop.intent.orders[0].qty == 10.5


def test_missing_price_is_reported_not_guessed(settings):
    snap = snapshot(holdings=[("AAPL", 10, 100.0)], prices={"AAPL": float("nan")})
    d = only(plan_protection(snap, settings, IDS).decisions, "skip")
    assert "no price data" in d.reason and d.intent is None


def test_a_short_position_is_bought_back_after_its_orders_are_cancelled(settings):
    """Defect 2: the long-only strategy never means to hold a short; step 1 covers it (documented rule)."""
    from trading.snapshot import OpenOrder

    stray = OpenOrder("s1", "X", "sell", "stop", 5, stop_price=9.0)
    res = plan_protection(snapshot(holdings=[("X", -5, 10.0)], orders=[stray], prices={"X": 10.0}), settings, IDS)
    d = only(res.decisions, "cover")
    (order,) = d.intent.orders
    assert isinstance(order, MarketOrder) and (order.side, order.qty) == ("buy", 5)
    assert d.intent.kind == IntentKind.EXIT and d.intent.cancel_order_ids == ("s1",)
    assert "-cover-" in order.client_order_id and d.level == "warning" and "X" in res.exiting
    assert not [x for x in res.decisions if x.action == "protect"], "no OCO (a sell) on a short"
