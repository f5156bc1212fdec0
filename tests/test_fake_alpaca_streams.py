"""The fake Alpaca's websockets (tests/fake_alpaca/streams.py), driven by the REAL alpaca-py stream clients
(TradingStream, StockDataStream) in daemon threads, plus raw `websockets` clients for the protocol's errors.

alpaca-py only logs a message it cannot parse (ERROR with a traceback) and drops it, so every test fails on an
ERROR record from its stream loggers unless the test says it expects one (`stream_errors.expect`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import UTC, timedelta

import msgpack
import pytest
from alpaca.data.live import StockDataStream
from alpaca.data.models import Bar, Trade
from alpaca.data.requests import StockLatestTradeRequest
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)
from alpaca.trading.stream import TradingStream
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.fake_alpaca import FakeAlpaca, streams
from tests.fake_alpaca import server as fake_server
from tests.test_fake_alpaca import data, hourly, make, trading, ts

STREAM_LOGGERS = ("alpaca.trading.stream", "alpaca.data.live.websocket")
MSGPACK = {"Content-Type": "application/msgpack"}


def wait_until(cond, timeout: float = 5.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class StreamErrors(logging.Handler):
    """ERROR records of the alpaca-py stream loggers. A test that provokes some says so with expect(text): such
    records are allowed for the rest of the test (a client retrying a bad auth logs it again every backoff)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.allowed: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def expect(self, text: str) -> None:
        self.allowed.append(text)
        wait_until(lambda: any(text in r.getMessage() for r in self.records), what=f"an ERROR log with {text!r}")

    def unexpected(self) -> list[str]:
        msgs = [r.getMessage() for r in self.records]
        return [m for m in msgs if not any(a in m for a in self.allowed)]


@pytest.fixture(autouse=True)
def stream_errors():
    """Any unexpected ERROR record of the stream clients fails the test (validation failures are data loss)."""
    handler = StreamErrors()
    for name in STREAM_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in STREAM_LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    assert not handler.unexpected()


class Clients:
    """Real alpaca-py stream clients in daemon threads; close() stops them before the server, so that their
    run() sees the server's close and returns at once instead of polling for 5 s or reconnecting."""

    def __init__(self, srv: FakeAlpaca) -> None:
        self.srv = srv
        self.running: list[tuple[object, threading.Thread]] = []

    def trading(self, secret: str | None = None) -> tuple[TradingStream, list[TradeUpdate]]:
        got: list[TradeUpdate] = []

        async def on_update(u: TradeUpdate) -> None:
            got.append(u)

        ts = TradingStream(self.srv.key, secret or self.srv.secret, paper=True,
                           url_override=self.srv.stream_url + "/stream")
        ts.subscribe_trade_updates(on_update)
        return self._run(ts), got

    def data(self, trades=("AAPL",), bars=(), feed="iex") -> tuple[StockDataStream, list]:
        got: list = []

        async def on_data(x) -> None:
            got.append(x)

        ds = StockDataStream(self.srv.key, self.srv.secret, url_override=f"{self.srv.stream_url}/v2/{feed}")
        if trades:
            ds.subscribe_trades(on_data, *trades)
        if bars:
            ds.subscribe_bars(on_data, *bars)  # subscribed before run(): a run() without any busy-spins a core
        return self._run(ds), got

    def _run(self, stream):
        th = threading.Thread(target=stream.run, daemon=True, name="alpaca-stream-under-test")
        th.start()
        # stop() before run() has its loop raises (TradingStream) or is lost: wait for the loop
        wait_until(lambda: stream._loop is not None and stream._loop.is_running(), what="the client's loop")
        self.running.append((stream, th))
        return stream

    def close(self) -> None:
        for stream, _ in self.running:
            stream.stop()
        self.srv.stop()
        for _, th in self.running:
            th.join(timeout=10)
            assert not th.is_alive(), "a stream client did not stop"


def rising(n: int = 35):
    """Hourly bars whose close rises by 1 each hour (bar i closes at 100 + i from Monday 09:30), so prices tell
    bars apart: at the fixture's Tuesday 10:30 the price is 107 (the 09:30 bar, i = 7, has ended)."""
    return [(100.0 + i, 100.5 + i, 99.5 + i, 100.0 + i) for i in range(n)]


