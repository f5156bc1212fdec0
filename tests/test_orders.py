"""The order builder: every order it produces is one Alpaca accepts, or it says why there is none."""

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trading.order_ids import client_order_id
from trading.orders import (
    CENT,
    BracketOrder,
    InvalidOrder,
    MarketOrder,
    OcoOrder,
    Refusal,
    build_bracket,
    build_bracket_for_budget,
    build_market,
    build_oco,
    is_valid_increment,
    to_tick,
)

prices = st.floats(min_value=0.0101, max_value=5000, allow_nan=False, allow_infinity=False)
cash = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
pcts = st.floats(min_value=0.005, max_value=0.49)


@pytest.mark.parametrize("price, expected", [
    (290.123, Decimal("290.12")), (41.085, Decimal("41.09")), (1.0, Decimal("1.00")),
    (0.60134, Decimal("0.6013")), (0.99996, Decimal("1.00")), (0.0001, Decimal("0.0001")),
])
def test_to_tick_uses_two_decimals_from_one_dollar_and_four_below(price, expected):
    assert to_tick(price) == expected
    assert is_valid_increment(to_tick(price))


@pytest.mark.parametrize("text, ok", [("290.12", True), ("290.123", False), ("0.6013", True), ("0.60134", False),
                                      ("1.0001", False), ("0", False)])
def test_valid_increment_follows_the_sub_penny_rule(text, ok):
    assert is_valid_increment(Decimal(text)) is ok


@given(price=prices, budget=cash, stop=pcts, target=st.floats(min_value=0.001, max_value=3))
def test_bracket_is_always_acceptable_or_refused_with_reason(price, budget, stop, target):
    out = build_bracket_for_budget("AAPL", price, budget, stop, target, "cid")
    if isinstance(out, Refusal):
        assert out.reason and out.symbol == "AAPL"
        return
    assert isinstance(out.qty, int) and out.qty >= 1
    assert out.qty * price <= budget + 1e-6, "never spends more than the budget"
    assert (out.qty + 1) * price > budget - 1e-6, "uses the budget: one more share would not fit"
    for p in (out.take_profit, out.stop_loss):
        assert is_valid_increment(p)
    assert out.stop_loss <= out.reference_price - CENT < out.reference_price + CENT <= out.take_profit
    assert out.time_in_force == "gtc"


@given(price=prices, qty=st.integers(min_value=-3, max_value=100_000), stop=st.floats(min_value=0.0, max_value=1e4),
       target=st.floats(min_value=0.0, max_value=1e4))
def test_bracket_with_explicit_shares_and_levels_is_acceptable_or_refused(price, qty, stop, target):
    """What entries use: a share count from sizing and levels from the stop mode (fixed or ATR)."""
    out = build_bracket("AAPL", price, qty, to_tick(stop) if stop >= 0.0001 else Decimal(0),
                        to_tick(target) if target >= 0.0001 else Decimal(0), "cid")
    if isinstance(out, Refusal):
        assert out.reason and (qty < 1 or to_tick(price) <= CENT or out.reason.startswith("price"))
        return
    assert out.qty == qty >= 1
    assert is_valid_increment(out.take_profit) and is_valid_increment(out.stop_loss) and out.stop_loss > 0
    assert out.stop_loss <= out.reference_price - CENT < out.reference_price + CENT <= out.take_profit


@given(price=prices, stop=pcts, target=st.floats(min_value=0.001, max_value=3))
def test_bracket_levels_are_never_closer_to_entry_than_the_settings(price, stop, target):
    out = build_bracket_for_budget("X", price, 1e7, stop, target, "cid")
    assume(isinstance(out, BracketOrder))
    assert float(out.stop_loss) <= price * (1 - stop) + 1e-9
    assert float(out.take_profit) >= price * (1 + target) - 1e-9


@pytest.mark.parametrize("price, budget, why", [
    (150.0, 149.99, "only $149.99"),  # one share of cash short
    (150.0, 0.0, "no cash"),
    (float("nan"), 1000.0, "no usable price"),
    (0.0, 1000.0, "no usable price"),
])
def test_bracket_refusals_name_the_problem(price, budget, why):
    out = build_bracket_for_budget("AAPL", price, budget, 0.05, 0.15, "cid")
    assert isinstance(out, Refusal) and why in out.reason


def test_bracket_with_exactly_one_share_of_cash():
    out = build_bracket_for_budget("AAPL", 150.0, 150.0, 0.05, 0.15, "cid")
    assert isinstance(out, BracketOrder) and out.qty == 1
    assert (out.stop_loss, out.take_profit) == (Decimal("142.50"), Decimal("172.50"))


