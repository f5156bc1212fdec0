"""The fake Alpaca server (tests/fake_alpaca), driven through the real alpaca-py clients."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pandas as pd
import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockSnapshotRequest,
)
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetCalendarRequest,
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from tests.fake_alpaca import FakeAlpaca

NY = "America/New_York"
DAYS = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]  # Mon..Fri, no holiday


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=NY)


def hourly(rows: list[tuple[float, float, float, float]], days=DAYS) -> pd.DataFrame:
    """Hourly bars stamped 09:30 .. 15:30 (the project's convention), filled day by day from `rows` (o, h, l, c)."""
    stamps = [ts(f"{d} 09:30") + pd.Timedelta(hours=h) for d in days for h in range(7)][:len(rows)]
    o, h, lo, c = zip(*rows[:len(stamps)], strict=True)
    return pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": 1000.0},
                        index=pd.DatetimeIndex(stamps))


def flat(price: float, n: int) -> list[tuple[float, float, float, float]]:
    return [(price, price + 0.5, price - 0.5, price)] * n


def make(bars=None, now="2024-03-05 10:30", **kw) -> FakeAlpaca:
    bars = bars if bars is not None else {"AAPL": hourly(flat(100.0, 35)), "SPY": hourly(flat(500.0, 35))}
    return FakeAlpaca(bars, now=ts(now) if now else None, **kw).start()


@pytest.fixture
def srv():
    s = make()
    yield s
    s.stop()


def trading(s: FakeAlpaca) -> TradingClient:
    c = TradingClient(s.key, s.secret, paper=True, url_override=s.url)
    c._retry = 0
    return c


def data(s: FakeAlpaca) -> StockHistoricalDataClient:
    return StockHistoricalDataClient(s.key, s.secret, url_override=s.url)


def buy_limit(price, client_order_id=None) -> LimitOrderRequest:
    """One AAPL share, GTC, at `price`: the resting buy most tests need."""
    return LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                             limit_price=price, client_order_id=client_order_id)


def steps(c: TradingClient, n: int) -> None:
    """Let n server steps pass (each Trading API request is one; pending fills and cancels resolve on steps)."""
    for _ in range(n):
        c.get_clock()


def api_error(fn, *args) -> APIError:
    with pytest.raises(APIError) as e:
        fn(*args)
    return e.value


# ------------------------------------------------------------------------------------------------ shapes
def test_every_trading_shape_parses_in_alpaca_py(srv):
    c = trading(srv)
    acct = c.get_account()
    assert acct.status.value == "ACTIVE" and float(acct.cash) == 100_000 and acct.multiplier == "2"
    assert acct.daytrading_buying_power is None
    clock = c.get_clock()
    assert clock.is_open and clock.next_close.hour == 16
    cal = c.get_calendar(GetCalendarRequest(start="2024-03-01", end="2024-03-08"))
    assert [d.date.day for d in cal] == [1, 4, 5, 6, 7, 8] and cal[0].open.hour == 9
    assert {a.symbol for a in c.get_all_assets()} == {"AAPL", "SPY"}
    assert c.get_asset("SPY").exchange.value == "ARCA"
    assert api_error(c.get_asset, "XYZ").status_code == 404

    order = c.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                              client_order_id="m-1"))
    assert order.status.value == "new" and order.filled_qty == "0"  # fills on a later step, never in the POST
    order = c.get_order_by_id(order.id)
    assert order.status.value == "filled" and float(order.filled_avg_price) == srv.price("AAPL") == 100.0
    pos = c.get_all_positions()
    assert [(p.symbol, p.qty, p.qty_available) for p in pos] == [("AAPL", "10", "10")]
    assert c.get_open_position("AAPL").cost_basis == "1000"
    assert api_error(c.get_open_position, "SPY").message == "position does not exist"

    br = c.submit_order(LimitOrderRequest(symbol="SPY", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                          limit_price=490, order_class="bracket",
                                          take_profit=TakeProfitRequest(limit_price=520),
                                          stop_loss=StopLossRequest(stop_price=480, limit_price=479.5)))
    assert br.status.value == "new" and [leg.status.value for leg in br.legs] == ["held", "held"]
    assert br.legs[1].type.value == "stop_limit"
    nested = c.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True))
    assert len(nested) == 2 and len(next(o for o in nested if o.symbol == "SPY").legs) == 2
    flat_list = c.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert len(flat_list) == 4 and all(o.legs is None for o in flat_list)
    assert c.get_order_by_id(br.id, GetOrderByIdRequest(nested=True)).legs[0].id == br.legs[0].id
    assert c.get_order_by_client_id("m-1").id == order.id
    assert api_error(c.get_order_by_client_id, "nope").status_code == 404

    new = c.replace_order_by_id(br.id, ReplaceOrderRequest(limit_price=491))
    assert new.replaces == br.id and float(new.limit_price) == 491 and new.status.value == "pending_new"
    assert c.get_order_by_id(br.id).status.value == "pending_replace"
    old = c.get_order_by_id(br.id)
    assert old.status.value == "replaced" and old.replaced_by == new.id
    assert c.get_order_by_id(new.id).status.value == "new"
    c.cancel_order_by_id(new.id)
    group = [new.id, *[leg.id for leg in br.legs]]
    assert {srv.orders[str(i)]["status"] for i in group} == {"pending_cancel"}
    c.get_clock(), c.get_clock()
    assert {srv.orders[str(i)]["status"] for i in group} == {"canceled"}

    closing = c.close_position("AAPL", ClosePositionRequest(qty="4"))
    assert closing.status.value == "new" and closing.qty == "4"
    assert c.get_open_position("AAPL").qty == "6"
    c.submit_order(buy_limit(90))
    assert [r.status for r in c.cancel_orders()] == [200]
    closed = c.close_all_positions(cancel_orders=True)
    assert [(r.symbol, r.status) for r in closed] == [("AAPL", 200)]
    assert c.get_all_positions() == []  # the closing order filled on this request's step
    assert srv.errors == []