@pytest.fixture
def srv():
    s = make({"AAPL": hourly(rising()), "SPY": hourly([(500.0, 500.5, 499.5, 500.0)] * 35)})
    yield s
    s.stop()


@pytest.fixture
def clients(srv):
    c = Clients(srv)
    yield c
    c.close()


def connected(srv: FakeAlpaca, trading_n: int = 1, data_n: int = 0):
    want = {"trading": trading_n, "data": data_n}
    wait_until(lambda: srv.stream_connections() == want, what=f"stream connections {want}")


def events(got: list[TradeUpdate], order_id) -> list[str]:
    return [u.event for u in got if str(u.order.id) == str(order_id)]


def wait_events(got, order_id, expected: list[str]) -> list[TradeUpdate]:
    wait_until(lambda: len(events(got, order_id)) >= len(expected), what=f"events {expected}")
    assert events(got, order_id) == expected
    return [u for u in got if str(u.order.id) == str(order_id)]


def market(qty: float, side=OrderSide.BUY) -> MarketOrderRequest:
    return MarketOrderRequest(symbol="AAPL", qty=qty, side=side, time_in_force=TimeInForce.DAY)


def buy_limit(price: float) -> LimitOrderRequest:
    return LimitOrderRequest(symbol="AAPL", qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                             limit_price=price)


# ---------------------------------------------------------------------------------------------- trade_updates
def test_order_events_leave_only_after_the_rest_response(srv, clients, monkeypatch):
    """With fills inside the POST (fill_delay_steps 0) both `new` and `fill` exist before the response is
    written; the server still sends them only after it."""
    seq: list[tuple] = []
    send, publish = fake_server.Handler._send, streams.StreamServer.publish_trade_updates

    def logged_send(self, status, payload, headers):
        send(self, status, payload, headers)
        seq.append(("response", self.command, self.path))

    def logged_publish(self, msgs):
        seq.append(("events", [m["data"]["event"] for m in msgs]))
        publish(self, msgs)

    monkeypatch.setattr(fake_server.Handler, "_send", logged_send)
    monkeypatch.setattr(streams.StreamServer, "publish_trade_updates", logged_publish)
    srv.settings.fill_delay_steps = 0
    _, got = clients.trading()
    connected(srv)
    o = trading(srv).submit_order(market(10))
    new, fill = wait_events(got, o.id, ["new", "fill"])
    assert seq.index(("response", "POST", "/v2/orders")) < seq.index(("events", ["new", "fill"]))
    assert isinstance(fill, TradeUpdate) and fill.event == "fill" and new.order.status.value == "new"


def test_market_order_new_then_fill_with_execution_fields(srv, clients):
    _, got = clients.trading()
    connected(srv)
    c = trading(srv)
    o = c.submit_order(market(10))
    wait_events(got, o.id, ["new"])
    assert [m["data"]["event"] for m in srv.trade_updates_sent] == ["new"]  # the fill is one step later
    c.get_order_by_id(o.id)  # a step: the first match is due
    new, fill = wait_events(got, o.id, ["new", "fill"])
    assert fill.price == 107.0 == srv.price("AAPL") and fill.qty == 10 and fill.position_qty == 10
    assert uuid.UUID(str(fill.execution_id)) and fill.timestamp == srv.now.astimezone(UTC)
    assert fill.order.filled_qty == "10" and float(fill.order.filled_avg_price) == 107.0
    assert fill.order.status.value == "filled" and new.order.id == fill.order.id == o.id
    sent = srv.trade_updates_sent[-1]["data"]  # strings on the wire, as in Alpaca's docs
    assert (sent["price"], sent["qty"], sent["position_qty"]) == ("107", "10", "10")

    srv.faults.add("partial_fill", fraction=0.5)
    sell = c.submit_order(market(4, OrderSide.SELL))
    c.get_order_by_id(sell.id)
    part = wait_events(got, sell.id, ["new", "partial_fill"])[1]
    assert (part.qty, part.position_qty, part.order.filled_qty) == (2, 8, "2")
    srv.advance(timedelta(hours=1))  # the rest fills at the next bar's open
    done = wait_events(got, sell.id, ["new", "partial_fill", "fill"])[2]
    assert (done.qty, done.price, done.position_qty, done.order.filled_qty) == (2, 109.0, 6, "4")
    assert float(done.order.filled_avg_price) == 108.0  # cumulative in the order, per execution in the event


