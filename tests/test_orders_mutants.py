"""Exact behaviour of the order builder, field by field: the prices, quantities, sides, time in force and
client ids a trader (and Alpaca) sees, the refusal reasons the decision log shows, and the boundaries of
every rule. Complements test_orders.py (properties) with pinned values, so a changed constant, comparison
or message in trading/orders.py shows up here."""

from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd
import pytest

from trading.order_ids import (
    MAX_CLIENT_ORDER_ID,
    ROLE_OF_INTENT,
    OrderIds,
    client_order_id,
    floor_time,
    role_from_client_id,
)
from trading.orders import (
    CENT,
    DUST_SHARES,
    EXTENDED_LIMIT_SLIPPAGE,
    MARKET_BUY_COLLAR,
    MIN_FRACTIONAL_USD,
    ONE,
    SUB_DOLLAR_TICK,
    BracketOrder,
    InvalidOrder,
    LimitOrder,
    MarketOrder,
    OcoOrder,
    Refusal,
    StopUpdate,
    build_bracket,
    build_bracket_for_budget,
    build_market,
    build_oco,
    is_valid_increment,
    protective_levels,
    request_fields,
    shares_for,
    tick_for,
    to_tick,
)

D = Decimal
T = datetime(2024, 3, 5, 14, 30)


def test_constants_alpaca_rules():
    assert (CENT, SUB_DOLLAR_TICK, ONE) == (D("0.01"), D("0.0001"), D("1"))
    assert MAX_CLIENT_ORDER_ID == 128
    assert (EXTENDED_LIMIT_SLIPPAGE, MIN_FRACTIONAL_USD, DUST_SHARES, MARKET_BUY_COLLAR) == (0.005, 1.0, 1e-6, 0.04)


# ---------------------------------------------------------------------------------------------- prices
@pytest.mark.parametrize("price, tick", [
    (D("1"), D("0.01")), (D("1.00"), D("0.01")), (D("250.5"), D("0.01")),
    (D("0.9999"), D("0.0001")), (D("0.5"), D("0.0001")), (D("0"), D("0.0001")),
])
def test_tick_for_is_a_cent_from_one_dollar(price, tick):
    assert tick_for(price) == tick


@pytest.mark.parametrize("price, rounding, text", [
    (0.9999, None, "0.9999"), (1.0, None, "1.00"), (1.00005, None, "1.00"), (1.005, None, "1.01"),
    (41.085, None, "41.09"), (41.075, None, "41.08"), (0.60125, None, "0.6013"), (0.60135, None, "0.6014"),
    (290.123, None, "290.12"), (D("2.345"), None, "2.35"), (0.00005, None, "0.0001"), (0, None, "0.0000"),
    (41.089, ROUND_FLOOR, "41.08"), (41.081, ROUND_CEILING, "41.09"), (0.60139, ROUND_FLOOR, "0.6013"),
    (0.60131, ROUND_CEILING, "0.6014"), (41.085, ROUND_FLOOR, "41.08"), (1.0, ROUND_CEILING, "1.00"),
    (1.00001, ROUND_CEILING, "1.01"), (0.99991, ROUND_FLOOR, "0.9999"),
])
def test_to_tick_exact_text(price, rounding, text):
    out = to_tick(price) if rounding is None else to_tick(price, rounding)
    assert isinstance(out, Decimal)
    assert str(out) == text


@pytest.mark.parametrize("price", [0.99996, 0.99999])
def test_to_tick_rounding_up_across_a_dollar_is_a_dollar(price):
    """Written as Alpaca's rule for a price of $1 or more wants it (2 decimals): "1.00", never "1.0000"."""
    out = to_tick(price)
    assert out == ONE and is_valid_increment(out) and str(out) == "1.00"
    assert str(to_tick(price, ROUND_CEILING)) == "1.00"
    assert str(protective_levels(0.95, 0.1, 0.0526)[1]) == "1.00"  # a target that lands on $1


