"""Step 3: breadth, the hedge rule, hysteresis and the choice of inverse ETF."""

import math

import pytest

from tests.builders import market, oco_legs, snapshot
from trading.order_ids import OrderIds
from trading.orders import BracketOrder, MarketOrder
from trading.snapshot import OpenOrder
from trading.steps.hedging import choose_inverse, measure_breadth, plan_hedge

IDS = OrderIds("combined", snapshot().now)
BELLS = ("AAPL", "MSFT", "GOOGL", "NVDA", "TSLA")


def bell_prices(*rsis, extra=None):
    rows = {sym: {"close": 100.0, "rsi": r} for sym, r in zip(BELLS, rsis, strict=True)}
    rows.update({"SH": {"close": 14.0}, "SPXS": {"close": 12.0}, "SQQQ": {"close": 15.0}})
    rows.update(extra or {})
    return rows


def test_breadth_counts_strictly_above_overbought_and_ignores_missing():
    b = measure_breadth(market({"A": {"rsi": 70.0}, "B": {"rsi": 70.01}, "C": {"rsi": float("nan")}})["rsi"].to_dict(),
                        ("A", "B", "C", "D"), 70)
    assert b.ratio == 0.5 and list(b.overbought) == ["B"] and b.missing == ("C", "D")
    assert math.isnan(measure_breadth({}, ("A",), 70).ratio)


def test_breadth_exactly_at_threshold_hedges_with_sh(settings):
    snap = snapshot(cash=100_000, prices=bell_prices(75, 72, 71, 50, 40))  # 3/5 = 60% == threshold
    b = measure_breadth(snap.rsi_values, BELLS, 70)
    (d,) = plan_hedge(snap, settings, b, cash_available=99_000, exiting=set(), ids=IDS)
    assert d.action == "hedge" and d.symbol == "SH"
    (order,) = d.intent.orders
    assert isinstance(order, BracketOrder)
    target = (settings.max_inverse_allocation - settings.trim_buffer_pct) * snap.portfolio_value  # 19%
    assert target - 14.0 < order.notional <= target  # whole shares of a ~$14 ETF, a point below the cap


def test_just_below_threshold_does_not_hedge(settings):
    snap = snapshot(cash=100_000, prices=bell_prices(75, 72, 70, 50, 40))  # 2/5
    (d,) = plan_hedge(snap, settings, measure_breadth(snap.rsi_values, BELLS, 70), 99_000, set(), IDS)
    assert d.action == "none" and d.intent is None


def test_hedge_is_limited_by_cash_above_reserve(settings):
    snap = snapshot(cash=5_000, portfolio_value=100_000, prices=bell_prices(80, 80, 80, 50, 40))
    (d,) = plan_hedge(snap, settings, measure_breadth(snap.rsi_values, BELLS, 70), 4_000, set(), IDS)
    assert d.intent.orders[0].notional <= 4_000
    (none,) = plan_hedge(snap, settings, measure_breadth(snap.rsi_values, BELLS, 70), 0.0, set(), IDS)
    assert none.action == "skip" and "no cash" in none.reason


@pytest.mark.parametrize("rsis, held, action", [
    ((75, 72, 50, 50, 40), True, "hold"),  # 40%: between exit (40%) and entry (60%): keep
    ((75, 50, 50, 50, 40), True, "unhedge"),  # 20% < 40%: unwind
    ((75, 72, 50, 50, 40), False, "none"),  # 40% and no hedge: nothing to do
])
def test_hysteresis(settings, rsis, held, action):
    holdings = [("SH", 1000, 14.0)] if held else []
    orders = oco_legs("SH", 1000, 13.3, 16.1) if held else ()
    snap = snapshot(cash=80_000, holdings=holdings, orders=orders, prices=bell_prices(*rsis))
    decisions = plan_hedge(snap, settings, measure_breadth(snap.rsi_values, BELLS, 70), 79_000, set(), IDS)
    assert [d.action for d in decisions] == [action]
    if action == "unhedge":
        intent = decisions[0].intent
        assert set(intent.cancel_order_ids) == {"g1-tp", "g1-sl", "g1"}
        assert isinstance(intent.orders[0], MarketOrder) and intent.orders[0].qty == 1000


def test_pending_hedge_entry_counts_as_hedged_and_is_cancelled_on_unwind(settings):
    pending = OpenOrder("p1", "SH", "buy", "market", 1000, order_class="bracket")
    snap = snapshot(cash=80_000, orders=[pending], prices=bell_prices(80, 80, 80, 50, 40))
    (hold,) = plan_hedge(snap, settings, measure_breadth(snap.rsi_values, BELLS, 70), 79_000, set(), IDS)
    assert hold.action == "hold"
    snap = snapshot(cash=80_000, orders=[pending], prices=bell_prices(50, 50, 50, 50, 40))
    (d,) = plan_hedge(snap, settings, measure_breadth(snap.rsi_values, BELLS, 70), 79_000, set(), IDS)
    assert d.action == "unhedge" and d.intent.cancel_order_ids == ("p1",) and d.intent.orders == ()