def test_every_data_shape_parses_in_alpaca_py(srv):
    d = data(srv)
    bars = d.get_stock_bars(StockBarsRequest(symbol_or_symbols=["AAPL", "SPY", "NOPE"], timeframe=TimeFrame.Hour,
                                             start=datetime(2024, 3, 1), end=datetime(2024, 3, 30)))
    assert set(bars.data) == {"AAPL", "SPY"} and len(bars.data["AAPL"]) == 8  # 7 on Monday + 09:30 Tuesday
    assert bars.data["AAPL"][-1].timestamp == ts("2024-03-05 09:30")
    trade = d.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert trade.price == 100.0
    quote = d.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=["AAPL"]))["AAPL"]
    assert (quote.bid_price, quote.ask_price) == (99.99, 100.01)
    snap = d.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=["AAPL", "SPY"]))
    assert snap["SPY"].latest_trade.price == 500 and snap["SPY"].previous_daily_bar.volume == 7000
    assert snap["AAPL"].daily_bar.timestamp == ts("2024-03-05 00:00")
    latest = d.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="SPY"))["SPY"]
    assert latest.timestamp == ts("2024-03-05 09:30")
    daily = d.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Day,
                                              start=datetime(2024, 3, 1)))
    assert [b.timestamp for b in daily.data["AAPL"]] == [ts("2024-03-04 00:00")]  # today's bar is not over yet


# ------------------------------------------------------------------------------------------------ matching
def test_bracket_take_profit_fills_and_cancels_the_stop():
    rows = flat(100.0, 8) + [(100.5, 103.0, 100.0, 102.0), (102.0, 106.0, 101.5, 105.5)] + flat(105.0, 10)
    s = make({"AAPL": hourly(rows)}, now="2024-03-05 10:30")  # bar 8 starts now (Tuesday 10:30)
    try:
        c = trading(s)
        b = c.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.BUY,
                                              time_in_force=TimeInForce.GTC, order_class="bracket",
                                              take_profit=TakeProfitRequest(limit_price=105),
                                              stop_loss=StopLossRequest(stop_price=95)))
        tp, sl = (str(leg.id) for leg in b.legs)
        assert b.status.value == "new"
        b = c.get_order_by_id(b.id)  # the next request: the entry has filled
        assert b.status.value == "filled" and float(b.filled_avg_price) == 100.0
        assert (s.orders[tp]["status"], s.orders[sl]["status"]) == ("new", "held")
        assert s.positions()["AAPL"]["qty_available"] == "0"
        s.advance(timedelta(hours=1))  # the 10:30 bar ends: high 103, TP untouched
        assert s.orders[tp]["status"] == "new"
        s.advance(timedelta(hours=1))  # the 11:30 bar ends: high 106 crosses 105
        assert (s.orders[tp]["status"], s.orders[tp]["filled_avg_price"]) == ("filled", "105")
        assert s.orders[sl]["status"] == "canceled"
        assert s.orders[tp]["filled_at"] == "2024-03-05T17:30:00.000000Z"  # the bar's end (12:30 ET)
        assert s.positions() == {} and s.account()["cash"] == "100050"
    finally:
        s.stop()


def test_bracket_stop_gap_fills_at_the_open_and_replaces_the_take_profit():
    rows = flat(100.0, 9) + [(93.0, 94.0, 92.0, 93.5)] + flat(93.0, 10)  # the gap is the 11:30 bar
    s = make({"AAPL": hourly(rows)}, now="2024-03-05 10:30")
    try:
        c = trading(s)
        b = c.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.BUY,
                                              time_in_force=TimeInForce.GTC, order_class="bracket",
                                              take_profit=TakeProfitRequest(limit_price=110),
                                              stop_loss=StopLossRequest(stop_price=95)))
        tp, sl = (str(leg.id) for leg in b.legs)
        s.advance(timedelta(hours=2))
        assert (s.orders[sl]["status"], s.orders[sl]["filled_avg_price"]) == ("filled", "93")
        assert s.orders[tp]["status"] == "replaced"
        assert s.positions() == {} and float(s.account()["cash"]) == 100_000 - 70
    finally:
        s.stop()