@pytest.mark.parametrize("text, ok", [
    ("1.00", True), ("1", True), ("0.9999", True), ("0.99999", False), ("1.001", False), ("0.0001", True),
    ("0", False), ("-1.00", False), ("-0.0001", False), ("12.3", True),
])
def test_is_valid_increment(text, ok):
    assert is_valid_increment(D(text)) is ok


# ---------------------------------------------------------------------------------------------- client ids
def test_client_order_id_is_pinned_and_readable():
    assert client_order_id("combined", "AAPL", "enter", T) == "combined-AAPL-enter-20240305T1430-008d439c5d"
    assert client_order_id("combined", "AAPL", "enter", T, salt="r1") == "combined-AAPL-enter-20240305T1430-d34787f774"
    assert client_order_id("combined", "AAPL", "enter", T, "") == client_order_id("combined", "AAPL", "enter", T)


def test_client_order_id_cuts_the_strategy_to_twelve_characters():
    cid = client_order_id("averyverylongstrategyname", "AAPL", "trim-oco", T)
    assert cid == "averyverylon-AAPL-trim-oco-20240305T1430-4136ede4fc"
    assert role_from_client_id(cid) == "protect"


@pytest.mark.parametrize("n", [90, 107, 108, 200])
def test_client_order_id_never_exceeds_alpaca_limit(n):
    cid = client_order_id("combined", "AAPL", "x" * n, T)
    full = 8 + 1 + 4 + 1 + n + 1 + 13 + 1 + 10
    assert len(cid) == min(full, 128)
    assert cid.startswith("combined-AAPL-xxx")


def test_client_order_id_differs_by_each_part():
    base = client_order_id("combined", "AAPL", "enter", T)
    others = [client_order_id("combined2", "AAPL", "enter", T), client_order_id("combined", "MSFT", "enter", T),
              client_order_id("combined", "AAPL", "exit", T), client_order_id("combined", "AAPL", "enter",
                                                                              datetime(2024, 3, 5, 14, 30, 1)),
              client_order_id("combined", "AAPL", "enter", T, salt="1")]
    assert len({base, *others}) == 6
    # a second within the same minute: same stamp, different hash
    assert others[3].rsplit("-", 1)[0] == base.rsplit("-", 1)[0]


@pytest.mark.parametrize("intent, role", sorted(ROLE_OF_INTENT.items()))
def test_every_intent_has_its_role_back_from_the_id(intent, role):
    assert role_from_client_id(client_order_id("combined", "AAPL", intent, T)) == role


def test_role_table_is_exact():
    assert ROLE_OF_INTENT == {
        "enter": "entry", "hedge": "hedge", "protect": "protect", "exit": "exit", "trim": "trim",
        "trim-oco": "protect", "unhedge": "unhedge", "partial": "partial", "partial-oco": "protect",
        "time-exit": "time-exit", "model-exit": "model-exit", "flatten": "flatten", "reprotect": "protect",
        "cover": "cover"}


@pytest.mark.parametrize("cid, role", [
    (None, None), ("", None), ("abc", None), ("a-b-c-d", None), ("s-AAPL-enter-20240305T1430-abc", "entry"),
    ("s-AAPL-time-exit-20240305T1430-abc", "time-exit"), ("s-AAPL-model-exit-20240305T1430-abc", "model-exit"),
    ("s-AAPL-bogus-20240305T1430-abc", None),
    ("s-AAPL-enter-20240305T1430", None), ("0b1c2d3e-aaaa-bbbb-cccc-dddddddddddd", None),
])
def test_role_from_client_id_reads_only_the_bots_ids(cid, role):
    assert role_from_client_id(cid) == role


def test_order_ids_are_client_order_ids_of_the_slot():
    ids = OrderIds("combined", T)
    assert ids("AAPL", "enter") == "combined-AAPL-enter-20240305T1430-008d439c5d"
    assert ids("MSFT", "exit") == client_order_id("combined", "MSFT", "exit", T)
    assert OrderIds("combined", T)("AAPL", "enter") == ids("AAPL", "enter")