def test_cancel_produces_pending_cancel_then_canceled(srv, clients):
    _, got = clients.trading()
    connected(srv)
    c = trading(srv)
    o = c.submit_order(buy_limit(50))
    c.cancel_order_by_id(o.id)
    wait_events(got, o.id, ["new", "pending_cancel"])
    c.get_order_by_id(o.id)
    c.get_order_by_id(o.id)  # cancel_delay_steps = 2
    canceled = wait_events(got, o.id, ["new", "pending_cancel", "canceled"])[2]
    assert canceled.order.status.value == "canceled" and canceled.order.canceled_at is not None


def test_bracket_legs_get_their_own_events_and_push_trade_triggers_the_stop(srv, clients):
    _, got = clients.trading()
    connected(srv)
    c = trading(srv)
    req = MarketOrderRequest(symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                             order_class="bracket", take_profit=TakeProfitRequest(limit_price=120),
                             stop_loss=StopLossRequest(stop_price=95))
    parent = c.submit_order(req)
    tp, sl = (str(leg.id) for leg in parent.legs)
    srv.settle()
    new = wait_events(got, parent.id, ["new", "fill"])[0]
    assert len(new.order.legs) == 2  # the parent's order JSON nests its legs, as REST does
    wait_events(got, tp, ["new"])
    srv.push_trade("AAPL", 94.0)  # through the stop: the stop leg fills at the print
    sl_fill = wait_events(got, sl, ["fill"])[0]
    assert (sl_fill.price, sl_fill.qty, sl_fill.position_qty) == (94.0, 10, 0)
    wait_until(lambda: len(events(got, tp)) == 2, what="the take-profit's end")
    assert events(got, tp)[1] in ("canceled", "replaced")


def test_patch_produces_replaced_and_the_replacement_goes_new(srv, clients):
    _, got = clients.trading()
    connected(srv)
    c = trading(srv)
    old = c.submit_order(buy_limit(50))
    new = c.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=60))
    wait_events(got, new.id, ["pending_new"])
    srv.settle()
    replaced = wait_events(got, old.id, ["new", "pending_replace", "replaced"])[2]
    assert str(replaced.order.replaced_by) == str(new.id)
    live = wait_events(got, new.id, ["pending_new", "new"])[1]
    assert float(live.order.limit_price) == 60 and str(live.order.replaces) == str(old.id)


def test_expiry_and_an_order_accepted_while_closed(srv, clients):
    """A day order expires at the close; one placed after it is `accepted` and goes `new` at the next open, each
    event stamped with the simulated time it happened."""
    _, got = clients.trading()
    connected(srv)
    c = trading(srv)
    day = c.submit_order(buy_limit(50))
    srv.set_now(ts("2024-03-05 17:00"))
    expired = wait_events(got, day.id, ["new", "expired"])[1]
    assert expired.timestamp.isoformat() == "2024-03-05T21:00:00+00:00"  # 16:00 New York
    late = c.submit_order(buy_limit(50))
    srv.set_now(ts("2024-03-06 09:45"))
    opened = wait_events(got, late.id, ["accepted", "new"])[1]
    assert opened.timestamp.isoformat() == "2024-03-06T14:30:00+00:00"  # the 09:30 open


# ---------------------------------------------------------------------------------------------- market data
def test_trades_and_bars_arrive_when_the_clock_moves(srv, clients):
    _, got = clients.data(trades=("AAPL",), bars=("AAPL",))
    connected(srv, 0, 1)
    wait_until(lambda: srv.data_subscriptions("bars") == {"AAPL"}, what="the bar subscription")
    srv.advance(timedelta(hours=2))  # 10:30 -> 12:30: the 10:30 and 11:30 bars completed
    wait_until(lambda: len(got) == 3, what="two bars and a trade")
    b1, b2, trade = got
    assert isinstance(b1, Bar) and isinstance(trade, Trade)
    assert [b.timestamp for b in (b1, b2)] == [srv.now.astimezone(UTC) - timedelta(hours=h) for h in (2, 1)]
    assert (b2.open, b2.high, b2.low, b2.close, b2.trade_count) == (109.0, 109.5, 108.5, 109.0, 10)
    assert trade.symbol == "AAPL" and trade.timestamp == srv.now.astimezone(UTC) and trade.price == 109.0