def test_orders_submitted_while_closed_are_accepted_and_fill_at_the_next_open():
    rows = flat(100.0, 14) + [(101.0, 102.0, 100.5, 101.5)] + flat(101.5, 10)
    s = make({"AAPL": hourly(rows)}, now="2024-03-05 17:00")
    try:
        c = trading(s)
        assert c.get_clock().is_open is False
        o = c.submit_order(MarketOrderRequest(symbol="AAPL", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
        assert o.status.value == "accepted"
        err = api_error(c.replace_order_by_id, o.id, ReplaceOrderRequest(qty=4))
        assert (err.status_code, err.code) == (422, 40010001)
        assert "isn't sent to exchange yet" in err.message
        s.set_now(ts("2024-03-06 09:45"))
        got = c.get_order_by_id(o.id)
        assert got.status.value == "filled" and float(got.filled_avg_price) == 101.0  # the 09:30 open
        assert got.filled_at == ts("2024-03-06 09:30")
    finally:
        s.stop()


def test_limit_orders_fill_on_the_cross_or_at_a_gapping_open():
    rows = flat(100.0, 8) + [(99.5, 100.0, 98.0, 99.0), (96.0, 97.0, 95.5, 96.5)] + flat(96.0, 10)
    s = make({"AAPL": hourly(rows)}, now="2024-03-05 10:30")
    try:
        c = trading(s)
        a = c.submit_order(buy_limit(98.5))
        b = c.submit_order(buy_limit(97.0))
        m = c.submit_order(buy_limit(101.0))
        assert m.status.value == "new"
        m = c.get_order_by_id(m.id)
        assert m.status.value == "filled" and float(m.filled_avg_price) == 100.0  # marketable: the better price
        s.advance(timedelta(minutes=59))  # the 10:30 bar is not over: nothing yet
        assert s.orders[str(a.id)]["status"] == "new"
        s.advance(timedelta(minutes=1))  # 11:30: the 10:30 bar's range (low 98), then the 11:30 bar's open (96)
        assert s.orders[str(a.id)]["filled_avg_price"] == "98.5"  # crossed inside the range: the limit
        assert s.orders[str(b.id)]["filled_avg_price"] == "96"  # gapped through: the open
        assert s.orders[str(b.id)]["filled_at"] == "2024-03-05T16:30:00.000000Z"
    finally:
        s.stop()


def test_trailing_stop_tracks_the_high_water_mark():
    rows = flat(100.0, 8) + [(100.0, 104.0, 99.8, 103.5), (103.5, 103.8, 101.5, 102.0)] + flat(102.0, 10)
    s = make({"AAPL": hourly(rows)}, now="2024-03-05 10:30")
    try:
        s.add_position("AAPL", 5, 90.0)
        c = trading(s)
        t = c.submit_order(TrailingStopOrderRequest(symbol="AAPL", qty=5, side=OrderSide.SELL,
                                                    time_in_force=TimeInForce.GTC, trail_price=2.0))
        assert (t.hwm, t.stop_price) == ("100", "98")
        s.advance(timedelta(hours=1))
        assert (s.orders[str(t.id)]["hwm"], s.orders[str(t.id)]["stop_price"]) == ("104", "102")
        s.advance(timedelta(hours=1))
        assert s.orders[str(t.id)]["status"] == "filled" and s.orders[str(t.id)]["filled_avg_price"] == "102"
    finally:
        s.stop()


def test_oco_exit_stop_fills_and_the_limit_parent_is_replaced(srv):
    srv.add_position("AAPL", 10, 90.0)
    c = trading(srv)
    body = {"symbol": "AAPL", "qty": "10", "side": "sell", "type": "limit", "time_in_force": "gtc",
            "order_class": "oco", "take_profit": {"limit_price": 110}, "stop_loss": {"stop_price": 99.6}}
    o = c.post("/orders", body)
    assert o["status"] == "new" and o["legs"][0]["status"] == "held" and o["legs"][0]["type"] == "stop"
    assert srv.positions()["AAPL"]["qty_available"] == "0"
    srv.advance(timedelta(hours=1))  # low 99.5 <= 99.6
    assert srv.orders[o["legs"][0]["id"]]["status"] == "filled"
    assert srv.orders[o["id"]]["status"] == "replaced"
    assert srv.positions() == {}


def test_day_orders_expire_at_the_close_and_gtc_orders_stay(srv):
    c = trading(srv)
    day = c.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                           limit_price=90))
    gtc = c.submit_order(buy_limit(90))
    srv.set_now(ts("2024-03-05 16:05"))
    assert srv.orders[str(day.id)]["status"] == "expired"
    assert srv.orders[str(day.id)]["expired_at"] == "2024-03-05T21:00:00.000000Z"
    assert srv.orders[str(gtc.id)]["status"] == "new"
    assert [o.id for o in c.get_orders()] == [gtc.id]


# ------------------------------------------------------------------------------------------------ rules
def _long(s, qty=5):
    s.add_position("AAPL", qty, 90.0)


def _shorting(s):
    s.settings.shorting_enabled = True


BASE = {"symbol": "AAPL", "qty": "10", "side": "buy", "type": "market", "time_in_force": "day"}


def _b(**kw):
    body = dict(BASE)
    body.update(kw)
    return {k: v for k, v in body.items() if v is not None}


def _bracket(**kw):
    fields = {"order_class": "bracket", "time_in_force": "gtc", "take_profit": {"limit_price": 110},
              "stop_loss": {"stop_price": 90}}
    fields.update(kw)
    return _b(**fields)