@pytest.mark.parametrize("now, minutes, slot", [
    ("2024-03-05 10:33:20", 1, "2024-03-05 10:33:00"),
    ("2024-03-05 10:33:20", 0.5, "2024-03-05 10:33:00"),
    ("2024-03-05 10:33:20", 0, "2024-03-05 10:33:00"),
    ("2024-03-05 10:33:20", -5, "2024-03-05 10:33:00"),
    ("2024-03-05 10:33:20", 2, "2024-03-05 10:32:00"),
    ("2024-03-05 10:33:20", 5.9, "2024-03-05 10:30:00"),
    ("2024-03-05 10:59:59", 60, "2024-03-05 10:00:00"),
    ("2024-03-05 10:00:00", 60, "2024-03-05 10:00:00"),
])
def test_floor_time_is_the_slot(now, minutes, slot):
    out = floor_time(pd.Timestamp(now), minutes)
    assert isinstance(out, pd.Timestamp)
    assert out == pd.Timestamp(slot)


def test_same_slot_same_ids_next_slot_new_ids():
    a = OrderIds("combined", floor_time(datetime(2024, 3, 5, 10, 5), 60))("AAPL", "enter")
    b = OrderIds("combined", floor_time(datetime(2024, 3, 5, 10, 55), 60))("AAPL", "enter")
    c = OrderIds("combined", floor_time(datetime(2024, 3, 5, 11, 0), 60))("AAPL", "enter")
    assert a == b != c
    assert a.split("-")[3] == "20240305T1000" and c.split("-")[3] == "20240305T1100"


# ---------------------------------------------------------------------------------------------- value objects
def bracket(**kw):
    args = dict(symbol="AAPL", qty=3, reference_price=D("100.00"), take_profit=D("110.00"), stop_loss=D("95.00"),
                client_order_id="cid")
    return BracketOrder(**{**args, **kw})


def test_bracket_defaults_and_notional():
    b = bracket()
    assert (b.side, b.time_in_force) == ("buy", "gtc")
    assert b.notional == 300.0
    small = bracket(qty=2, reference_price=D("12.34"), take_profit=D("13.00"), stop_loss=D("12.00"))
    assert small.notional == pytest.approx(24.68)
    assert bracket(time_in_force="day").time_in_force == "day"


@pytest.mark.parametrize("tp, sl", [
    (D("100.01"), D("99.99")),  # the exact cent gaps are allowed
    (D("100.01"), D("0.01")),
])
def test_bracket_cent_gap_boundaries_are_valid(tp, sl):
    b = bracket(take_profit=tp, stop_loss=sl)
    assert (b.take_profit, b.stop_loss) == (tp, sl)


@pytest.mark.parametrize("kw, message", [
    (dict(qty=0), "a bracket order needs a whole number of shares >= 1, got 0"),
    (dict(qty=-2), "a bracket order needs a whole number of shares >= 1, got -2"),
    (dict(qty=1.0), "a bracket order needs a whole number of shares >= 1, got 1.0"),
    (dict(qty=True), "a bracket order needs a whole number of shares >= 1, got True"),
    (dict(qty="3"), "a bracket order needs a whole number of shares >= 1, got '3'"),
    (dict(take_profit=D("110.001")), "take_profit.limit_price=110.001 is not a valid price increment"),
    (dict(take_profit=110.0), "take_profit.limit_price=110.0 is not a valid price increment"),
    (dict(stop_loss=D("95.005")), "stop_loss.stop_price=95.005 is not a valid price increment"),
    (dict(stop_loss=D("0")), "stop_loss.stop_price=0 is not a valid price increment"),
    (dict(take_profit=D("100.00")), "take-profit 100.00 is not >= reference 100.00 + 0.01"),
    (dict(stop_loss=D("100.00")), "stop 100.00 is not <= reference 100.00 - 0.01"),
    (dict(time_in_force="ioc"), "bracket orders must be day or gtc"),
    (dict(time_in_force="GTC"), "bracket orders must be day or gtc"),
])
def test_invalid_bracket_fields(kw, message):
    with pytest.raises(InvalidOrder) as err:
        bracket(**kw)
    assert str(err.value) == message


