"""Two money details: an inverse ETF above its cap is trimmed to the cap minus the buffer (like a stock), and an
extended-hours limit rounds the way that keeps it at least 0.5% through the price (sells down, buys up)."""

from decimal import Decimal

import pytest

from tests.builders import snapshot
from trading.order_ids import OrderIds
from trading.orders import EXTENDED_LIMIT_SLIPPAGE, LimitOrder, MarketOrder, build_market, is_valid_increment, tick_for
from trading.settings import Settings
from trading.steps.rebalancing import plan_trims

IDS = OrderIds("combined", snapshot().now)


def trims(decisions):
    return [d for d in decisions if d.action == "trim"]


def inverse_left(snap, decision) -> float:
    """Inverse value after the trim's market sale (its first order; the second protects the rest), as a share of
    the portfolio."""
    sale = decision.intent.orders[0]
    assert isinstance(sale, MarketOrder) and sale.side == "sell"
    held = {s: h.qty - (sale.qty if s == sale.symbol else 0) for s, h in snap.holdings.items()
            if s in ("SH", "SPXS", "SQQQ")}
    return sum(q * snap.price(s) for s, q in held.items()) / snap.portfolio_value


@pytest.mark.parametrize("buffer", [0.01, 0.03])
def test_an_inverse_etf_above_its_cap_is_sold_to_the_cap_minus_the_buffer(buffer):
    s = Settings.defaults(trim_buffer_pct=buffer)  # MAX_INVERSE_ALLOCATION 20%
    snap = snapshot(cash=75_000, holdings=[("SH", 2500, 10.0)], prices={"SH": 10.0})  # SH at 25%
    (d,) = trims(plan_trims(snap, s, {}, set(), IDS))
    sell = d.intent.orders[0]
    assert sell.side == "sell" and sell.symbol == "SH"
    target = s.max_inverse_allocation - buffer
    left = inverse_left(snap, d)
    assert left <= target + 1e-9, f"left at {left:.2%}: not below the cap by the buffer ({target:.0%})"
    assert left + 10.0 / snap.portfolio_value > target, "and not a share further than that"
    assert f"to {target:.1%}" in d.reason


def test_with_two_inverse_etfs_the_largest_is_trimmed_until_both_sit_at_the_cap_minus_the_buffer(settings):
    # SH 15% + SPXS 10% = 25% against the 20% cap: SH gives up 6 points, the 5 above the cap and the 1-point buffer
    snap = snapshot(cash=75_000, holdings=[("SH", 1500, 10.0), ("SPXS", 500, 20.0)], prices={"SH": 10.0, "SPXS": 20.0})
    (d,) = trims(plan_trims(snap, settings, {}, set(), IDS))
    assert d.symbol == "SH" and d.intent.orders[0].qty == 600
    assert inverse_left(snap, d) == pytest.approx(settings.max_inverse_allocation - settings.trim_buffer_pct)


def test_an_inverse_etf_at_exactly_its_cap_is_left_alone(settings):
    snap = snapshot(cash=80_000, holdings=[("SH", 2000, 10.0)], prices={"SH": 10.0})  # exactly 20%
    assert not trims(plan_trims(snap, settings, {}, set(), IDS))


# ---------------------------------------------------------------------------------------------- extended hours
@pytest.mark.parametrize("side, price, limit", [
    ("sell", 100.87, "100.36"),  # 100.36565: half-up would say 100.37, above 0.5% through
    ("sell", 2.50, "2.48"),  # 2.4875
    ("sell", 0.1234, "0.1227"),  # 0.122783: four decimals below $1
    ("sell", 1.004, "0.9989"),  # 0.99898: the limit falls below $1, so four decimals
    ("buy", 100.10, "100.61"),  # 100.6005: half-up would say 100.60, not 0.5% through
    ("buy", 3.30, "3.32"),  # 3.3165
    ("buy", 0.5011, "0.5037"),  # 0.5036055
    ("buy", 0.999, "1.01"),  # 1.003995: at or above $1 only cents are valid, rounded up
])
def test_extended_hours_limits_round_sells_down_and_buys_up(side, price, limit):
    order = build_market("XYZ", 10, side, "cid", session="extended", price=price)
    assert isinstance(order, LimitOrder) and order.extended_hours and order.side == side
    assert order.limit_price == Decimal(limit)


@pytest.mark.parametrize("price", [0.0123, 0.37, 0.5, 0.9951, 0.99999, 1.0, 1.01, 7.77, 19.99, 123.456, 999.99,
                                   4321.09])
@pytest.mark.parametrize("side", ["sell", "buy"])
def test_extended_hours_limits_are_always_at_least_half_a_percent_through_and_on_a_valid_tick(side, price):
    order = build_market("XYZ", 3, side, "cid", session="extended", price=price)
    factor = Decimal(1) - Decimal(str(EXTENDED_LIMIT_SLIPPAGE)) if side == "sell" else \
        Decimal(1) + Decimal(str(EXTENDED_LIMIT_SLIPPAGE))
    raw = Decimal(str(price)) * factor  # exact
    limit = order.limit_price
    assert is_valid_increment(limit), f"{limit} is not on a valid increment"
    if side == "sell":  # never asks more than 0.5% below the price: it must fill
        assert limit <= raw and raw - limit <= tick_for(raw)
    else:  # never bids less than 0.5% above the price
        assert limit >= raw and limit - raw <= tick_for(limit)