RULES = [
    # (name, body, setup, status, code, message substring)
    ("missing symbol", _b(symbol=None), None, 422, 40010001, "symbol is required"),
    ("invalid type", _b(type="banana"), None, 422, 40010001, "invalid order type"),
    ("invalid side", _b(side="hold"), None, 422, 40010001, "invalid side"),
    ("invalid tif", _b(time_in_force="week"), None, 422, 40010001, "invalid time_in_force"),
    ("no qty", _b(qty=None), None, 422, 40010001, "qty or notional is required"),
    ("qty and notional", _b(notional="100"), None, 400, 40010001, "only one of qty or notional"),
    ("qty zero", _b(qty="0"), None, 422, 40010001, "qty must be > 0"),
    ("qty negative", _b(qty=-3), None, 422, 40010001, "qty must be > 0"),
    ("notional < 1", _b(qty=None, notional="0.5"), None, 422, 40010001, "notional must be >= 1"),
    ("limit without price", _b(type="limit"), None, 422, 40010001, "limit orders require a limit price"),
    ("stop without price", _b(type="stop"), None, 422, 40010001, "stop orders require a stop price"),
    ("stop_limit without stop", _b(type="stop_limit", limit_price=99), None, 422, 40010001,
     "stop_limit orders require a stop price"),
    ("market with limit price (lumibot limit-entry bracket)",
     _bracket(limit_price="120.0", take_profit={"limit_price": 130}, stop_loss={"stop_price": 95}), None,
     422, 40010001, "market orders require no stop or limit price"),
    ("limit with stop price", _b(type="limit", limit_price=99, stop_price=98), None, 422, 40010001,
     "limit orders require no stop price"),
    ("trailing without trail", _b(type="trailing_stop", side="sell"), None, 422, 40010001,
     "require one of trail_price or trail_percent"),
    ("trail on a limit", _b(type="limit", limit_price=99, trail_price=1), None, 422, 40010001,
     "limit orders require no trail_price"),
    ("client_order_id too long", _b(client_order_id="x" * 129), None, 422, 40010001,
     "client_order_id must be no more than 128 characters"),
    ("unknown symbol", _b(symbol="XYZ"), None, 422, 42210000, 'asset "XYZ" not found'),
    ("sub-penny limit", _b(type="limit", limit_price=99.123), None, 422, 42210000,
     "invalid limit_price 99.123. sub-penny increment does not fulfill minimum pricing criteria"),
    ("sub-penny limit as string", _b(type="limit", limit_price="99.125"), None, 422, 42210000,
     "invalid limit_price 99.125."),
    ("sub-penny stop", _b(type="stop", side="sell", stop_price=95.001), _long, 422, 42210000,
     "invalid stop_price 95.001."),
    ("sub-penny under $1", _b(type="limit", limit_price=0.12345), None, 422, 42210000, "invalid limit_price 0.12345."),
    ("4 decimals under $1 ok", _b(type="limit", limit_price=0.6013), None, 200, None, ""),
    ("sub-penny bracket leg (lumibot float)", _bracket(take_profit={"limit_price": 130.123}), None, 422, 42210000,
     "invalid take_profit.limit_price 130.123. sub-penny"),
    ("sub-penny stop leg", _bracket(stop_loss={"stop_price": 90.555}), None, 422, 42210000,
     "invalid stop_loss.stop_price 90.555."),
    ("price <= 0", _b(type="limit", limit_price=0), None, 422, 42210000, "invalid limit_price: must be > 0"),
    ("extended hours market", _b(extended_hours=True), None, 422, 42210000,
     "extended hours order must be DAY limit orders"),
    ("extended hours gtc limit", _b(type="limit", limit_price=99, time_in_force="gtc", extended_hours="True"), None,
     422, 42210000, "extended hours order must be DAY limit orders"),
    ("extended hours DAY limit ok (capitalized bool)", _b(type="limit", limit_price=99, extended_hours="True"), None,
     200, None, ""),
    ("fractional gtc (lumibot default)", _b(qty="0.25", time_in_force="gtc"), None, 422, 42210000,
     "fractional orders must be DAY orders"),
    ("fractional bracket", _bracket(qty="2.5"), None, 422, 42210000, "fractional orders must be simple orders"),
    ("fractional trailing", _b(qty="0.5", side="sell", type="trailing_stop", trail_percent="1.0"), _long, 422,
     42210000, "fractional orders must be market, limit, stop, or stop_limit orders"),
    ("fractional not fractionable", _b(qty="0.5"), lambda s: s.set_asset("AAPL", fractionable=False), 403, 40310000,
     'asset "AAPL" is not fractionable'),
    ("fractional short", _b(qty="5.5", side="sell"), _long, 403, 40310000,
     "fractional orders are not allowed to short"),
    ("stop ioc", _b(type="stop", side="sell", stop_price=95, time_in_force="ioc"), _long, 422, 42210000,
     "stop orders must be DAY or GTC orders"),
    ("opg during the day", _b(time_in_force="opg"), None, 422, 42210000, "opg orders cannot be submitted"),
    ("bracket without take profit", _bracket(take_profit=None), None, 422, 42210000,
     "bracket orders require take_profit.limit_price"),
    ("bracket without stop loss", _bracket(stop_loss=None), None, 422, 42210000,
     "bracket orders require stop_loss.stop_price"),
    ("oco without stop loss", _b(side="sell", type="limit", order_class="oco", take_profit={"limit_price": 110}),
     _long, 422, 42210000, "oco orders require stop_loss.stop_price"),
    ("bracket ioc", _bracket(time_in_force="ioc"), None, 422, 42210000, "bracket orders must be DAY or GTC orders"),
    ("bracket stop entry", _bracket(type="stop", stop_price=101), None, 422, 40010001,
     "bracket orders must be market or limit orders"),
    ("bracket extended hours", _bracket(type="limit", limit_price=100, time_in_force="day", extended_hours=True),
     None, 422, 42210000, "bracket orders cannot be extended hours orders"),
    ("bracket on a held symbol", _bracket(), _long, 422, 42210000, "bracket orders must be entry orders"),
    ("bracket take profit too close", _bracket(take_profit={"limit_price": 100}), None, 422, 42210000,
     "take_profit.limit_price must be >= base_price + 0.01"),
    ("bracket stop too high", _bracket(stop_loss={"stop_price": 100}), None, 422, 42210000,
     "stop_loss.stop_price must be <= base_price - 0.01"),
    ("limit bracket: base is the entry limit", _bracket(type="limit", limit_price=95,
                                                        stop_loss={"stop_price": 95}), None, 422, 42210000,
     "stop_loss.stop_price must be <= base_price - 0.01"),
    ("short bracket mirrors", _bracket(side="sell", take_profit={"limit_price": 95}, stop_loss={"stop_price": 99}),
     _shorting, 422, 42210000, "stop_loss.stop_price must be >= base_price + 0.01"),
    ("oco must be limit", _b(side="sell", type="market", order_class="oco", take_profit={"limit_price": 110},
                             stop_loss={"stop_price": 95}), _long, 422, 42210000, "oco orders must be limit orders"),
    ("oco stop above its take profit", _b(side="sell", type="limit", order_class="oco", qty="5",
                                          take_profit={"limit_price": 99.0}, stop_loss={"stop_price": 99.5}),
     _long, 422, 42210000, "stop_loss.stop_price must be <= base_price - 0.01"),
    ("trailing stop leg", _bracket(stop_loss={"stop_price": 90, "trail_percent": 2}), None, 422, 42210000,
     "trailing stop orders cannot be bracket legs"),
    ("legs on a simple order", _b(take_profit={"limit_price": 110}), None, 422, 40010001,
     "only valid for bracket, oco and oto"),
    ("account blocked", _b(), lambda s: setattr(s.settings, "trading_blocked", True), 403, 40310000,
     "account is not authorized to trade"),
    ("suspended by user", _b(), lambda s: setattr(s.settings, "trade_suspended_by_user", True), 403, 40310000,
     "new orders are rejected by user request"),
    ("sell more than held", _b(side="sell"), _long, 403, 40310000,
     "insufficient qty available for order (requested: 10, available: 5)"),
    ("sell when flat, shorting off", _b(side="sell"), lambda s: setattr(s.settings, "shorting_enabled", False), 403,
     40310000, "account is not allowed to short"),
    ("sell when flat shorts by default", _b(side="sell"), None, 200, None, ""),
    ("no flip to short even when shorting", _b(side="sell"), lambda s: (_long(s), _shorting(s)), 403, 40310000,
     "insufficient qty available"),
    ("not shortable", _b(side="sell"), lambda s: (_shorting(s), s.set_asset("AAPL", shortable=False)), 422,
     42210000, 'asset "AAPL" cannot be sold short'),
    ("short allowed when enabled", _b(side="sell"), _shorting, 200, None, ""),
    ("buying power", _b(qty="2000"), None, 403, 40310000, "insufficient buying power"),
    ("open buy orders reserve buying power", _b(qty="600"),
     lambda s: s.engine.submit(_b(qty="1500", type="limit", limit_price=99, time_in_force="gtc")), 403, 40310000,
     "insufficient buying power"),
    ("lumibot string qty and bracket body ok",
     {"symbol": "AAPL", "qty": "10", "side": "buy", "type": "market", "order_class": "bracket",
      "time_in_force": "gtc", "take_profit": {"limit_price": 130.12}, "stop_loss": {"stop_price": 90.0}},
     None, 200, None, ""),
    ("order_class empty string is simple", _b(order_class=""), None, 200, None, ""),
]