def test_bracket_qty_one_is_enough():
    assert bracket(qty=1).qty == 1


def oco(**kw):
    args = dict(symbol="AAPL", qty=3, take_profit=D("110.00"), stop_loss=D("95.00"), client_order_id="cid")
    return OcoOrder(**{**args, **kw})


def test_oco_defaults_and_cent_boundary():
    o = oco()
    assert (o.side, o.time_in_force, o.qty) == ("sell", "gtc", 3)
    assert oco(take_profit=D("95.01"), stop_loss=D("95.00")).stop_loss == D("95.00")
    assert oco(qty=1).qty == 1


@pytest.mark.parametrize("kw, message", [
    (dict(qty=0), "an OCO order needs a whole number of shares >= 1, got 0"),
    (dict(qty=2.5), "an OCO order needs a whole number of shares >= 1, got 2.5"),
    (dict(take_profit=D("110.001")), "take_profit.limit_price=110.001 is not a valid price increment"),
    (dict(stop_loss=D("95.001")), "stop_loss.stop_price=95.001 is not a valid price increment"),
    (dict(take_profit=D("95.00")), "OCO stop 95.00 is not <= take-profit 95.00 - 0.01"),
    (dict(take_profit=D("95.00"), stop_loss=D("95.01")), "OCO stop 95.01 is not <= take-profit 95.00 - 0.01"),
])
def test_invalid_oco_fields(kw, message):
    with pytest.raises(InvalidOrder) as err:
        oco(**kw)
    assert str(err.value) == message


@pytest.mark.parametrize("qty", [1, 0.5, 0.123456789, 1e-9, 2.5, 1000])
def test_market_order_accepts_positive_quantities_with_nine_decimals(qty):
    m = MarketOrder("AAPL", qty, "sell", "cid")
    assert (m.qty, m.time_in_force) == (qty, "day")


@pytest.mark.parametrize("qty", [0, -1, 0.0, float("nan"), float("inf"), 0.1234567891, 1e-10, 1.0000000001])
def test_market_order_refuses_bad_quantities(qty):
    with pytest.raises(InvalidOrder) as err:
        MarketOrder("AAPL", qty, "sell", "cid")
    assert str(err.value) == f"a market order needs a positive quantity with at most 9 decimals, got {qty!r}"


@pytest.mark.parametrize("tif", ["gtc", "DAY", "ioc"])
def test_market_orders_are_day_only(tif):
    with pytest.raises(InvalidOrder) as err:
        MarketOrder("AAPL", 1, "buy", "cid", time_in_force=tif)
    assert str(err.value) == "market orders are sent DAY (fractional quantities must be DAY)"


def test_limit_order_defaults_and_extended_rule():
    lim = LimitOrder("AAPL", 2, "buy", D("10.07"), "cid")
    assert (lim.extended_hours, lim.time_in_force) == (False, "day")
    assert LimitOrder("AAPL", 2, "buy", D("10.07"), "cid", time_in_force="gtc").time_in_force == "gtc"
    assert LimitOrder("AAPL", 1, "sell", D("0.5012"), "cid", extended_hours=True).extended_hours is True
    with pytest.raises(InvalidOrder) as err:
        LimitOrder("AAPL", 2, "buy", D("10.07"), "cid", extended_hours=True, time_in_force="gtc")
    assert str(err.value) == "extended hours order must be DAY limit orders"