@pytest.mark.parametrize(("rsis", "held", "action"), [
    ((80, 80, 80, 80, 50), "SH", "unhedge"),  # 80% = HEDGE_LEVERAGED_BREADTH with the 1x ETF: escalate
    ((80, 80, 80, 50, 50), "SH", "hold"),  # 60%: the 1x hedge is the right one
    ((80, 80, 80, 80, 80), "SPXS", "hold"),  # already 3x: keep
])
def test_the_hedge_escalates_to_3x_when_breadth_turns_extreme(settings, rsis, held, action):
    holdings = [(held, 1000, 14.0), ("XOM", 100, 100.0)]
    snap = snapshot(cash=80_000, holdings=holdings, orders=oco_legs(held, 1000, 13.3, 16.1),
                    prices={**bell_prices(*rsis), "XOM": 100.0})
    (d,) = plan_hedge(snap, settings, measure_breadth(snap.rsi_values, BELLS, 70), 79_000, set(), IDS)
    assert d.action == action
    if action == "unhedge":
        assert "escalate the hedge" in d.reason and "SPXS (3x) is bought once the sale has filled" in d.reason
        assert d.intent.orders[0].qty == 1000 and set(d.intent.cancel_order_ids) == {"g1-tp", "g1-sl", "g1"}
    off = type(settings).defaults(enable_leveraged_hedge=False)
    (d,) = plan_hedge(snap, off, measure_breadth(snap.rsi_values, BELLS, 70), 79_000, set(), IDS)
    assert d.action == "hold"


@pytest.mark.parametrize("breadth, tech_share, expected", [
    (0.6, 1.0, "SH"), (0.8, 0.9, "SQQQ"), (0.8, 0.2, "SPXS"), (1.0, 0.5, "SQQQ"), (1.0, 0.49, "SPXS"),
])
def test_choice_of_inverse_etf(settings, breadth, tech_share, expected):
    tech_value, other_value = 100 * tech_share, 100 * (1 - tech_share)
    holdings = [("NVDA", tech_value, 1.0), ("XOM", other_value, 1.0)]
    snap = snapshot(cash=0, holdings=holdings, prices={"NVDA": 1.0, "XOM": 1.0})
    assert choose_inverse(breadth, snap, settings)[0] == expected


def test_leveraged_hedge_can_be_switched_off():
    from trading.settings import Settings

    s = Settings.defaults(enable_leveraged_hedge=False)
    assert choose_inverse(1.0, snapshot(), s)[0] == "SH"


def test_no_bellwether_data_and_disabled_hedging(settings):
    snap = snapshot(cash=10_000, prices={"SH": 14.0})
    (d,) = plan_hedge(snap, settings, measure_breadth(snap.rsi_values, BELLS, 70), 9_000, set(), IDS)
    assert d.action == "skip" and "no bellwether" in d.reason
    from trading.settings import Settings

    off = Settings.defaults(max_inverse_allocation=0)
    (d,) = plan_hedge(snap, off, measure_breadth(snap.rsi_values, BELLS, 70), 9_000, set(), IDS)
    assert d.action == "off"


@pytest.mark.parametrize(("qty", "session", "price", "rsis"), [
    (1000, "extended", float("nan"), (50, 50, 50, 50, 40)),  # extended session without a price: unwind
    (0.5, "extended", 14.0, (50, 50, 50, 50, 40)),  # under one whole share outside the session: unwind
    (0.5, "extended", 14.0, (80, 80, 80, 80, 50)),  # the same on an escalation
])
def test_an_unwind_whose_sale_cannot_be_built_keeps_the_legs(settings, qty, session, price, rsis):
    """Defect 6: cancelling the legs without a sale left the hedge without its stop."""
    rows = bell_prices(*rsis)
    rows["SH"] = {"close": price}
    snap = snapshot(cash=80_000, holdings=[("SH", qty, 14.0)], orders=oco_legs("SH", qty, 13.3, 16.1), prices=rows,
                    session=session)
    decisions = plan_hedge(snap, settings, measure_breadth(snap.rsi_values, BELLS, 70), 79_000, set(), IDS)
    assert [d.intent for d in decisions] == [None]
    assert decisions[0].action == "skip" and "protective orders stay in place" in decisions[0].reason


@pytest.mark.parametrize("book_shares, rsis, symbol, want", [
    (100, (75, 72, 71, 50, 40), "SH", 10_000.0),  # 1x: the $10,000 book itself
    (100, (75, 75, 75, 75, 75), "SPXS", 10_000.0 / 3),  # extreme breadth, 3x: a third of the book
    (800, (75, 72, 71, 50, 40), "SH", 0.19 * 100_000),  # an $80,000 book: held to the cap less the buffer
])
def test_a_hedge_sized_to_the_long_book(book_shares, rsis, symbol, want):
    from trading.settings import Settings

    s = Settings.defaults(hedge_book_ratio=1.0)
    prices = bell_prices(*rsis, extra={"XOM": {"close": 100.0}})
    snap = snapshot(cash=100_000 - book_shares * 100, portfolio_value=100_000,
                    holdings=[("XOM", book_shares, 100.0)], prices=prices)
    (d,) = plan_hedge(snap, s, measure_breadth(snap.rsi_values, BELLS, 70), 99_000, set(), IDS)
    assert d.action == "hedge" and d.symbol == symbol
    price = prices[symbol]["close"]
    assert want - price < d.intent.orders[0].notional <= want, "whole shares, never above what the rule allows"
    assert "long book" in d.reason
    old = plan_hedge(snap, Settings.defaults(), measure_breadth(snap.rsi_values, BELLS, 70), 99_000, set(), IDS)
    assert old[0].intent.orders[0].notional > 0.19 * 100_000 - price, "HEDGE_BOOK_RATIO=0: the cap, as before"


def test_a_hedge_sized_to_the_book_needs_a_book():
    from trading.settings import Settings

    s = Settings.defaults(hedge_book_ratio=1.0)
    snap = snapshot(cash=100_000, prices=bell_prices(80, 80, 80, 50, 40))
    (d,) = plan_hedge(snap, s, measure_breadth(snap.rsi_values, BELLS, 70), 99_000, set(), IDS)
    assert d.action == "none" and d.intent is None and "no long book" in d.reason