def test_sub_dollar_bracket_uses_four_decimals_and_cent_gaps():
    out = build_bracket_for_budget("PENNY", 0.5123, 1000.0, 0.05, 0.15, "cid")
    assert isinstance(out, BracketOrder)
    assert out.stop_loss == Decimal("0.4866") and out.take_profit == Decimal("0.5892")
    tiny = build_bracket_for_budget("PENNY", 0.0150, 100.0, 0.05, 0.15, "cid")
    assert isinstance(tiny, BracketOrder)
    assert tiny.stop_loss <= tiny.reference_price - CENT and tiny.take_profit >= tiny.reference_price + CENT


def test_no_brackets_outside_the_regular_session():
    out = build_bracket_for_budget("AAPL", 150.0, 10_000, 0.05, 0.15, "cid", session="extended")
    assert isinstance(out, Refusal) and "regular session" in out.reason


@given(qty=st.floats(min_value=0, max_value=1e5), last=prices, stop=pcts, target=st.floats(0.001, 3))
def test_oco_is_valid_against_the_current_price_or_refused(qty, last, stop, target):
    stop_p, target_p = to_tick(last * (1 - stop)), to_tick(last * (1 + target))
    out = build_oco("AAPL", qty, last, stop_p, target_p, "cid")
    if isinstance(out, Refusal):
        assert out.reason
        return
    assert isinstance(out.qty, int) and 1 <= out.qty <= qty + 1e-9
    assert out.stop_loss <= to_tick(last) - CENT and out.take_profit >= to_tick(last) + CENT
    assert out.stop_loss <= out.take_profit - CENT


def test_oco_refuses_fractional_only_positions_and_levels_on_the_wrong_side():
    assert isinstance(build_oco("A", 0.4, 100, Decimal("95"), Decimal("115"), "c"), Refusal)
    assert "not below" in build_oco("A", 10, 94.0, Decimal("95"), Decimal("115"), "c").reason
    assert "not above" in build_oco("A", 10, 116.0, Decimal("95"), Decimal("115"), "c").reason


def test_value_objects_refuse_invalid_orders():
    with pytest.raises(InvalidOrder):
        BracketOrder("A", 1, Decimal("100.00"), Decimal("115.001"), Decimal("95.00"), "c")  # sub-penny
    with pytest.raises(InvalidOrder):
        BracketOrder("A", 0, Decimal("100.00"), Decimal("115.00"), Decimal("95.00"), "c")  # no shares
    with pytest.raises(InvalidOrder):
        BracketOrder("A", 2, Decimal("100.00"), Decimal("100.00"), Decimal("95.00"), "c")  # no cent gap
    with pytest.raises(InvalidOrder):
        OcoOrder("A", 5, Decimal("95.00"), Decimal("95.00"), "c")  # stop not below target
    with pytest.raises(InvalidOrder):
        MarketOrder("A", 1.5, "sell", "c", time_in_force="gtc")  # fractional must be DAY


def test_market_orders_keep_fractions_and_refuse_nothing():
    assert build_market("A", 10.5, "sell", "c").qty == 10.5
    assert build_market("A", 10.0, "sell", "c").qty == 10
    assert isinstance(build_market("A", 0, "sell", "c"), Refusal)


def test_client_order_ids_are_deterministic_unique_per_decision_and_short():
    t = datetime(2024, 3, 5, 10, 30)
    a = client_order_id("combined", "AAPL", "enter", t)
    assert a == client_order_id("combined", "AAPL", "enter", t)
    others = {client_order_id("combined", "AAPL", "enter", datetime(2024, 3, 5, 11, 30)),
              client_order_id("combined", "MSFT", "enter", t), client_order_id("combined", "AAPL", "trim", t)}
    assert a not in others and len(others) == 3
    assert len(client_order_id("x" * 200, "BRK.B", "trim-oco", t)) <= 128


def test_dust_is_never_an_order_but_a_whole_share_always_is():
    """Verify item: a residue such as 4e-07 shares (or any fractional order under $1) is refused by Alpaca."""
    from trading.orders import Refusal, build_market

    for qty, price in ((4e-07, 150.0), (4e-07, None), (0.005, 150.0), (0.3, 2.0)):
        r = build_market("AAPL", qty, "sell", "cid", price=price)
        assert isinstance(r, Refusal) and "dust" in r.reason, (qty, price)
    assert build_market("AAPL", 0.01, "sell", "cid", price=150.0).qty == 0.01  # $1.50: a valid fraction
    assert build_market("PENNY", 1, "sell", "cid", price=0.5).qty == 1  # a whole share under $1 is fine
    assert build_market("AAPL", 2.0000004, "sell", "cid", price=150.0).qty == 2.0000004