@pytest.mark.parametrize("kw, message", [
    (dict(qty=0), "a limit order needs a whole number of shares >= 1, got 0"),
    (dict(qty=1.5), "a limit order needs a whole number of shares >= 1, got 1.5"),
    (dict(limit_price=D("10.075")), "limit_price=10.075 is not a valid price increment"),
    (dict(limit_price=D("-1.00")), "limit_price=-1.00 is not a valid price increment"),
])
def test_invalid_limit_fields(kw, message):
    args = dict(symbol="AAPL", qty=2, side="buy", limit_price=D("10.07"), client_order_id="cid")
    with pytest.raises(InvalidOrder) as err:
        LimitOrder(**{**args, **kw})
    assert str(err.value) == message


def test_stop_update_checks_its_price():
    assert StopUpdate("AAPL", "oid", D("95.01"), "cid").stop_price == D("95.01")
    for bad in (D("95.011"), D("0"), 95.01):
        with pytest.raises(InvalidOrder) as err:
            StopUpdate("AAPL", "oid", bad, "cid")
        assert str(err.value) == f"stop_price={bad} is not a valid price increment"


# ---------------------------------------------------------------------------------------------- request fields
def test_request_fields_bracket():
    assert request_fields(bracket()) == {
        "symbol": "AAPL", "qty": 3, "time_in_force": "gtc", "client_order_id": "cid", "side": "buy",
        "type": "market", "order_class": "bracket", "take_profit": {"limit_price": "110.00"},
        "stop_loss": {"stop_price": "95.00"}}


def test_request_fields_oco():
    assert request_fields(oco()) == {
        "symbol": "AAPL", "qty": 3, "time_in_force": "gtc", "client_order_id": "cid", "side": "sell",
        "type": "limit", "order_class": "oco", "limit_price": "110.00", "take_profit": {"limit_price": "110.00"},
        "stop_loss": {"stop_price": "95.00"}}


@pytest.mark.parametrize("ext", [False, True])
def test_request_fields_limit(ext):
    order = LimitOrder("SPY", 4, "sell", D("0.5012"), "cid2", extended_hours=ext)
    assert request_fields(order) == {
        "symbol": "SPY", "qty": 4, "time_in_force": "day", "client_order_id": "cid2", "side": "sell",
        "type": "limit", "order_class": "simple", "limit_price": "0.5012", "extended_hours": ext}


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_request_fields_market(side):
    assert request_fields(MarketOrder("SPY", 0.25, side, "cid3")) == {
        "symbol": "SPY", "qty": 0.25, "time_in_force": "day", "client_order_id": "cid3", "side": side,
        "type": "market", "order_class": "simple"}


def test_request_fields_stop_update():
    assert request_fields(StopUpdate("AAPL", "order-1", D("96.50"), "cid4")) == {
        "replace": "order-1", "stop_price": "96.50", "symbol": "AAPL", "client_order_id": "cid4"}


# ---------------------------------------------------------------------------------------------- builders
@pytest.mark.parametrize("entry, stop_pct, target_pct, stop, target", [
    (100.0, 0.05, 0.1, "95.00", "110.01"),  # 100 * 1.1 is 110.00000000000001 in floats: rounds up, away
    (10.01, 0.0333, 0.0777, "9.67", "10.79"),
    (0.5123, 0.1, 0.1, "0.4610", "0.5636"),
    (50.0, 0.02, 0.04, "49.00", "52.00"),
    (20.0, 0.0, 0.0, "20.00", "20.00"),
])
def test_protective_levels_round_away_from_the_entry(entry, stop_pct, target_pct, stop, target):
    s, t = protective_levels(entry, stop_pct, target_pct)
    assert (str(s), str(t)) == (stop, target)


