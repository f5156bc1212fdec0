"""The fake Alpaca server's timing: asynchronous fills, cancels and replaces counted in server steps, the volume
cap, the race faults, and the paper-account defaults (shorting on, no PDT fields), through alpaca-py.

A step is one Trading API request; work queued with a delay of d steps by request N is seen by request N+d.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from alpaca.data.requests import StockLatestTradeRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)

from tests.fake_alpaca import FakeAlpaca, Settings
from tests.test_fake_alpaca import api_error, buy_limit, data, flat, hourly, make, steps, trading


@pytest.fixture
def srv():
    s = make()
    yield s
    s.stop()


def market(qty, side=OrderSide.BUY, symbol="AAPL") -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY)


def bracket(qty=10, symbol="AAPL", tp=110, sl=95) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                              order_class="bracket", take_profit=TakeProfitRequest(limit_price=tp),
                              stop_loss=StopLossRequest(stop_price=sl))


def status(s: FakeAlpaca, order_id) -> str:
    return s.orders[str(order_id)]["status"]


def filled_bracket(s: FakeAlpaca, c: TradingClient, qty=10):
    """A long AAPL bracket whose entry has filled: (entry, take-profit id, stop-loss id)."""
    b = c.submit_order(bracket(qty))
    b = c.get_order_by_id(b.id, GetOrderByIdRequest(nested=True))
    assert b.status.value == "filled"
    tp, sl = b.legs
    return b, str(tp.id), str(sl.id)


# ------------------------------------------------------------------------------------------------ defaults
def test_defaults_are_a_real_paper_account(srv):
    s = Settings()
    assert (s.shorting_enabled, s.legacy_pdt_fields) == (True, False)
    assert (s.fill_delay_steps, s.cancel_delay_steps, s.max_volume_fraction) == (1, 2, 0.1)
    c = trading(srv)
    acct = c.get("/account")
    assert acct["shorting_enabled"] is True
    assert not {"pattern_day_trader", "daytrade_count", "daytrading_buying_power"} & set(acct)
    srv.settings.legacy_pdt_fields = True
    acct = c.get("/account")
    assert (acct["pattern_day_trader"], acct["daytrade_count"], acct["daytrading_buying_power"]) == (False, 0, "0")


def test_a_sell_from_flat_opens_a_short_but_a_flip_is_refused(srv):
    c = trading(srv)
    o = c.submit_order(market(10, OrderSide.SELL))
    assert o.status.value == "new"
    pos = c.get_open_position("AAPL")
    assert (pos.qty, pos.side.value, float(pos.market_value)) == ("-10", "short", -1000.0)
    err = api_error(c.submit_order, market(15))  # buying 15 against a 10-share short would flip it
    assert err.status_code == 403 and "insufficient qty available" in err.message
    srv.settings.shorting_enabled = False  # a cash account, by name
    c.submit_order(market(10))
    steps(c, 1)
    assert api_error(c.submit_order, market(1, OrderSide.SELL)).message == "account is not allowed to short"


# ------------------------------------------------------------------------------------------------ fills
def test_a_market_order_fills_on_the_next_step_at_the_mark_then(srv):
    c = trading(srv)
    o = c.submit_order(market(10))
    assert (o.status.value, o.filled_qty, o.filled_avg_price) == ("new", "0", None)
    assert status(srv, o.id) == "new" and srv.positions() == {}  # no step has passed yet
    assert c.get_all_positions()[0].qty == "10"  # the next request sees the fill
    assert (status(srv, o.id), srv.orders[str(o.id)]["filled_avg_price"]) == ("filled", "100")


def test_fill_delay_steps_and_the_synchronous_switch(srv):
    c = trading(srv)
    srv.settings.fill_delay_steps = 3
    o = c.submit_order(market(1))
    assert [c.get_order_by_id(o.id).status.value for _ in range(3)] == ["new", "new", "filled"]
    srv.settings.fill_delay_steps = 0  # synchronous fills, for tests about something else
    assert c.submit_order(market(1)).status.value == "filled"


def test_data_requests_are_not_steps(srv):
    c, d = trading(srv), data(srv)
    o = c.submit_order(market(1))
    before = srv.step
    d.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))
    assert srv.step == before and status(srv, o.id) == "new"
    steps(c, 1)
    assert srv.step == before + 1 and status(srv, o.id) == "filled"


def test_a_marketable_limit_and_a_bracket_entry_fill_on_a_later_step(srv):
    c = trading(srv)
    lim = c.submit_order(LimitOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                           limit_price=501))
    assert lim.status.value == "new"
    b = c.submit_order(bracket())  # this request's step fills the limit
    assert status(srv, lim.id) == "filled" and srv.orders[str(lim.id)]["filled_avg_price"] == "500"
    assert b.status.value == "new" and [leg.status.value for leg in b.legs] == ["held", "held"]
    b = c.get_order_by_id(b.id, GetOrderByIdRequest(nested=True))
    assert b.status.value == "filled" and [leg.status.value for leg in b.legs] == ["new", "held"]
    assert [leg.qty for leg in b.legs] == ["10", "10"]


def test_a_clock_advance_fills_pending_orders_at_the_old_mark_before_the_bars():
    rows = flat(100.0, 8) + [(100.0, 100.5, 99.5, 100.0), (103.0, 104.0, 102.5, 103.5)] + flat(103.5, 10)
    s = make({"AAPL": hourly(rows)}, now="2024-03-05 10:30")
    try:
        c = trading(s)
        o = c.submit_order(market(5))
        s.advance(timedelta(hours=2))  # the 11:30 bar gaps to 103: the order had filled before
        assert (status(s, o.id), s.orders[str(o.id)]["filled_avg_price"]) == ("filled", "100")
        assert s.orders[str(o.id)]["filled_at"] == "2024-03-05T15:30:00.000000Z"
    finally:
        s.stop()


def test_a_large_order_fills_in_slices_of_the_bars_volume(srv):
    c = trading(srv)  # AAPL bars have 1,000 shares of volume: 100 shares a step
    o = c.submit_order(market(250))
    seen = [(g.status.value, g.filled_qty) for g in (c.get_order_by_id(o.id) for _ in range(3))]
    assert seen == [("partially_filled", "100"), ("partially_filled", "200"), ("filled", "250")]
    assert c.get_open_position("AAPL").qty == "250"
    b = c.submit_order(bracket(150, "SPY", tp=550, sl=450))
    b = c.get_order_by_id(b.id, GetOrderByIdRequest(nested=True))
    assert (b.status.value, b.filled_qty, [leg.status.value for leg in b.legs]) == (
        "partially_filled", "100", ["held", "held"])  # legs wait for the whole entry
    b = c.get_order_by_id(b.id, GetOrderByIdRequest(nested=True))
    assert b.status.value == "filled" and [(leg.status.value, leg.qty) for leg in b.legs] == [
        ("new", "150"), ("held", "150")]
    big = c.submit_order(market(300))
    srv.advance(timedelta(minutes=1))  # a clock advance settles the whole order at once
    assert (status(srv, big.id), srv.positions()["AAPL"]["qty"]) == ("filled", "550")
    srv.settings.max_volume_fraction = None  # no volume cap, by name
    o = c.submit_order(market(300))
    assert c.get_order_by_id(o.id).status.value == "filled"


# ------------------------------------------------------------------------------------------------ cancels
def test_a_cancel_is_pending_for_one_step_and_still_holds_buying_power(srv):
    c = trading(srv)
    bp = float(c.get_account().buying_power)
    o = c.submit_order(LimitOrderRequest(symbol="AAPL", qty=100, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                         limit_price=90))
    held = bp - float(c.get_account().buying_power)
    assert held == 9000
    assert c.cancel_order_by_id(o.id) is None  # 204
    assert status(srv, o.id) == "pending_cancel"
    got = c.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))  # the next request: still pending
    assert [(g.id, g.status.value) for g in got] == [(o.id, "pending_cancel")]
    assert bp - float(srv.account()["buying_power"]) == held  # ... and still reserved (srv.account is no step)
    assert c.get_orders() == []  # the second step resolves it before the request is handled
    assert float(c.get_account().buying_power) == bp


def test_a_pending_cancel_still_holds_the_shares_and_resolves_on_the_second_step(srv):
    c = trading(srv)
    srv.add_position("AAPL", 10, 90.0)
    o = c.submit_order(LimitOrderRequest(symbol="AAPL", qty=10, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
                                         limit_price=120))
    c.cancel_order_by_id(o.id)
    pos = c.get_open_position("AAPL")  # the next request still sees pending_cancel
    assert pos.qty_available == "0" and status(srv, o.id) == "pending_cancel"
    assert c.get_order_by_id(o.id).status.value == "canceled"  # the one after sees canceled
    assert c.get_open_position("AAPL").qty_available == "10"
    srv.settings.cancel_delay_steps = 0  # immediate cancels, by name
    o = c.submit_order(LimitOrderRequest(symbol="AAPL", qty=10, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
                                         limit_price=120))
    c.cancel_order_by_id(o.id)
    assert status(srv, o.id) == "canceled"


def test_a_bracket_cancel_takes_the_whole_group_through_pending_cancel(srv):
    c = trading(srv)
    b, tp, sl = filled_bracket(srv, c)
    c.cancel_order_by_id(tp)
    assert (status(srv, tp), status(srv, sl), status(srv, b.id)) == ("pending_cancel", "pending_cancel", "filled")
    steps(c, 2)
    assert (status(srv, tp), status(srv, sl)) == ("canceled", "canceled")
    assert srv.orders[tp]["canceled_at"] is not None


def test_delete_or_patch_of_a_pending_or_terminal_order_is_refused(srv):
    c = trading(srv)
    o, o2 = c.submit_order(buy_limit(90)), c.submit_order(buy_limit(89))
    c.cancel_order_by_id(o.id)
    err = api_error(c.cancel_order_by_id, o.id)
    assert (err.status_code, err.code, err.message) == (422, 42210000, 'order is already in "pending_cancel" state')
    err = api_error(c.cancel_order_by_id, o.id)
    assert err.message == 'order is already in "canceled" state'
    c.cancel_order_by_id(o2.id)
    err = api_error(c.replace_order_by_id, o2.id, ReplaceOrderRequest(limit_price=91))
    assert (err.status_code, err.code, err.message) == (
        422, 40010001, "unable to replace order, order isn't sent to exchange yet")
    err = api_error(c.replace_order_by_id, o2.id, ReplaceOrderRequest(limit_price=91))
    assert (err.status_code, err.code, err.message) == (422, 42210000, 'order is already in "canceled" state')
    m = c.submit_order(market(1))
    err = api_error(c.cancel_order_by_id, m.id)  # the fill comes first on this request's step
    assert (err.status_code, err.message) == (422, 'order is already in "filled" state')
    srv.settings.cancel_delay_steps = 3  # a longer window, to probe both halves of a pending replace
    r = c.submit_order(buy_limit(80))
    new = c.replace_order_by_id(r.id, ReplaceOrderRequest(limit_price=81))
    err = api_error(c.cancel_order_by_id, r.id)
    assert err.message == 'order is already in "pending_replace" state'
    err = api_error(c.cancel_order_by_id, new.id)
    assert err.message == 'order is already in "pending_new" state'
    assert c.cancel_order_by_id(new.id) is None  # replaced and live now: accepted


def test_cancel_all_goes_through_pending_cancel_too(srv):
    c = trading(srv)
    a, b = c.submit_order(buy_limit(90)), c.submit_order(buy_limit(91))
    answers = c.cancel_orders()
    assert sorted(r.status for r in answers) == [200, 200]
    assert {status(srv, a.id), status(srv, b.id)} == {"pending_cancel"}
    steps(c, 2)
    assert {status(srv, a.id), status(srv, b.id)} == {"canceled"}


def test_cancel_all_cannot_cancel_an_order_in_the_middle_of_a_replace(srv):
    c = trading(srv)
    o = c.submit_order(buy_limit(90))
    new = c.replace_order_by_id(o.id, ReplaceOrderRequest(limit_price=91))
    answers = {str(r.id): r.status for r in c.cancel_orders()}
    assert answers == {str(o.id): 500, str(new.id): 500}
    steps(c, 1)
    assert (status(srv, o.id), status(srv, new.id)) == ("replaced", "new")  # the replacement survived


def test_close_all_positions_with_cancel_orders_waits_for_its_own_cancels(srv):
    c = trading(srv)
    filled_bracket(srv, c)
    closed = c.close_all_positions(cancel_orders=True)
    assert [(r.symbol, r.status) for r in closed] == [("AAPL", 200)]
    steps(c, 1)
    assert c.get_all_positions() == [] and c.get_orders() == []


def test_a_clock_advance_confirms_pending_cancels_before_the_bars():
    rows = flat(100.0, 8) + [(100.0, 100.5, 98.0, 99.0)] + flat(99.0, 10)
    s = make({"AAPL": hourly(rows)}, now="2024-03-05 10:30")
    try:
        c = trading(s)
        o = c.submit_order(buy_limit(98.5))
        c.cancel_order_by_id(o.id)
        s.advance(timedelta(hours=1))  # the bar's low (98) would have filled it
        assert status(s, o.id) == "canceled" and s.positions() == {}
    finally:
        s.stop()


# ------------------------------------------------------------------------------------------------ replaces
def test_a_replace_is_pending_then_the_old_order_is_replaced(srv):
    c = trading(srv)
    o = c.submit_order(buy_limit(90))
    new = c.replace_order_by_id(o.id, ReplaceOrderRequest(limit_price=92))
    assert (new.status.value, new.replaces, new.limit_price) == ("pending_new", o.id, "92")
    old = c.get_order_by_id(o.id)
    assert (old.status.value, old.replaced_by) == ("pending_replace", None)
    open_ids = {g.id for g in c.get_orders()}  # step 2: resolved
    assert open_ids == {new.id}
    assert (status(srv, o.id), srv.orders[str(o.id)]["replaced_by"], status(srv, new.id)) == (
        "replaced", str(new.id), "new")
    srv.settings.cancel_delay_steps = 0  # immediate replaces, by name
    newer = c.replace_order_by_id(new.id, ReplaceOrderRequest(limit_price=93))
    assert newer.status.value == "new" and status(srv, new.id) == "replaced"


def test_a_pending_replace_reserves_the_larger_of_the_old_and_the_new_order(srv):
    c = trading(srv)
    bp = float(c.get_account().buying_power)
    o = c.submit_order(LimitOrderRequest(symbol="AAPL", qty=100, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                         limit_price=90))
    new = c.replace_order_by_id(o.id, ReplaceOrderRequest(qty=150))
    assert bp - float(c.get_account().buying_power) == 13_500  # pending: the new, larger order
    assert bp - float(c.get_account().buying_power) == 13_500  # replaced: the new order
    newer = c.replace_order_by_id(new.id, ReplaceOrderRequest(qty=50))
    assert bp - float(c.get_account().buying_power) == 13_500  # pending: the old, larger order
    assert bp - float(c.get_account().buying_power) == 4_500
    assert status(srv, newer.id) == "new"
    err = api_error(c.replace_order_by_id, newer.id, ReplaceOrderRequest(qty=2_500))  # 225,000 > 195,500
    assert (err.status_code, err.message) == (403, "insufficient buying power")


def test_a_replaced_bracket_leg_stays_in_the_group(srv):
    c = trading(srv)
    b, tp, sl = filled_bracket(srv, c)
    new_sl = c.replace_order_by_id(sl, ReplaceOrderRequest(stop_price=96))
    assert c.get_open_position("AAPL").qty_available == "0"  # the pending pair still holds the shares once
    steps(c, 1)
    nested = c.get_order_by_id(b.id, GetOrderByIdRequest(nested=True))
    assert {str(leg.id): leg.status.value for leg in nested.legs} == {tp: "new", str(new_sl.id): "held"}


def test_a_replacement_is_rejected_when_its_old_order_is_canceled_first(srv):
    c = trading(srv)
    _, tp, sl = filled_bracket(srv, c)
    new_sl = c.replace_order_by_id(sl, ReplaceOrderRequest(stop_price=96))
    c.cancel_order_by_id(tp)  # the group, the stop in the middle of its replace included, goes pending_cancel
    assert (status(srv, sl), status(srv, new_sl.id)) == ("pending_cancel", "pending_new")
    steps(c, 2)
    assert (status(srv, tp), status(srv, sl), status(srv, new_sl.id)) == ("canceled", "canceled", "rejected")
    assert c.get_open_position("AAPL").qty_available == "10"


# ------------------------------------------------------------------------------------------------ quantities
def test_quantities_with_more_than_nine_decimals_are_refused(srv):
    c = trading(srv)
    base = {"symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day"}
    err = api_error(c.post, "/orders", {**base, "qty": "0.1234567891"})
    assert (err.status_code, err.code, err.message) == (422, 40010001, "qty must have no more than 9 decimal places")
    err = api_error(c.post, "/orders", {**base, "notional": "10.1234567891"})
    assert err.message == "notional must have no more than 9 decimal places"
    assert c.post("/orders", {**base, "qty": "0.123456789"})["qty"] == "0.123456789"
    o = c.submit_order(buy_limit(90))
    err = api_error(c.patch, f"/orders/{o.id}", {"qty": "2.0000000001"})
    assert (err.status_code, err.code) == (422, 40010001) and "9 decimal places" in err.message
    srv.add_position("SPY", 3, 400.0)
    err = api_error(c.close_position, "SPY", ClosePositionRequest(qty="1.0000000001"))
    assert (err.status_code, err.code) == (422, 40010001)


def test_fractional_orders_worth_under_a_dollar_are_refused(srv):
    c = trading(srv)
    base = {"symbol": "AAPL", "side": "buy", "time_in_force": "day"}
    err = api_error(c.post, "/orders", {**base, "type": "market", "qty": "0.005"})  # $0.50 at the mark
    assert (err.status_code, err.code, err.message) == (403, 40310000, "cost basis must be >= 1")
    err = api_error(c.post, "/orders", {**base, "type": "market", "notional": "0.99"})
    assert (err.status_code, err.message) == (422, "notional must be >= 1")
    o = c.post("/orders", {**base, "type": "limit", "qty": "0.02", "limit_price": "60"})  # $1.20
    steps(c, 1)
    err = api_error(c.patch, f"/orders/{o['id']}", {"limit_price": "40"})  # $0.80
    assert (err.status_code, err.message) == (403, "cost basis must be >= 1")
    assert c.post("/orders", {**base, "type": "market", "qty": "0.01"})["qty"] == "0.01"  # exactly $1


# ------------------------------------------------------------------------------------------------ race faults
def test_fill_before_cancel_fills_the_stop_leg_and_answers_422(srv):
    c = trading(srv)
    _, tp, sl = filled_bracket(srv, c)
    srv.faults.add("fill_before_cancel", symbol="AAPL")
    err = api_error(c.cancel_order_by_id, sl)
    assert (err.status_code, err.code, err.message) == (422, 42210000, 'order is already in "filled" state')
    assert (status(srv, sl), srv.orders[sl]["filled_avg_price"], status(srv, tp)) == ("filled", "100", "replaced")
    assert srv.positions() == {}


def test_fill_before_cancel_on_a_take_profit_or_a_simple_sell(srv):
    c = trading(srv)
    _, tp, sl = filled_bracket(srv, c)
    srv.faults.add("fill_before_cancel", symbol="SPY")  # another symbol: this DELETE is not raced
    srv.faults.add("fill_before_cancel")  # any symbol
    assert api_error(c.cancel_order_by_id, tp).status_code == 422
    assert (status(srv, tp), status(srv, sl)) == ("filled", "canceled")
    srv.add_position("AAPL", 5, 90.0)
    o = c.submit_order(LimitOrderRequest(symbol="AAPL", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
                                         limit_price=120))
    assert c.cancel_order_by_id(o.id) is None  # the SPY fault does not race AAPL orders
    srv.faults.clear()


def test_fill_after_cancel_accepts_the_delete_but_the_leg_fills(srv):
    c = trading(srv)
    _, tp, sl = filled_bracket(srv, c)
    cash = srv.cash
    srv.faults.add("fill_after_cancel", symbol="AAPL")
    assert c.cancel_order_by_id(tp) is None  # 204
    assert (status(srv, tp), status(srv, sl)) == ("pending_cancel", "pending_cancel")
    steps(c, 2)
    assert (status(srv, tp), srv.orders[tp]["filled_avg_price"], status(srv, sl)) == ("filled", "100", "canceled")
    assert srv.positions() == {} and srv.cash == cash + 1000


def test_cancel_never_confirmed_holds_the_cancel_until_the_fault_is_removed(srv):
    c = trading(srv)
    _, tp, sl = filled_bracket(srv, c)
    fault = srv.faults.add("cancel_never_confirmed", symbol="AAPL")
    c.cancel_order_by_id(sl)
    steps(c, 5)
    srv.advance(timedelta(minutes=5))
    assert (status(srv, tp), status(srv, sl)) == ("pending_cancel", "pending_cancel")
    assert c.get_open_position("AAPL").qty_available == "0"  # still holding the shares
    assert len(c.get_orders()) == 2
    srv.faults.remove(fault)
    steps(c, 1)
    assert (status(srv, tp), status(srv, sl)) == ("canceled", "canceled")