@pytest.mark.parametrize(("name", "body", "setup", "status", "code", "message"), RULES, ids=[r[0] for r in RULES])
def test_rule(srv, name, body, setup, status, code, message):
    if setup:
        setup(srv)
    c = trading(srv)
    if status == 200:
        assert c.post("/orders", body)["symbol"] == "AAPL"
        return
    err = api_error(c.post, "/orders", body)
    assert err.status_code == status, str(err)
    assert message in err.message
    assert err.code == code
    assert srv.rejections[-1]["status"] == status and srv.rejections[-1]["response"]["message"] == err.message


def test_rejection_bodies_carry_alpacas_extra_fields(srv):
    c = trading(srv)
    err = api_error(c.post, "/orders", _bracket(take_profit={"limit_price": 100}))
    assert err._error and '"base_price": "100"' in str(err)
    err = api_error(c.post, "/orders", _b(qty="2000"))
    assert '"buying_power": "200000"' in str(err) and '"cost_basis": "208000"' in str(err)


def test_duplicate_client_order_id_is_refused_even_after_cancel(srv):
    c = trading(srv)
    o = c.submit_order(buy_limit(90, client_order_id="abc"))
    c.cancel_order_by_id(o.id)
    err = api_error(c.submit_order, MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                                       time_in_force=TimeInForce.DAY, client_order_id="abc"))
    assert (err.status_code, err.code, err.message) == (422, 40010001, "client_order_id must be unique")