@pytest.mark.parametrize("budget, price, n", [
    (0.3, 0.1, 3),  # 2.9999999999999996 is three shares
    (10.5, 1.0, 10), (1.9999999995, 1.0, 2), (100.0, 100.0, 1), (99.99, 100.0, 0), (1e6, 333.33, 3000),
    (0.0, 10.0, 0), (-5.0, 10.0, 0), (10.0, 0.0, 0), (10.0, -1.0, 0), (float("nan"), 1.0, 0),
    (float("inf"), 1.0, 0), (float("-inf"), 1.0, 0),
])
def test_shares_for(budget, price, n):
    out = shares_for(budget, price)
    assert out == n and isinstance(out, int)


def test_build_bracket_exact_order():
    out = build_bracket("AAPL", 100.004, 5, D("95.00"), D("110.00"), "cid-1")
    assert out == BracketOrder("AAPL", 5, D("100.00"), D("110.00"), D("95.00"), "cid-1")
    assert isinstance(out.qty, int) and out.time_in_force == "gtc"


def test_build_bracket_pushes_legs_out_to_the_cent_gaps_and_onto_ticks():
    out = build_bracket("AAPL", 100.0, 2, D("100.50"), D("99.00"), "cid")
    assert (out.stop_loss, out.take_profit) == (D("99.99"), D("100.01"))
    out = build_bracket("AAPL", 100.0, 2, D("98.999"), D("101.001"), "cid")
    assert (str(out.stop_loss), str(out.take_profit)) == ("98.99", "101.01")
    out = build_bracket("PENNY", 0.5, 100, D("0.45"), D("0.55"), "cid")
    assert (out.reference_price, out.stop_loss, out.take_profit) == (D("0.5000"), D("0.45"), D("0.55"))
    out = build_bracket("PENNY", 0.0101, 100, D("0.0050"), D("0.0200"), "cid")
    assert (out.stop_loss, out.take_profit) == (D("0.0001"), D("0.0201"))


def test_build_bracket_takes_numpy_share_counts():
    out = build_bracket("AAPL", 100.0, np.int64(4), D("95.00"), D("110.00"), "cid")
    assert out.qty == 4 and type(out.qty) is int


@pytest.mark.parametrize("price, qty, session, reason", [
    (100.0, 1, "extended", "brackets are not allowed outside the regular session"),
    (0.0, 1, "regular", "no usable price (0.0)"),
    (-3.0, 1, "regular", "no usable price (-3.0)"),
    (float("nan"), 1, "regular", "no usable price (nan)"),
    (float("inf"), 1, "regular", "no usable price (inf)"),
    (1234.5, 0, "regular", "less than one whole share fits (one share costs $1,234.50; brackets need whole shares)"),
    (1234.5, -1, "regular", "less than one whole share fits (one share costs $1,234.50; brackets need whole shares)"),
    (0.01, 5, "regular", "price $0.01 is too low for a stop below it"),
    (0.004, 5, "regular", "price $0.004 is too low for a stop below it"),
])
def test_build_bracket_refusals(price, qty, session, reason):
    assert build_bracket("AAPL", price, qty, D("0.0001"), D("2000.00"), "cid", session) == Refusal("AAPL", reason)


def test_build_bracket_one_share_is_enough():
    out = build_bracket("AAPL", 1234.5, 1, D("1200.00"), D("1300.00"), "cid")
    assert isinstance(out, BracketOrder) and out.qty == 1


def test_build_bracket_for_budget_exact_order():
    out = build_bracket_for_budget("AAPL", 100.0, 1050.0, 0.05, 0.1, "cid-b")
    assert out == BracketOrder("AAPL", 10, D("100.00"), D("110.01"), D("95.00"), "cid-b")
    assert build_bracket_for_budget("AAPL", 100.0, 100.0, 0.05, 0.1, "c").qty == 1


@pytest.mark.parametrize("price, budget, qty", [(0.25, 0.5, 2), (0.5, 1.0, 2), (0.0101, 0.05, 4)])
def test_build_bracket_for_budget_under_a_dollar_still_buys_penny_shares(price, budget, qty):
    out = build_bracket_for_budget("PENNY", price, budget, 0.1, 0.1, "cid")
    assert isinstance(out, BracketOrder) and out.qty == qty