def test_push_trade_is_delivered_at_once_and_moves_the_rest_price(srv, clients):
    _, got = clients.data(trades=("AAPL",))
    connected(srv, 0, 1)
    wait_until(lambda: srv.data_subscriptions() == {"AAPL"}, what="the subscription")
    srv.push_trade("AAPL", 123.45, size=7)
    trade = wait_until(lambda: got and got[0], what="the pushed trade")
    assert (trade.price, trade.size, trade.timestamp) == (123.45, 7, srv.now.astimezone(UTC))
    rest = data(srv).get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert rest.price == 123.45 == srv.price("AAPL") and rest.timestamp == trade.timestamp
    srv.advance(timedelta(hours=1))  # the clock moved: back to the scripted price
    assert srv.price("AAPL") == 108.0
    assert wait_until(lambda: len(got) == 2 and got[1]).price == 108.0


def test_subscribe_and_unsubscribe_change_data_subscriptions(srv, clients):
    ds, got = clients.data(trades=("AAPL", "SPY"))
    connected(srv, 0, 1)
    wait_until(lambda: srv.data_subscriptions() == {"AAPL", "SPY"}, what="AAPL and SPY")
    ds.unsubscribe_trades("SPY")
    wait_until(lambda: srv.data_subscriptions() == {"AAPL"}, what="AAPL only")
    srv.push_trade("SPY", 501)
    srv.push_trade("AAPL", 101)  # sent after SPY's would have been: its arrival proves SPY's absence
    wait_until(lambda: got, what="the AAPL trade")
    assert [t.symbol for t in got] == ["AAPL"]


def test_a_second_data_connection_gets_406_while_the_first_still_works(srv, clients):
    _, got = clients.data(trades=("AAPL",))
    connected(srv, 0, 1)
    with connect(srv.stream_url + "/v2/iex", additional_headers=MSGPACK) as ws:
        assert msgpack.unpackb(ws.recv(timeout=2)) == [{"T": "success", "msg": "connected"}]
        ws.send(msgpack.packb({"action": "auth", "key": srv.key, "secret": srv.secret}))
        assert msgpack.unpackb(ws.recv(timeout=2)) == [{"T": "error", "code": 406,
                                                         "msg": "connection limit exceeded"}]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=2)
    srv.push_trade("AAPL", 99.5)
    assert wait_until(lambda: got and got[0]).price == 99.5
    assert srv.stream_connections() == {"trading": 0, "data": 1} and srv.stream_connects()["data"] == 1