def test_bracket_legs_hold_the_shares(srv):
    c = trading(srv)
    b = c.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                          order_class="bracket", take_profit=TakeProfitRequest(limit_price=110),
                                          stop_loss=StopLossRequest(stop_price=90)))
    err = api_error(c.submit_order, MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.SELL,
                                                       time_in_force=TimeInForce.DAY))
    assert err.status_code == 403
    assert err.message == "insufficient qty available for order (requested: 10, available: 0)"
    body = srv.rejections[-1]["response"]
    assert (body["existing_qty"], body["held_for_orders"], body["available"]) == ("10", "10", "0")
    assert set(body["related_orders"]) == {str(leg.id) for leg in b.legs}
    err = api_error(c.close_position, "AAPL")
    assert err.status_code == 403 and "insufficient qty" in err.message
    assert c.get_open_position("AAPL").qty_available == "0"
    c.cancel_order_by_id(b.legs[1].id)  # cancelling one leg cancels the group
    assert {srv.orders[str(leg.id)]["status"] for leg in b.legs} == {"pending_cancel"}
    err = api_error(c.close_position, "AAPL")  # pending cancels still hold the shares
    assert err.status_code == 403 and "insufficient qty" in err.message
    c.get_clock()  # the second step after the DELETE: the cancel is confirmed
    assert {srv.orders[str(leg.id)]["status"] for leg in b.legs} == {"canceled"}
    assert c.close_position("AAPL").status.value == "new"


def test_wash_trade_protection(srv):
    srv.add_position("AAPL", 10, 90.0)
    c = trading(srv)
    stop = c.submit_order(StopOrderRequest(symbol="AAPL", qty=10, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
                                           stop_price=95))
    err = api_error(c.submit_order, MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                                       time_in_force=TimeInForce.DAY))
    assert (err.status_code, err.message) == (403, "potential wash trade detected. use complex orders")
    body = srv.rejections[-1]["response"]
    assert body["existing_order_id"] == str(stop.id)
    assert body["reject_reason"] == "opposite side market/stop order exists"
    c.cancel_order_by_id(stop.id)
    steps(c, 1)  # until the cancel is confirmed the stop still holds the shares
    c.submit_order(LimitOrderRequest(symbol="AAPL", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
                                     limit_price=105))
    err = api_error(c.submit_order, LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                                      time_in_force=TimeInForce.GTC, limit_price=105))
    assert srv.rejections[-1]["response"]["reject_reason"] == "opposite side limit order exists"
    c.submit_order(buy_limit(99))  # below the sell limit: fine
    c.submit_order(TrailingStopOrderRequest(symbol="AAPL", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
                                            trail_percent=1.0))  # new trailing stops are exempt
    c.cancel_orders()
    steps(c, 1)  # pending_cancel sells would still count as opposite-side orders
    c.submit_order(StopOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                    stop_price=101))
    oco = c.post("/orders", {"symbol": "AAPL", "qty": 10, "side": "sell", "type": "limit", "time_in_force": "gtc",
                             "order_class": "oco", "take_profit": {"limit_price": 105},
                             "stop_loss": {"stop_price": 95}})  # new complex orders are exempt
    assert oco["status"] == "new"


def test_resting_complex_legs_count_for_wash_trades_only_when_switched_on(srv):
    c = trading(srv)
    c.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                      order_class="bracket", take_profit=TakeProfitRequest(limit_price=110),
                                      stop_loss=StopLossRequest(stop_price=90)))
    c.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    srv.settings.wash_trade_counts_complex_legs = True
    err = api_error(c.submit_order, MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                                       time_in_force=TimeInForce.DAY))
    assert "wash trade" in err.message


def test_replace_and_cancel_rules(srv):
    c = trading(srv)
    o = c.submit_order(LimitOrderRequest(symbol="AAPL", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                         limit_price=95))
    err = api_error(c.replace_order_by_id, o.id, ReplaceOrderRequest(limit_price=95.123))
    assert (err.status_code, err.code) == (422, 42210000) and "invalid limit_price 95.123" in err.message
    err = api_error(c.replace_order_by_id, o.id, ReplaceOrderRequest(stop_price=90))
    assert err.status_code == 422
    new = c.replace_order_by_id(o.id, ReplaceOrderRequest(limit_price=101, client_order_id="r-1"))
    assert new.status.value == "pending_new" and new.client_order_id == "r-1" and new.replaces == o.id
    err = api_error(c.replace_order_by_id, o.id, ReplaceOrderRequest(limit_price=99))
    assert (err.status_code, err.code, err.message) == (
        422, 40010001, "unable to replace order, order isn't sent to exchange yet")  # o is pending_replace
    err = api_error(c.cancel_order_by_id, o.id)  # step 2: the replace resolves before this DELETE is handled
    assert (err.status_code, err.code, err.message) == (422, 42210000, 'order is already in "replaced" state')
    new = c.get_order_by_id(new.id)  # step 3: the live replacement is matched, now marketable
    assert new.status.value == "filled" and float(new.filled_avg_price) == 100
    err = api_error(c.replace_order_by_id, new.id, ReplaceOrderRequest(limit_price=99))
    assert (err.status_code, err.code, err.message) == (422, 42210000, 'order is already in "filled" state')
    err = api_error(c.replace_order_by_id, o.id, ReplaceOrderRequest(limit_price=99))
    assert err.message == 'order is already in "replaced" state'
    err = api_error(c.cancel_order_by_id, new.id)
    assert (err.status_code, err.code, err.message) == (422, 42210000, 'order is already in "filled" state')
    err = api_error(c.cancel_order_by_id, "00000000-0000-4000-8000-000000000000")
    assert (err.status_code, err.message) == (404, "order not found")
    b = c.submit_order(MarketOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                          order_class="bracket", take_profit=TakeProfitRequest(limit_price=510),
                                          stop_loss=StopLossRequest(stop_price=490)))
    tp, sl = b.legs
    err = api_error(c.replace_order_by_id, sl.id, ReplaceOrderRequest(stop_price=500.5))
    assert "stop_loss.stop_price must be <= base_price - 0.01" in err.message
    new_sl = c.replace_order_by_id(sl.id, ReplaceOrderRequest(stop_price=495.25))
    assert new_sl.replaces == sl.id and new_sl.status.value == "pending_new"
    nested = c.get_order_by_id(b.id, GetOrderByIdRequest(nested=True))
    assert {str(leg.id): leg.status.value for leg in nested.legs} == {str(tp.id): "new", str(sl.id): "pending_replace"}
    nested = c.get_order_by_id(b.id, GetOrderByIdRequest(nested=True))
    assert {str(leg.id): leg.status.value for leg in nested.legs} == {str(tp.id): "new", str(new_sl.id): "held"}
    assert srv.requests[-1]["query"] == {"nested": "True"}