@pytest.mark.parametrize("price, budget, session, reason", [
    (0.0, 100.0, "regular", "no usable price (0.0)"),
    (float("nan"), 100.0, "regular", "no usable price (nan)"),
    (float("inf"), 100.0, "regular", "no usable price (inf)"),
    (10.0, 0.0, "regular", "no cash to spend ($0.00)"),
    (10.0, -1234.5, "regular", "no cash to spend ($-1,234.50)"),
    (10.0, float("nan"), "regular", "no cash to spend ($nan)"),
    (10.0, float("inf"), "regular", "no cash to spend ($inf)"),
    (10.0, 0.5, "regular", "one share costs $10.00 but only $0.50 is available (brackets need whole shares)"),
    (1234.5, 1000.0, "regular", "one share costs $1,234.50 but only $1,000.00 is available "
                                "(brackets need whole shares)"),
    (100.0, 1000.0, "extended", "brackets are not allowed outside the regular session"),
])
def test_build_bracket_for_budget_refusals(price, budget, session, reason):
    out = build_bracket_for_budget("AAPL", price, budget, 0.05, 0.1, "cid", session)
    assert out == Refusal("AAPL", reason)


def test_build_oco_exact_order():
    out = build_oco("AAPL", 7.0, 100.0, D("95.00"), D("110.00"), "cid-o")
    assert out == OcoOrder("AAPL", 7, D("110.00"), D("95.00"), "cid-o")
    assert type(out.qty) is int


@pytest.mark.parametrize("qty, whole", [(2.9999999999, 3), (3.5, 3), (1.0, 1), (1.0000001, 1), (0.9999999999, 1)])
def test_build_oco_protects_the_whole_shares(qty, whole):
    assert build_oco("AAPL", qty, 100.0, D("95.00"), D("110.00"), "cid").qty == whole


def test_build_oco_cent_boundaries_and_ticks():
    out = build_oco("AAPL", 2, 100.004, D("99.99"), D("100.01"), "cid")
    assert (out.stop_loss, out.take_profit) == (D("99.99"), D("100.01"))
    out = build_oco("AAPL", 2, 100.0, D("95.005"), D("110.005"), "cid")
    assert (str(out.stop_loss), str(out.take_profit)) == ("95.01", "110.01")
    out = build_oco("AAPL", 2, 0.01, D("0"), D("0.02"), "cid")
    assert out == Refusal("AAPL", "stop price must be above zero")


@pytest.mark.parametrize("qty, last, stop, target, reason", [
    (0.5, 100.0, "95.00", "110.00", "0.5 shares: less than one whole share cannot carry an OCO"),
    (0.0, 100.0, "95.00", "110.00", "0 shares: less than one whole share cannot carry an OCO"),
    (-2.0, 100.0, "95.00", "110.00", "-2 shares: less than one whole share cannot carry an OCO"),
    (0.999998, 100.0, "95.00", "110.00", "0.999998 shares: less than one whole share cannot carry an OCO"),
    (2, 0.0, "95.00", "110.00", "no usable price (0.0)"),
    (2, -1.0, "95.00", "110.00", "no usable price (-1.0)"),
    (2, float("nan"), "95.00", "110.00", "no usable price (nan)"),
    (2, float("inf"), "95.00", "110.00", "no usable price (inf)"),
    (2, 100.0, "100.00", "110.00", "stop 100.00 is not below the price 100.00"),
    (2, 100.0, "99.995", "110.00", "stop 99.995 is not below the price 100.00"),
    (2, 100.0, "95.00", "100.00", "take-profit 100.00 is not above the price 100.00"),
    (2, 100.0, "95.00", "100.005", "take-profit 100.005 is not above the price 100.00"),
    (2, 100.0, "0", "110.00", "stop price must be above zero"),
    (2, 100.0, "-1.00", "110.00", "stop price must be above zero"),
])
def test_build_oco_refusals(qty, last, stop, target, reason):
    assert build_oco("AAPL", qty, last, D(stop), D(target), "cid") == Refusal("AAPL", reason)