def test_data_protocol_errors_and_the_slot_freed_on_close(srv):
    """A JSON client (no msgpack header): 401 before auth, 400 garbage, 403 second auth, 410 unknown channel, 405
    above the symbol cap (subscriptions unchanged), the full subscription reply; 402 bad keys; 404 no auth."""
    srv.settings.stream_symbol_limit = 2
    url = srv.stream_url + "/v2/iex"

    def ask(ws, msg) -> dict:
        ws.send(msg if isinstance(msg, str) else json.dumps(msg))
        return json.loads(ws.recv(timeout=2))[0]

    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=2)) == [{"T": "success", "msg": "connected"}]
        assert ask(ws, {"action": "subscribe", "trades": ["AAPL"]})["code"] == 401
        assert ask(ws, "{not json")["code"] == 400
        assert ask(ws, {"action": "auth", "key": srv.key, "secret": srv.secret}) == {"T": "success",
                                                                                     "msg": "authenticated"}
        assert ask(ws, {"action": "auth", "key": srv.key, "secret": srv.secret})["code"] == 403
        assert ask(ws, {"action": "subscribe", "orderbooks": ["AAPL"]})["code"] == 410
        assert ask(ws, {"action": "subscribe", "trades": ["AAPL", "SPY", "QQQ"]})["code"] == 405
        sub = ask(ws, {"trades": ["aapl"], "quotes": ["SPY"], "action": "subscribe"})
        assert sub == {"T": "subscription", "trades": ["AAPL"], "quotes": ["SPY"], "bars": [], "updatedBars": [],
                       "dailyBars": [], "statuses": [], "lulds": [], "corrections": ["AAPL"],
                       "cancelErrors": ["AAPL"]}
        assert srv.data_subscriptions() == {"AAPL"} and srv.data_subscriptions("quotes") == {"SPY"}
        srv.advance(timedelta(hours=1))
        trade, quote = json.loads(ws.recv(timeout=2))
        assert (trade["T"], trade["S"], trade["p"], quote["T"], quote["bp"]) == ("t", "AAPL", 108.0, "q", 499.99)
        assert trade["t"] == "2024-03-05T16:30:00.000000000Z"
    with connect(url, additional_headers=MSGPACK) as ws:  # the slot is free again at once
        ws.recv(timeout=2)
        ws.send(msgpack.packb({"action": "auth", "key": srv.key, "secret": srv.secret}))
        assert msgpack.unpackb(ws.recv(timeout=2))[0]["msg"] == "authenticated"
    with connect(url) as ws:
        ws.recv(timeout=2)
        assert ask(ws, {"action": "auth", "key": srv.key, "secret": "wrong"})["code"] == 402
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=2)
    srv.settings.stream_auth_timeout = 0.1
    with connect(url) as ws:
        ws.recv(timeout=2)
        assert json.loads(ws.recv(timeout=2))[0] == {"T": "error", "code": 404, "msg": "auth timeout"}
    assert srv.stream_connects() == {"trading": 0, "data": 2} and srv.stream_connections()["data"] == 0


# ---------------------------------------------------------------------------------------------- failures
def test_dropped_streams_reconnect_by_themselves_without_duplicates(srv, clients):
    _, updates = clients.trading()
    _, trades = clients.data(trades=("AAPL",))
    connected(srv, 1, 1)
    srv.drop_streams()
    assert srv.stream_connections() == {"trading": 0, "data": 0}  # dropped (and slots freed) before it returns
    wait_until(lambda: srv.stream_connections() == {"trading": 1, "data": 1}, timeout=8, what="both reconnected")
    assert srv.stream_connects() == {"trading": 2, "data": 2}
    wait_until(lambda: srv.data_subscriptions() == {"AAPL"}, what="the resubscription")
    srv.settings.fill_delay_steps = 0
    o = trading(srv).submit_order(market(3))
    wait_events(updates, o.id, ["new", "fill"])
    srv.push_trade("AAPL", 100.25)
    assert wait_until(lambda: trades and trades[0]).price == 100.25
    time.sleep(0.2)  # nothing arrives twice
    assert events(updates, o.id) == ["new", "fill"] and len(trades) == 1


def test_wrong_keys_or_refused_auth_are_unauthorized(srv, clients, stream_errors):
    with connect(srv.stream_url + "/stream") as ws:  # no greeting on the trading stream
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert json.loads(ws.recv(timeout=2))["data"] == {"status": "unauthorized", "action": "listen"}
        ws.send(json.dumps({"action": "authenticate", "data": {"key_id": srv.key, "secret_key": "nope"}}))
        reply = ws.recv(timeout=2)
        assert isinstance(reply, bytes)  # binary JSON, like the paper server
        assert json.loads(reply) == {"stream": "authorization",
                                     "data": {"status": "unauthorized", "action": "authenticate"}}
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=2)
    clients.trading(secret="nope")
    stream_errors.expect("failed to authenticate")
    srv.settings.refuse_stream_auth = True
    with connect(srv.stream_url + "/stream") as ws:
        ws.send(json.dumps({"action": "authenticate", "data": {"key_id": srv.key, "secret_key": srv.secret}}))
        assert json.loads(ws.recv(timeout=2))["data"]["status"] == "unauthorized"
    assert srv.stream_connects() == {"trading": 0, "data": 0}