def test_get_orders_filters(srv):
    c = trading(srv)
    for px in (91, 92, 93):
        c.submit_order(buy_limit(px))
        srv.advance(timedelta(minutes=1))
    c.submit_order(MarketOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    assert [o.limit_price for o in c.get_orders()] == ["93", "92", "91"]  # open, newest first
    asc = c.get_orders(GetOrdersRequest(direction="asc", limit=2))
    assert [o.limit_price for o in asc] == ["91", "92"]
    assert len(c.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))) == 1
    assert len(c.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["SPY"]))) == 1
    after = c.get_orders(GetOrdersRequest(after=ts("2024-03-05 10:30"), status=QueryOrderStatus.ALL))
    assert len(after) == 3  # after is exclusive


# ------------------------------------------------------------------------------------------------ data
def test_bars_paging_merges_every_page(srv):
    d = data(srv)
    srv.set_now(ts("2024-03-08 16:00"))
    srv.marketdata.max_page_size = 4
    srv.clear_log()
    req = dict(symbol_or_symbols=["SPY", "AAPL"], timeframe=TimeFrame.Hour, start=datetime(2024, 3, 4))
    everything = d.get_stock_bars(StockBarsRequest(**req))
    assert {s: len(v) for s, v in everything.data.items()} == {"AAPL": 35, "SPY": 35}
    assert srv.count("/v2/stocks/bars") == 18  # 70 bars in pages of 4
    times = [b.timestamp for b in everything.data["SPY"]]
    assert times == sorted(times) and len(set(times)) == 35
    srv.clear_log()
    some = d.get_stock_bars(StockBarsRequest(limit=10, **req))  # the limit counts across symbols
    assert {s: len(v) for s, v in some.data.items()} == {"AAPL": 10}
    assert srv.count("/v2/stocks/bars") == 3
    assert [r["query"]["limit"] for r in srv.requests] == ["10", "6", "2"]


def test_no_future_bars_and_minute_bars_aggregate_to_closed_hours():
    idx = pd.date_range(ts("2024-03-05 09:30"), periods=120, freq="1min")
    close = [100 + i * 0.01 for i in range(120)]
    df = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 10.0}, index=idx)
    s = make({"AAPL": df}, now="2024-03-05 10:45")
    try:
        d = data(s)
        req = dict(symbol_or_symbols="AAPL", start=datetime(2024, 3, 5), end=datetime(2024, 3, 6))
        minutes = d.get_stock_bars(StockBarsRequest(timeframe=TimeFrame.Minute, **req)).data["AAPL"]
        assert len(minutes) == 75 and minutes[-1].timestamp == ts("2024-03-05 10:44")
        hours = d.get_stock_bars(StockBarsRequest(timeframe=TimeFrame.Hour, **req)).data["AAPL"]
        assert [h.timestamp for h in hours] == [ts("2024-03-05 09:00")]  # 10:00 is still open at 10:45
        assert hours[0].volume == 300 and hours[0].close == close[29]
        assert d.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))["AAPL"].price == close[74]
        assert s.price("AAPL") == close[74]
    finally:
        s.stop()


# ------------------------------------------------------------------------------------------------ faults
def test_http_faults(srv):
    c = trading(srv)
    srv.faults.add("429", path="/v2/account")
    err = api_error(c.get_account)
    assert err.status_code == 429 and err.response.headers["X-Ratelimit-Remaining"] == "0"
    assert int(err.response.headers["X-Ratelimit-Reset"]) > time.time()
    assert c.get_account().cash == "100000"  # used up
    for kind in ("500", "503", "504"):
        srv.faults.add(kind, method="GET", path="/v2/clock")
        assert api_error(c.get_clock).status_code == int(kind)
    srv.faults.add("timeout", path="/v2/clock", seconds=0.3)
    t0 = time.monotonic()
    assert c.get_clock().is_open
    assert time.monotonic() - t0 >= 0.3
    srv.faults.add("500", method="POST", times=2)
    assert c.get_all_positions() == []  # GETs are not affected
    assert api_error(c.submit_order, MarketOrderRequest(symbol="AAPL", qty=1, side="buy",
                                                        time_in_force="day")).status_code == 500
    assert len(srv.orders) == 0