@pytest.mark.parametrize("qty, side, price, expected", [
    (3, "sell", None, 3), (3.0, "buy", None, 3), (2.9999999999, "sell", None, 3), (0.5, "sell", None, 0.5),
    (0.1234567894, "sell", None, 0.123456789), (1e-6, "sell", None, 1e-6), (0.5, "sell", 2.0, 0.5),
    (0.5, "buy", float("nan"), 0.5), (0.5, "sell", float("inf"), 0.5), (2.5, "sell", 0.4, 2.5),
    (12.5, "buy", 0.1, 12.5), (1, "sell", 0.01, 1),
])
def test_build_market_regular_session(qty, side, price, expected):
    out = build_market("X", qty, side, "cid", price=price)
    assert out == MarketOrder("X", expected, side, "cid")
    assert type(out.qty) is type(expected)
    assert out.time_in_force == "day"


@pytest.mark.parametrize("qty, side, reason", [
    (0, "sell", "nothing to sell (0 shares)"), (-1.5, "buy", "nothing to buy (-1.5 shares)"),
    (1e-10, "sell", "nothing to sell (1e-10 shares)"), (float("nan"), "sell", "nothing to sell (nan shares)"),
])
def test_build_market_nothing_to_do(qty, side, reason):
    assert build_market("X", qty, side, "cid") == Refusal("X", reason)


@pytest.mark.parametrize("qty, price, text", [
    (5e-7, None, "5e-07"), (9.99e-7, 1e6, "9.99e-07"), (0.5, 1.98, "0.5"), (0.25, 3.99, "0.25"),
    (1.5e-3, 100.0, "0.0015"),
])
def test_build_market_dust(qty, price, text):
    out = build_market("X", qty, "sell", "cid", price=price)
    assert out == Refusal("X", f"{text} sh is dust (Alpaca refuses a fractional order worth under $1); "
                               "left as it is")
    assert out == build_market("X", qty, "sell", "cid", session="extended", price=price)


@pytest.mark.parametrize("qty, side, price, whole, limit", [
    (3, "sell", 10.01, 3, "9.95"),   # 9.95995 rounds down for a sell
    (3, "buy", 10.01, 3, "10.07"),   # 10.06005 rounds up for a buy
    (2.5, "sell", 100.0, 2, "99.50"), (2.5, "buy", 100.0, 2, "100.50"),
    (1, "buy", 0.5123, 1, "0.5149"), (1, "sell", 0.5123, 1, "0.5097"),
    (1.9999999999, "sell", 100.0, 2, "99.50"),
])
def test_build_market_extended_is_a_marketable_whole_share_limit(qty, side, price, whole, limit):
    out = build_market("X", qty, side, "cid", session="extended", price=price)
    assert out == LimitOrder("X", whole, side, D(limit), "cid", extended_hours=True)
    assert str(out.limit_price) == limit and out.time_in_force == "day"


@pytest.mark.parametrize("qty, price", [(0.5, 100.0), (3, None), (3, 0.0), (3, -5.0), (3, float("nan")),
                                        (3, float("inf"))])
def test_build_market_extended_refusals(qty, price):
    assert build_market("X", qty, "sell", "cid", session="extended", price=price) == Refusal(
        "X", "outside the regular session only whole-share limit orders with a price are allowed")


def test_build_market_default_session_is_regular():
    assert build_market("X", 3, "sell", "cid", price=100.0) == MarketOrder("X", 3, "sell", "cid")
    assert build_market("X", 3, "sell", "cid", "regular", 100.0) == MarketOrder("X", 3, "sell", "cid")


def test_refusal_is_a_value():
    r = Refusal("X", "why")
    assert (r.symbol, r.reason) == ("X", "why")