def test_lost_response_then_retry_hits_the_unique_client_order_id(srv):
    c = trading(srv)
    srv.faults.add("lost_response", method="POST", path="/v2/orders")
    req = MarketOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day", client_order_id="once")
    assert api_error(c.submit_order, req).status_code == 504
    assert [o["status"] for o in srv.orders.values()] == ["new"]  # it was accepted all the same
    err = api_error(c.submit_order, req)
    assert err.message == "client_order_id must be unique"
    assert c.get_order_by_client_id("once").status.value == "filled"


def test_reset_drops_the_connection_before_or_after_processing(srv):
    import requests

    c = trading(srv)
    srv.faults.add("reset", method="POST", path="/v2/orders")
    req = MarketOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day", client_order_id="r-1")
    with pytest.raises(requests.ConnectionError):
        c.submit_order(req)
    assert srv.orders == {}  # dropped before it was processed
    srv.faults.add("reset", method="POST", path="/v2/orders", after=True)
    with pytest.raises(requests.ConnectionError):
        c.submit_order(req)
    assert c.get_order_by_client_id("r-1").status.value == "filled"  # processed, the answer never came
    assert [r["status"] for r in srv.requests if r["method"] == "POST"] == ["reset", "reset"]


def test_alpaca_py_retries_504_when_retry_is_left_on(srv):
    c = trading(srv)
    c._retry, c._retry_wait = 3, 0
    srv.faults.add("504", path="/v2/account", times=2)
    assert c.get_account().status.value == "ACTIVE"
    assert srv.count("/v2/account") == 3


def test_partial_fill_completes_at_the_next_bar(srv):
    c = trading(srv)
    srv.faults.add("partial_fill", fraction=0.3)
    o = c.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side="buy", time_in_force="day"))
    o = c.get_order_by_id(o.id)  # the first fill comes one step after the POST
    assert (o.status.value, o.filled_qty) == ("partially_filled", "3")
    assert srv.positions()["AAPL"]["qty"] == "3"
    srv.advance(timedelta(hours=1))
    assert (srv.orders[str(o.id)]["status"], srv.orders[str(o.id)]["filled_qty"]) == ("filled", "10")


def test_reject_leg_fault(srv):
    c = trading(srv)
    srv.faults.add("reject_leg")
    b = c.submit_order(MarketOrderRequest(symbol="AAPL", qty=5, side="buy", time_in_force="gtc",
                                          order_class="bracket", take_profit=TakeProfitRequest(limit_price=110),
                                          stop_loss=StopLossRequest(stop_price=90)))
    assert [leg.status.value for leg in b.legs] == ["held", "held"]
    b = c.get_order_by_id(b.id, GetOrderByIdRequest(nested=True))  # the entry fills on this step
    assert [leg.status.value for leg in b.legs] == ["new", "rejected"]
    assert b.legs[1].failed_at is not None


def test_halt_symbol_fault(srv):
    c, d = trading(srv), data(srv)
    halt = srv.faults.add("halt_symbol", symbol="AAPL")
    o = c.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="gtc"))
    assert o.status.value == "new"
    before = d.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))["AAPL"].timestamp
    srv.advance(timedelta(hours=3))
    assert srv.orders[str(o.id)]["status"] == "new"
    assert d.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))["AAPL"].timestamp == before
    assert d.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="SPY"))["SPY"].timestamp > before
    srv.faults.remove(halt)
    srv.advance(timedelta(hours=1))
    assert srv.orders[str(o.id)]["status"] == "filled"


def test_stale_data_fault(srv):
    d = data(srv)
    srv.faults.add("stale_data", symbol="SPY", bars=2)
    trades = d.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=["AAPL", "SPY"]))
    assert trades["AAPL"].timestamp == ts("2024-03-05 10:30")
    assert trades["SPY"].timestamp == ts("2024-03-04 15:30")  # two bars back
    bars = d.get_stock_bars(StockBarsRequest(symbol_or_symbols=["AAPL", "SPY"], timeframe=TimeFrame.Hour,
                                             start=datetime(2024, 3, 4)))
    assert (len(bars.data["AAPL"]), len(bars.data["SPY"])) == (8, 6)


# ------------------------------------------------------------------------------------------------ transport
def test_keep_alive_reuses_one_connection(srv):
    c = trading(srv)
    for _ in range(5):
        c.get_clock()
    c.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day"))
    c.get_all_positions()
    assert srv.count("/v2/") == 7 and srv.connections_accepted == 1
    d = data(srv)
    d.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))
    d.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))
    assert srv.connections_accepted == 2


def test_auth_and_rate_limit():
    s = make(rate_limit=5)
    try:
        bad = TradingClient("PKFAKE", "wrong", paper=True, url_override=s.url)
        err = api_error(bad.get_account)
        assert (err.status_code, err.code, err.message) == (401, 40110000, "request is not authorized")
        c = trading(s)
        for _ in range(4):
            c.get_clock()
        err = api_error(c.get_clock)  # the 6th trading request inside a minute
        assert err.status_code == 429 and err.response.headers["X-Ratelimit-Limit"] == "5"
        d = data(s)  # the data API has its own budget
        q = d.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))
        assert q["AAPL"].ask_price == 100.01
        assert all(r["status"] in (200, 401, 429) for r in s.requests)
    finally:
        s.stop()
