"""Unit tests of the live broker layer: failure classification (broker/errors.py), the live snapshot
(broker/snapshot.py), the gateway (broker/gateway.py) and the Alpaca venue (broker/alpaca_venue.py), against
stand-ins or the in-process fake Alpaca server (one server per module; no bot process, no backtest)."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from types import SimpleNamespace

import pandas as pd
import pytest
import requests
import tenacity
from alpaca.common.exceptions import APIError
from alpaca.data.timeframe import TimeFrameUnit
from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)
from lumibot.entities import Asset
from lumibot.entities import Order as LumiOrder

from broker import alpaca_venue
from broker.alpaca_venue import AlpacaVenue, _alpaca_answer
from broker.clients import make_clients
from broker.errors import TRANSIENT_STATUS, BrokerUnavailable, Incident, body_of, is_transient, message_of, status_of
from broker.fills import FillWatcher
from broker.gateway import AlpacaGateway, timeframe
from broker.snapshot import build_live_snapshot, feed_lag, open_orders, session_now
from models.features import FEATURE_NAMES, FeatureParams
from tests.fake_alpaca import FakeAlpaca
from trading.execution.resize import BrokerPosition
from trading.orders import BracketOrder, LimitOrder, MarketOrder, StopUpdate
from trading.records.journal import Journal
from trading.records.ledger import Ledger
from trading.settings import Settings
from trading.snapshot import Holding, OpenOrder

NY = "America/New_York"
HOUR = pd.Timedelta(hours=1)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=NY)


def api_error(status: int, body: dict | str) -> APIError:
    """The exception alpaca-py raises for an HTTP error: the body as text, the HTTP error behind it."""
    response = requests.Response()
    response.status_code = status
    text = body if isinstance(body, str) else json.dumps(body)
    return APIError(text, requests.HTTPError(response=response))


class WithStatus(Exception):
    def __init__(self, text: str = "", status_code: int | None = None) -> None:
        super().__init__(text)
        self.status_code = status_code


class WithResponse(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.response = SimpleNamespace(status_code=status)


# ====================================================================== broker/errors.py
def test_status_comes_from_the_exception_or_its_response():
    assert status_of(api_error(403, {"code": 40310000, "message": "insufficient buying power"})) == 403
    assert status_of(WithStatus("x", 429)) == 429
    assert status_of(WithResponse(503)) == 503
    assert status_of(ValueError("no http here")) is None
    assert status_of(WithStatus("x", None)) is None


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_throttling_server_errors_and_timeouts_are_transient(status):
    assert status in TRANSIENT_STATUS
    assert is_transient(api_error(status, {"message": "busy"})) is True
    assert is_transient(WithResponse(status)) is True


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501])
def test_rejections_are_permanent(status):
    assert is_transient(api_error(status, {"code": 42210000, "message": "invalid"})) is False


@pytest.mark.parametrize("exc", [requests.ConnectionError("reset"), requests.Timeout("read timed out"),
                                 TimeoutError("timed out"), ConnectionResetError("reset by peer"),
                                 ConnectionError("refused")])
def test_network_failures_are_transient(exc):
    assert is_transient(exc) is True


def test_exceptions_without_status_are_permanent():
    assert is_transient(ValueError("bad")) is False
    assert is_transient(WithStatus("x", None)) is False


def test_body_is_alpacas_json_else_the_text():
    exc = api_error(403, {"code": 40310000, "message": "insufficient qty available", "available": "3"})
    assert body_of(exc) == {"code": 40310000, "message": "insufficient qty available", "available": "3"}
    assert body_of(ValueError("not json")) == "not json"
    assert body_of(ValueError("[1, 2]")) == "[1, 2]"  # JSON, but not Alpaca's object
    long = "x" * 700
    assert body_of(ValueError(long)) == "x" * 500
    assert body_of(ValueError(json.dumps(list(range(300))))) == json.dumps(list(range(300)))[:500]


def test_message_is_alpacas_message_else_the_text():
    assert message_of(api_error(422, {"code": 42210000, "message": "qty must be > 0"})) == "qty must be > 0"
    assert message_of(api_error(422, {"code": 42210000, "message": 42})) == "42"
    no_message = json.dumps({"code": 40010001})
    assert message_of(api_error(400, no_message)) == no_message
    assert message_of(ValueError("y" * 400)) == "y" * 300
    assert message_of(ValueError("[\"message\"]")) == "[\"message\"]"


def warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "trader.broker" and r.levelno == logging.WARNING]


def test_incident_is_logged_when_it_starts_and_when_the_failing_call_answers(caplog):
    caplog.set_level(logging.WARNING, logger="trader.broker")
    incident = Incident()
    incident.failed("account", api_error(503, {"message": "service unavailable"}))
    incident.failed("account", api_error(503, {"message": "service unavailable"}))
    incident.failed("clock", TimeoutError("timed out"))
    started = warnings(caplog)
    assert len(started) == 1
    assert started[0].getMessage() == ("broker unreachable (account: APIError 503 service unavailable); retrying "
                                       "with backoff, skipping iterations until it answers")
    incident.recovered("clock")  # another endpoint answering does not end it
    assert len(warnings(caplog)) == 1
    assert incident.failures == 3
    incident.recovered("account")
    ended = warnings(caplog)
    assert len(ended) == 2
    assert ended[1].getMessage() == ("broker reachable again after 3 failed call(s) (first: account: APIError 503 "
                                     "service unavailable)")
    incident.recovered("account")  # nothing to end any more
    assert len(warnings(caplog)) == 2
    incident.failed("positions", TimeoutError(""))  # a new incident: logged again, with its own first call
    assert len(warnings(caplog)) == 3
    assert incident.first_call == "positions"
    assert incident.first_error == "positions: TimeoutError"
    assert "(positions: TimeoutError)" in warnings(caplog)[2].getMessage()


def test_recovery_without_a_failure_logs_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="trader.broker")
    incident = Incident()
    assert (incident.failures, incident.first_call, incident.first_error) == (0, "", "")
    incident.recovered("")
    assert warnings(caplog) == []


# ====================================================================== broker/snapshot.py: open orders
def alpaca_order(oid: str, status: str, *, symbol: str = "AAPL", side: str = "sell", type: str = "limit",
                 qty="10", filled_qty="0", limit_price=None, stop_price=None, order_class: str | None = "simple",
                 client_order_id: str | None = None, legs=None):
    return SimpleNamespace(id=oid, status=status, symbol=symbol, side=side, type=type, qty=qty, filled_qty=filled_qty,
                           limit_price=limit_price, stop_price=stop_price, order_class=order_class,
                           client_order_id=client_order_id or f"cid-{oid}", legs=legs)


LIVE = ["new", "accepted", "pending_new", "partially_filled", "held", "accepted_for_bidding", "pending_replace",
        "calculated"]
DONE = ["filled", "canceled", "expired", "rejected", "replaced", "done_for_day", "pending_cancel", "stopped"]


@pytest.mark.parametrize("status", LIVE)
def test_live_orders_are_open(status):
    (o,) = open_orders([alpaca_order("o1", status, limit_price="101.5")])
    assert o == OpenOrder("o1", "AAPL", "sell", "limit", 10.0, limit_price=101.5, stop_price=None,
                          order_class="simple", parent_id=None, client_order_id="cid-o1")


@pytest.mark.parametrize("status", DONE)
def test_finished_orders_are_not_open(status):
    assert open_orders([alpaca_order("o1", status)]) == ()


def test_open_quantity_is_what_is_left_to_fill():
    (o,) = open_orders([alpaca_order("o1", "partially_filled", qty="10", filled_qty="4", side="buy")])
    assert o.qty == 6.0
    assert o.side == "buy"
    (o,) = open_orders([alpaca_order("o2", "new", qty=None, filled_qty=None)])  # a notional order
    assert o.qty == 0.0


def test_filled_bracket_parent_drops_out_and_its_legs_point_at_it():
    tp = alpaca_order("tp", "new", limit_price="110", order_class="bracket")
    sl = alpaca_order("sl", "held", type="stop", stop_price="95", order_class="bracket")
    parent = alpaca_order("p", "filled", side="buy", type="market", order_class="bracket", legs=[tp, sl])
    simple = alpaca_order("s", "new", symbol="MSFT", order_class=None, limit_price="400")
    out = open_orders([parent, simple])
    assert out == (
        OpenOrder("tp", "AAPL", "sell", "limit", 10.0, limit_price=110.0, order_class="bracket", parent_id="p",
                  client_order_id="cid-tp"),
        OpenOrder("sl", "AAPL", "sell", "stop", 10.0, stop_price=95.0, order_class="bracket", parent_id="p",
                  client_order_id="cid-sl"),
        OpenOrder("s", "MSFT", "sell", "limit", 10.0, limit_price=400.0, order_class="simple", parent_id=None,
                  client_order_id="cid-s"),
    )
    assert out[1].is_protective_stop


def test_open_oco_parent_and_its_leg_both_listed():
    leg = alpaca_order("sl", "new", type="stop", stop_price="90", order_class="oco")
    parent = alpaca_order("tp", "new", limit_price="120", order_class="oco", legs=[leg])
    out = open_orders([parent])
    assert [(o.order_id, o.parent_id) for o in out] == [("tp", None), ("sl", "tp")]


# ====================================================================== broker/snapshot.py: session
@pytest.mark.parametrize(("is_open", "now", "extended", "expected"), [
    (True, "2024-03-05 10:30", False, "regular"),
    (True, "2024-03-05 10:30", True, "regular"),
    (False, "2024-03-05 08:00", True, "extended"),  # pre-market
    (False, "2024-03-05 17:00", True, "extended"),  # after hours
    (False, "2024-03-05 08:00", False, None),  # extended hours off
    (False, "2024-03-05 21:00", True, None),  # after the after-hours session
    (False, "2024-03-09 08:00", True, None),  # a Saturday
])
def test_session_follows_alpacas_clock_and_the_extended_window(is_open, now, extended, expected):
    assert session_now(SimpleNamespace(is_open=is_open), ts(now).to_pydatetime(), extended) == expected


# ====================================================================== broker/snapshot.py: feed lag
def bars(*starts: str, price: float = 100.0) -> pd.DataFrame:
    idx = pd.DatetimeIndex([ts(s) for s in starts])
    return pd.DataFrame({"open": price, "high": price + 1, "low": price - 1, "close": price, "volume": 1000.0},
                        index=idx)


def test_feed_is_stale_when_the_newest_bar_of_any_symbol_is_too_old():
    frames = {"AAPL": bars("2024-03-05 09:30", "2024-03-05 10:30"), "SPY": bars("2024-03-05 09:30")}
    # the 10:30 bar ended at 11:30; at 14:00 that is 2.5 bars of session ago, more than STALE_BARS=2
    note = feed_lag(frames, ts("2024-03-05 14:00"), HOUR, 2)
    assert note == ("the data feed's newest bar started 2024-03-05 10:30, 2.5 bar periods of session ago "
                    "(STALE_BARS=2): no new entries or hedges until it catches up")


def test_feed_is_fresh_up_to_stale_bars_periods_of_session():
    frames = {"AAPL": bars("2024-03-05 09:30", "2024-03-05 10:30")}
    assert feed_lag(frames, ts("2024-03-05 13:30"), HOUR, 2) is None  # exactly 2 periods: not yet stale
    assert feed_lag(frames, ts("2024-03-05 13:31"), HOUR, 2) is not None
    assert feed_lag(frames, ts("2024-03-05 12:31"), HOUR, 1) is not None


def test_night_before_the_open_is_not_a_lag():
    frames = {"AAPL": bars("2024-03-04 15:30")}
    assert feed_lag(frames, ts("2024-03-05 11:30"), HOUR, 2) is None  # 2 bars of session since 09:30
    assert feed_lag(frames, ts("2024-03-05 11:31"), HOUR, 2) is not None
    note = feed_lag(frames, ts("2024-03-05 12:00"), HOUR, 2)
    assert note is not None and "2024-03-04 15:30, 2.5 bar periods" in note


def test_feed_lag_is_off_for_daily_bars_disabled_rule_or_no_data():
    old = {"AAPL": bars("2024-03-01 09:30")}
    assert feed_lag(old, ts("2024-03-05 15:00"), HOUR, 0) is None
    assert feed_lag(old, ts("2024-03-05 15:00"), pd.Timedelta(days=1), 2) is None
    assert feed_lag(old, ts("2024-03-05 15:00"), pd.Timedelta(hours=2), 2) is not None
    assert feed_lag({}, ts("2024-03-05 15:00"), HOUR, 2) is None
    assert feed_lag({"AAPL": bars()}, ts("2024-03-05 15:00"), HOUR, 2) is None
    assert feed_lag({"AAPL": bars(), **old}, ts("2024-03-05 15:00"), HOUR, 2) is not None


def test_feed_lag_uses_the_utc_clock_in_new_york_time():
    frames = {"AAPL": bars("2024-03-05 09:30")}
    # 15:45 UTC is 10:45 in New York: the 09:30 bar ended 15 minutes ago
    assert feed_lag(frames, pd.Timestamp("2024-03-05 15:45", tz="UTC"), HOUR, 1) is None
    assert feed_lag(frames, pd.Timestamp("2024-03-05 16:45", tz="UTC"), HOUR, 1) is not None


# ====================================================================== broker/snapshot.py: the snapshot
def settings(**env: str) -> Settings:
    base = {"UNIVERSE": "AAPL", "BELLWETHERS": "AAPL", "INVERSE_ETFS": "general:SH,sp500:SH,tech:SH", "RSI_PERIOD": "2"}
    base.update(env)
    return Settings.load(environ=base, dotenv_path=None)


class StubGateway:
    """What build_live_snapshot reads, as Alpaca answers it (strings for numbers), and what it asked for."""

    def __init__(self, *, frames=None, latest=None, positions=(), orders=(), cash="1000.5", equity="2500.25"):
        self.frames = frames or {}
        self.latest = latest or {}
        self._positions = list(positions)
        self._orders = list(orders)
        self._account = SimpleNamespace(cash=cash, equity=equity)
        self.bar_requests: list[list[str]] = []
        self.price_requests: list[list[str]] = []
        self.order_reads = 0

    def account(self):
        return self._account

    def positions(self):
        return self._positions

    def open_orders(self):
        self.order_reads += 1
        return self._orders

    def bars(self, symbols, bar_period, start, end):
        self.bar_requests.append(list(symbols))
        return {s: self.frames[s] for s in symbols if s in self.frames}

    def latest_prices(self, symbols):
        self.price_requests.append(list(symbols))
        return {s: p for s, p in self.latest.items() if s in symbols}


def position(symbol: str, qty: str, entry: str | None = "100"):
    return SimpleNamespace(symbol=symbol, qty=qty, avg_entry_price=entry)


def day_bars(day: str = "2024-03-05", price: float = 100.0, n: int = 7) -> pd.DataFrame:
    stamps = [ts(f"{day} 09:30") + HOUR * h for h in range(n)]
    closes = [price + i for i in range(n)]
    return pd.DataFrame({"open": closes, "high": [c + 1 for c in closes], "low": [c - 1 for c in closes],
                         "close": closes, "volume": 1000.0}, index=pd.DatetimeIndex(stamps))


def test_snapshot_reads_account_positions_orders_bars_and_latest_prices():
    frames = {"AAPL": pd.concat([day_bars("2024-03-04"), day_bars("2024-03-05")]),
              "SPY": pd.concat([day_bars("2024-03-04", 500), day_bars("2024-03-05", 500)])}
    order = alpaca_order("o1", "new", limit_price="120")
    gw = StubGateway(frames=frames, latest={"AAPL": 103.25, "SPY": 502.0, "TSLA": 180.0},
                     positions=[position("AAPL", "10", "95.5"), position("TSLA", "-3", None), position("XOM", "0")],
                     orders=[order])
    now = ts("2024-03-05 12:30")
    snap = build_live_snapshot(gw, settings(), now, HOUR)
    assert (snap.cash, snap.portfolio_value, snap.now) == (1000.5, 2500.25, now)
    assert snap.holdings == {"AAPL": Holding("AAPL", 10.0, 95.5), "TSLA": Holding("TSLA", -3.0, None)}
    assert [o.order_id for o in snap.open_orders] == ["o1"]
    assert gw.order_reads == 1
    # universe, bellwethers, inverse ETFs, SPY, then held symbols the settings do not name: each once
    assert gw.bar_requests == [["AAPL", "SH", "SPY", "TSLA", "XOM"]]
    assert gw.price_requests == [["AAPL", "SH", "SPY", "TSLA", "XOM"]]
    assert snap.market.at["AAPL", "close"] == 103.25  # the latest trade, not the last bar's close
    assert snap.market.at["SPY", "close"] == 502.0
    assert snap.market.at["AAPL", "bar_time"] == ts("2024-03-05 11:30")  # the last bar that has ended
    assert pd.notna(snap.market.at["AAPL", "rsi"])
    assert snap.market.at["TSLA", "close"] == 180.0  # held without bars: the latest price still there
    assert pd.isna(snap.market.at["XOM", "close"])  # neither bars nor a trade
    assert "SH" not in snap.market.index
    assert snap.session == "regular"
    assert snap.notes == ()
    assert snap.feed_stale is None


def test_snapshot_uses_the_orders_just_read_instead_of_reading_again():
    gw = StubGateway(frames={"AAPL": day_bars()}, latest={"AAPL": 101.0}, orders=[alpaca_order("x", "new")])
    snap = build_live_snapshot(gw, settings(), ts("2024-03-05 12:30"), HOUR,
                               raw_orders=[alpaca_order("y", "new")])
    assert gw.order_reads == 0
    assert [o.order_id for o in snap.open_orders] == ["y"]
    snap = build_live_snapshot(gw, settings(), ts("2024-03-05 12:30"), HOUR, raw_orders=[])
    assert snap.open_orders == ()
    assert gw.order_reads == 0


def test_snapshot_without_bars_says_indicators_are_unavailable():
    gw = StubGateway(latest={"AAPL": 101.0}, positions=[position("AAPL", "5")])
    snap = build_live_snapshot(gw, settings(), ts("2024-03-05 12:30"), HOUR)
    assert snap.notes == ("no bars from the data feed: indicators unavailable this iteration",)
    assert snap.market.at["AAPL", "close"] == 101.0
    assert list(snap.market.index) == ["AAPL"]
    assert snap.feed_stale is None
    assert list(snap.market.columns) == ["close", "rsi", "trend", "atr", "high", "low", "bar_time"]
    assert snap.market.index.name == "symbol"


def test_held_symbol_without_any_price_has_a_numeric_nan_close():
    gw = StubGateway(frames={"AAPL": day_bars()}, latest={"AAPL": 101.0}, positions=[position("XOM", "2")])
    snap = build_live_snapshot(gw, settings(), ts("2024-03-05 12:30"), HOUR)
    assert snap.market["close"].dtype == "float64"
    assert pd.isna(snap.market.at["XOM", "close"])


def test_meta_model_features_are_computed_when_asked():
    gw = StubGateway(frames={"AAPL": pd.concat([day_bars("2024-03-04"), day_bars("2024-03-05")]),
                             "SPY": pd.concat([day_bars("2024-03-04", 500), day_bars("2024-03-05", 500)])})
    s = settings()
    plain = build_live_snapshot(gw, s, ts("2024-03-05 12:30"), HOUR)
    with_features = build_live_snapshot(gw, s, ts("2024-03-05 12:30"), HOUR, features=FeatureParams.from_settings(s))
    assert set(FEATURE_NAMES) <= set(with_features.market.columns)
    assert not set(FEATURE_NAMES) <= set(plain.market.columns)


def test_stale_feed_is_noted_in_the_regular_session_only():
    frames = {"AAPL": day_bars(n=2), "SPY": day_bars(price=500, n=2)}  # bars stop after the 10:30 bar
    gw = StubGateway(frames=frames, latest={"AAPL": 101.0})
    snap = build_live_snapshot(gw, settings(STALE_BARS="2"), ts("2024-03-05 15:00"), HOUR)
    assert snap.feed_stale is not None and "STALE_BARS=2" in snap.feed_stale
    assert snap.notes == (snap.feed_stale,)
    snap = build_live_snapshot(gw, settings(STALE_BARS="2"), ts("2024-03-05 15:00"), HOUR, session="extended")
    assert snap.feed_stale is None
    assert snap.notes == ()
    assert snap.session == "extended"


def test_snapshot_keeps_the_bar_window_it_is_given():
    from broker.live_bars import LiveBars

    gw = StubGateway(frames={"AAPL": day_bars(), "SPY": day_bars(price=500)}, latest={})
    window = LiveBars(gw, HOUR, 3)
    snap = build_live_snapshot(gw, settings(), ts("2024-03-05 14:30"), HOUR, bars=window, history_bars=400)
    assert set(window.frames) >= {"AAPL", "SPY"}
    assert snap.market.at["AAPL", "close"] == 104.0  # the 13:30 bar ended at 14:30
    assert len(gw.bar_requests) == 1


# ====================================================================== broker/gateway.py (fake Alpaca)
def hourly(price: float, days=("2024-03-04", "2024-03-05")) -> pd.DataFrame:
    stamps = [ts(f"{d} 09:30") + HOUR * h for d in days for h in range(7)]
    closes = [price + 0.25 * i for i in range(len(stamps))]
    return pd.DataFrame({"open": closes, "high": [c + 0.5 for c in closes], "low": [c - 0.5 for c in closes],
                         "close": closes, "volume": 1_000_000.0}, index=pd.DatetimeIndex(stamps))


@pytest.fixture(scope="module")
def srv():
    server = FakeAlpaca({"AAPL": hourly(100.0), "MSFT": hourly(400.0), "SPY": hourly(500.0), "XOM": hourly(110.0)},
                        now=ts("2024-03-05 10:30")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def clients(srv):
    s = Settings.load(environ={"ALPACA_API_KEY": srv.key, "ALPACA_API_SECRET": srv.secret, "ALPACA_API_URL": srv.url,
                               "ALPACA_DATA_URL": srv.url, "BROKER_TIMEOUT_SECONDS": "5"}, dotenv_path=None)
    trading, data = make_clients(s)
    yield trading, data
    trading._session.close()
    data._session.close()


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The retry back-off waits, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(tenacity.nap.time, "sleep", slept.append)
    return slept


@pytest.fixture
def gw(srv, clients, waits):
    srv.faults.clear()
    return AlpacaGateway(*clients, "iex")


def last_request(srv, method: str, path: str) -> dict:
    return [r for r in srv.requests if r["method"] == method and r["path"].startswith(path)][-1]


def bracket(trading, symbol: str, qty: int, cid: str, stop: float = 90.0, target: float = 130.0):
    return trading.submit_order(MarketOrderRequest(
        symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=target), stop_loss=StopLossRequest(stop_price=stop),
        client_order_id=cid))


@pytest.mark.parametrize(("period", "amount", "unit"), [
    (pd.Timedelta(hours=1), 1, TimeFrameUnit.Hour), (pd.Timedelta(hours=2), 2, TimeFrameUnit.Hour),
    (pd.Timedelta(minutes=30), 30, TimeFrameUnit.Minute), (pd.Timedelta(minutes=45), 45, TimeFrameUnit.Minute),
    (pd.Timedelta(days=1), 1, TimeFrameUnit.Day), (pd.Timedelta(days=2), 1, TimeFrameUnit.Day),
])
def test_bar_period_as_alpaca_timeframe(period, amount, unit):
    tf = timeframe(period)
    assert (tf.amount_value, tf.unit_value) == (amount, unit)


def test_reads_account_clock_and_positions(srv, gw):
    assert float(gw.account().cash) == pytest.approx(srv.cash)
    assert gw.clock().is_open is True
    srv.add_position("SPY", 3, 480.0)
    assert [(p.symbol, float(p.qty)) for p in gw.positions()] == [("SPY", 3.0)]


def test_transient_failures_are_retried_with_exponential_backoff(srv, gw, waits, caplog):
    caplog.set_level(logging.WARNING, logger="trader.broker")
    srv.faults.add("503", path="/v2/clock", times=3)
    assert gw.clock().is_open is True
    assert waits == [0.5, 1.0, 2.0]
    assert warnings(caplog) == []  # it answered within the retries: no outage


def test_outage_raises_broker_unavailable_after_the_attempts_and_is_logged_once(srv, gw, waits, caplog):
    caplog.set_level(logging.WARNING, logger="trader.broker")
    fault = srv.faults.add("503", path="/v2/account", times=None)
    before = srv.count("/v2/account")
    with pytest.raises(BrokerUnavailable, match=r"^account failed 4 times: ") as info:
        gw.account()
    assert srv.count("/v2/account") - before == 4
    assert waits == [0.5, 1.0, 2.0]
    assert status_of(info.value.__cause__) == 503
    with pytest.raises(BrokerUnavailable):
        gw.account()
    assert len(warnings(caplog)) == 1
    srv.faults.remove(fault)
    gw.clock()  # another call answering does not end the outage
    assert len(warnings(caplog)) == 1
    gw.account()
    assert len(warnings(caplog)) == 2
    assert "after 2 failed call(s)" in warnings(caplog)[1].getMessage()


ORDER_ID = "00000000-0000-0000-0000-0000000000ab"


@pytest.mark.parametrize(("call", "path", "what"), [
    (lambda g: g.clock(), "/v2/clock", "clock"),
    (lambda g: g.positions(), "/v2/positions", "positions"),
    (lambda g: g.position("AAPL"), "/v2/positions/AAPL", "position AAPL"),
    (lambda g: g.open_orders(), "/v2/orders", "open orders"),
    (lambda g: g.order(ORDER_ID), f"/v2/orders/{ORDER_ID}", f"order {ORDER_ID}"),
    (lambda g: g.cancel(ORDER_ID), f"/v2/orders/{ORDER_ID}", f"cancel {ORDER_ID}"),
    (lambda g: g.bars(["AAPL"], HOUR, ts("2024-03-04 09:00"), ts("2024-03-05 10:30")), "/v2/stocks/bars", "bars"),
    (lambda g: g.latest_prices(["AAPL"]), "/v2/stocks/trades/latest", "latest trades"),
])
def test_an_outage_names_the_call_that_failed(srv, clients, waits, caplog, call, path, what):
    caplog.set_level(logging.WARNING, logger="trader.broker")
    srv.faults.clear()
    gw = AlpacaGateway(*clients, "iex", attempts=2)
    srv.faults.add("503", path=path, times=None)
    with pytest.raises(BrokerUnavailable, match=f"^{what} failed 2 times: "):
        call(gw)
    assert f"broker unreachable ({what}: APIError 503 service unavailable)" in warnings(caplog)[0].getMessage()
    srv.faults.clear()
    if what.startswith("order "):
        with pytest.raises(APIError):  # no such order: Alpaca answers, with a 404
            call(gw)
        return
    call(gw)
    assert len(warnings(caplog)) == 2  # the same call answering ends it


def test_backoff_is_capped(srv, clients, waits):
    srv.faults.clear()
    gw = AlpacaGateway(*clients, "iex", attempts=7)
    srv.faults.add("429", path="/v2/account", times=None)
    with pytest.raises(BrokerUnavailable, match="failed 7 times"):
        gw.account()
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    srv.faults.clear()
    gw = AlpacaGateway(*clients, "iex", attempts=3, first_wait=0.1, max_wait=0.15)
    srv.faults.add("500", path="/v2/account", times=None)
    waits.clear()
    with pytest.raises(BrokerUnavailable, match="failed 3 times"):
        gw.account()
    assert waits == [0.1, 0.15]
    srv.faults.clear()


def test_rejections_are_raised_at_once_not_retried(srv, gw, waits):
    before = srv.count("/v2/orders/")
    with pytest.raises(APIError) as info:
        gw.order("00000000-0000-0000-0000-000000000000")
    assert status_of(info.value) == 404
    assert srv.count("/v2/orders/") - before == 1
    assert waits == []


def test_position_is_read_now_with_what_orders_hold(srv, clients, gw):
    trading, _ = clients
    assert gw.position("MSFT") == BrokerPosition(0.0, 0.0)  # Alpaca answers 404: flat
    bracket(trading, "MSFT", 5, "gw-pos-1", stop=380.0, target=450.0)
    srv.settle()
    assert gw.position("MSFT") == BrokerPosition(5.0, 0.0)  # its legs hold every share


def test_position_without_qty_available_is_all_available():
    class Trading:
        def get_open_position(self, symbol):
            return SimpleNamespace(qty="-4", qty_available=None)

    assert AlpacaGateway(Trading(), None).position("TSLA") == BrokerPosition(-4.0, -4.0)


def test_open_orders_are_one_nested_request_and_legs_come_with_their_parent(srv, clients, gw):
    trading, _ = clients
    parent = bracket(trading, "AAPL", 2, "gw-open-1")
    srv.settle()
    raw = gw.open_orders()
    q = last_request(srv, "GET", "/v2/orders")["query"]
    assert (str(q["status"]).strip("[]'"), str(q["nested"]).strip("[]'").lower(), str(q["limit"]).strip("[]'")) == \
        ("open", "true", "500")
    mine = next(o for o in raw if str(o.id) == str(parent.id))
    assert sorted(str(leg.type.value) for leg in mine.legs) == ["limit", "stop"]
    one = gw.order(str(parent.id))
    assert str(last_request(srv, "GET", f"/v2/orders/{parent.id}")["query"]["nested"]).strip("[]'").lower() == "true"
    assert len(one.legs) == 2
    assert str(gw.order_by_client_id("gw-open-1").id) == str(parent.id)
    assert gw.order_by_client_id("never-sent") is None


def test_order_lookup_by_client_id_retries_then_gives_up(srv, gw, waits):
    srv.faults.add("503", path="/v2/orders:by_client_order_id", times=None)
    with pytest.raises(BrokerUnavailable, match="order never-sent"):
        gw.order_by_client_id("never-sent")
    srv.faults.clear()


def test_cancel_is_canceled_or_gone(srv, clients, gw):
    trading, _ = clients
    resting = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, limit_price=50,
                                                     time_in_force=TimeInForce.DAY, client_order_id="gw-cancel-1"))
    srv.faults.add("503", method="DELETE", path="/v2/orders/", times=1)
    assert gw.cancel(str(resting.id)) == "canceled"  # retried: cancelling twice is harmless
    srv.settle()
    assert srv.orders[str(resting.id)]["status"] == "canceled"
    assert gw.cancel(str(resting.id)) == "gone"  # already canceled: 422
    assert gw.cancel("00000000-0000-0000-0000-000000000000") == "gone"  # unknown: 404


def test_cancel_of_a_refused_request_raises(srv, gw):
    class Trading:
        def cancel_order_by_id(self, order_id):
            raise api_error(403, {"code": 40310000, "message": "forbidden"})

    with pytest.raises(APIError):
        AlpacaGateway(Trading(), None).cancel("x")


def test_replace_stop_patches_in_place_once(srv, clients, gw):
    trading, _ = clients
    srv.add_position("XOM", 10, 110.0)
    stop = trading.submit_order(StopOrderRequest(symbol="XOM", qty=10, side=OrderSide.SELL, stop_price=100,
                                                 time_in_force=TimeInForce.GTC, client_order_id="gw-stop-1"))
    srv.settle()
    new = gw.replace_stop(str(stop.id), 105.5, "gw-stop-1-r1")
    body = last_request(srv, "PATCH", f"/v2/orders/{stop.id}")["body"]
    assert float(body["stop_price"]) == 105.5
    assert body["client_order_id"] == "gw-stop-1-r1"
    assert float(new.stop_price) == 105.5
    assert new.client_order_id == "gw-stop-1-r1"
    srv.settle()
    srv.faults.add("503", method="PATCH", times=1)
    before = srv.count("/v2/orders/", method="PATCH")
    with pytest.raises(APIError):
        gw.replace_stop(str(new.id), 106.0)
    assert srv.count("/v2/orders/", method="PATCH") - before == 1  # never sent twice


def test_bars_for_all_symbols_in_one_request_as_new_york_frames(srv, gw):
    before = srv.count("/v2/stocks/bars")
    frames = gw.bars(["AAPL", "SPY"], HOUR, ts("2024-03-04 09:00"), ts("2024-03-05 10:30"))
    assert srv.count("/v2/stocks/bars") - before == 1
    q = last_request(srv, "GET", "/v2/stocks/bars")["query"]
    assert {k: str(q[k]).strip("[]'") for k in ("timeframe", "feed", "adjustment")} == \
        {"timeframe": "1Hour", "feed": "iex", "adjustment": "all"}
    assert sorted(frames) == ["AAPL", "SPY"]
    aapl = frames["AAPL"]
    assert list(aapl.columns) == ["open", "high", "low", "close", "volume"]
    assert all(dtype == "float64" for dtype in aapl.dtypes)
    assert str(aapl.index.tz) == NY
    assert aapl.index.is_monotonic_increasing
    assert aapl.index[0] == ts("2024-03-04 09:30")
    assert aapl["close"].iloc[0] == 100.0
    assert frames["SPY"]["close"].iloc[0] == 500.0
    assert gw.bars([], HOUR, ts("2024-03-04 09:00"), ts("2024-03-05 10:30")) == {}
    assert srv.count("/v2/stocks/bars") - before == 1
    assert gw.bars(["ZZZZ"], HOUR, ts("2024-03-04 09:00"), ts("2024-03-05 10:30")) == {}
    early = gw.bars(["AAPL"], HOUR, ts("2024-03-04 09:00"), ts("2024-03-04 12:30"))
    assert early["AAPL"].index[-1] <= ts("2024-03-04 12:30")
    assert early["AAPL"].index[0] == ts("2024-03-04 09:30")


def test_bars_of_an_unsorted_multi_symbol_answer():
    idx = pd.MultiIndex.from_tuples([("B", pd.Timestamp("2024-03-05 15:30", tz="UTC")),
                                     ("B", pd.Timestamp("2024-03-05 14:30", tz="UTC")),
                                     ("A", pd.Timestamp("2024-03-05 14:30", tz="UTC"))], names=["symbol", "timestamp"])
    df = pd.DataFrame({"open": [2, 1, 5], "high": [2, 1, 5], "low": [2, 1, 5], "close": [2, 1, 5],
                       "volume": [10, 10, 10], "vwap": [0, 0, 0]}, index=idx)

    class Data:
        def get_stock_bars(self, req):
            return SimpleNamespace(df=df)

    out = AlpacaGateway(None, Data()).bars(["A", "B"], HOUR, ts("2024-03-05 09:00"), ts("2024-03-05 12:00"))
    assert AlpacaGateway(None, SimpleNamespace(get_stock_bars=lambda req: SimpleNamespace(df=None))).bars(
        ["A"], HOUR, ts("2024-03-05 09:00"), ts("2024-03-05 12:00")) == {}
    assert list(out["B"]["close"]) == [1.0, 2.0]
    assert list(out["B"].index) == [ts("2024-03-05 09:30"), ts("2024-03-05 10:30")]
    assert list(out["A"].columns) == ["open", "high", "low", "close", "volume"]


def test_latest_prices_in_one_request(srv, gw):
    before = srv.count("/v2/stocks/trades/latest")
    prices = gw.latest_prices(["AAPL", "SPY"])
    assert prices == {"AAPL": srv.price("AAPL"), "SPY": srv.price("SPY")}
    assert all(isinstance(p, float) for p in prices.values())
    assert srv.count("/v2/stocks/trades/latest") - before == 1
    assert str(last_request(srv, "GET", "/v2/stocks/trades/latest")["query"]["feed"]).strip("[]'") == "iex"
    assert gw.latest_prices([]) == {}
    assert srv.count("/v2/stocks/trades/latest") - before == 1


def test_latest_prices_skip_symbols_without_a_trade():
    class Data:
        def get_stock_latest_trade(self, req):
            return {"A": SimpleNamespace(price="12.5"), "B": None}

    assert AlpacaGateway(None, Data()).latest_prices(["A", "B"]) == {"A": 12.5}
    Data.get_stock_latest_trade = lambda self, req: None
    assert AlpacaGateway(None, Data()).latest_prices(["A"]) == {}


# ====================================================================== broker/alpaca_venue.py
class LiveStandIn:
    """What the Alpaca venue uses of the strategy. submit_order stands in for Lumibot's Alpaca broker: the
    Lumibot order is sent through alpaca-py to the fake, and the answer comes back as Lumibot's order with
    Alpaca's response in `_raw`."""

    def __init__(self, trading, s: Settings) -> None:
        self.trading, self.settings = trading, s
        self.bar_period, self.features, self.session = HOUR, None, "regular"
        self.journal = Journal(":memory:")
        self.ledger = Ledger(journal=None)

    def create_order(self, asset, quantity, side, **kwargs) -> LumiOrder:
        return LumiOrder("stand-in", Asset(asset), quantity, side, **kwargs)

    def submit_order(self, lumi: LumiOrder):
        cid = lumi.custom_params["client_order_id"]
        side = OrderSide.BUY if _value(lumi.side) == "buy" else OrderSide.SELL
        common = {"symbol": lumi.asset.symbol, "qty": lumi.quantity, "side": side, "client_order_id": cid,
                  "time_in_force": TimeInForce(lumi.time_in_force)}
        if lumi.order_class == LumiOrder.OrderClass.BRACKET:
            tp = next(c for c in lumi.child_orders if _value(c.order_type) == "limit")
            sl = next(c for c in lumi.child_orders if _value(c.order_type) == "stop")
            req = MarketOrderRequest(**common, order_class=OrderClass.BRACKET,
                                     take_profit=TakeProfitRequest(limit_price=tp.limit_price),
                                     stop_loss=StopLossRequest(stop_price=sl.stop_price))
        elif lumi.limit_price is not None:
            req = LimitOrderRequest(**common, limit_price=lumi.limit_price)
        else:
            req = MarketOrderRequest(**common)
        raw = self.trading.submit_order(req)
        return SimpleNamespace(identifier=raw.id, status=raw.status, _raw=raw)


def _value(x) -> str:
    return str(getattr(x, "value", x) or "")


VENUE_SYMBOLS = ("AAPL", "SPY", "V01", "V02", "V03", "V04", "V05", "V06", "V07", "V08", "V09", "V10", "V11", "V12",
                 "V13", "V14", "V15", "V16")


@pytest.fixture(scope="module")
def vsrv():
    """The venue's server: each test trades its own symbol, so Alpaca's rules (wash trades, held shares) do not
    tie the tests together."""
    server = FakeAlpaca({sym: hourly(100.0 + i) for i, sym in enumerate(VENUE_SYMBOLS)},
                        now=ts("2024-03-05 10:30")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def vclients(vsrv):
    s = Settings.load(environ={"ALPACA_API_KEY": vsrv.key, "ALPACA_API_SECRET": vsrv.secret,
                               "ALPACA_API_URL": vsrv.url, "ALPACA_DATA_URL": vsrv.url}, dotenv_path=None)
    trading, data = make_clients(s)
    yield trading, data
    trading._session.close()
    data._session.close()


@pytest.fixture
def live(vsrv, vclients, waits):
    """A venue on the fake, the gateway's back-off shortened."""
    vsrv.faults.clear()
    vsrv.settle()
    trading, data = vclients
    gw = AlpacaGateway(trading, data, "iex", first_wait=0.001, max_wait=0.002)
    st = LiveStandIn(trading, settings())
    venue = AlpacaVenue(st, gw, FillWatcher(st.journal))
    yield venue
    st.journal.close()


def test_live_venue_submits_and_watches_the_order(vsrv, live):
    assert live.live is True
    result = live.submit(MarketOrder("V01", 3, "buy", "lv-buy-1"), "entry")
    assert result.ok is True
    assert result.broker_id == next(i for i, o in vsrv.orders.items() if o["client_order_id"] == "lv-buy-1")
    assert result.status in ("new", "accepted", "pending_new")
    assert result.response["client_order_id"] == "lv-buy-1"
    assert result.response["symbol"] == "V01"
    assert None not in result.response.values()  # the journal keeps what Alpaca filled in
    assert str(result.lumibot_order.identifier) == result.broker_id
    assert live.watcher.watch[result.broker_id] == {"symbol": "V01", "side": "buy", "role": "entry",
                                                    "filled": 0.0, "avg": 0.0}
    sold = live.submit(LimitOrder("V01", 1, "sell", Decimal("150"), "lv-sell-1"), "trim")
    assert live.watcher.watch[sold.broker_id]["side"] == "sell"
    assert live.watcher.watch[sold.broker_id]["role"] == "trim"


def test_dry_run_sends_nothing(vsrv, live):
    live.dry_run = True
    before = vsrv.count("/v2/orders", method="POST")
    result = live.submit(MarketOrder("V02", 3, "buy", "lv-dry-1"), "entry")
    assert (result.ok, result.status, result.note) == (False, "dry-run", "dry run: not sent")
    moved = live.move_stop(StopUpdate("V02", "some-leg", Decimal("95"), "lv-dry-2"))
    assert (moved.ok, moved.status, moved.note) == (False, "dry-run", "dry run: not sent")
    before_delete = vsrv.count("/v2/orders", method="DELETE")
    assert live.cancel(("some-order",)) is True
    assert vsrv.count("/v2/orders", method="POST") == before
    assert vsrv.count("/v2/orders", method="DELETE") == before_delete
    assert live.watcher.watch == {}


def test_lost_response_is_found_by_client_order_id(vsrv, live):
    vsrv.faults.add("lost_response", method="POST", path="/v2/orders", times=1)
    result = live.submit(MarketOrder("V03", 2, "buy", "lv-lost-1"), "entry")
    assert result.ok is True
    assert result.note == "the response was lost (504); found by client order id"
    assert vsrv.orders[result.broker_id]["client_order_id"] == "lv-lost-1"
    assert result.response["client_order_id"] == "lv-lost-1"
    assert result.status == vsrv.orders[result.broker_id]["status"] or result.status in ("new", "accepted")
    assert result.status != ""
    assert live.watcher.watch[result.broker_id] == {"symbol": "V03", "side": "buy", "role": "entry", "filled": 0.0,
                                                    "avg": 0.0}


def test_reset_connection_after_acceptance_is_found_too(vsrv, live):
    vsrv.faults.add("reset", method="POST", path="/v2/orders", times=1, after=True)
    result = live.submit(MarketOrder("V04", 2, "buy", "lv-reset-1"), "entry")
    assert result.ok is True
    assert result.note == "the response was lost (ConnectionError); found by client order id"


def test_reset_before_acceptance_is_unknown(vsrv, live):
    vsrv.faults.add("reset", method="POST", path="/v2/orders", times=1)
    result = live.submit(MarketOrder("V04", 2, "buy", "lv-reset-2"), "entry")
    assert (result.ok, result.status) == (False, "unknown")
    assert result.note.startswith("no answer (ConnectionError: ")
    assert result.response["http_status"] is None


def test_submit_answer_without_alpacas_order_has_no_response(live):
    live.st.submit_order = lambda lumi: SimpleNamespace(identifier="lumi-1", status="new")
    result = live.submit(MarketOrder("V04", 1, "buy", "lv-noraw-1"), "entry")
    assert (result.ok, result.broker_id, result.status, result.response) == (True, "lumi-1", "new", None)


def test_unanswered_submit_not_found_is_unknown_not_resent(vsrv, live):
    vsrv.faults.add("503", method="POST", path="/v2/orders", times=1)
    before = vsrv.count("/v2/orders", method="POST")
    result = live.submit(MarketOrder("V05", 2, "buy", "lv-503-1"), "entry")
    assert vsrv.count("/v2/orders", method="POST") - before == 1
    assert (result.ok, result.status, result.broker_id) == (False, "unknown", None)
    assert result.response["http_status"] == 503
    assert result.response["error"] == message_of(api_error(503, result.response["error"]))
    assert result.note.startswith("no answer (503: ")
    assert result.note.endswith("and not found by client order id yet; the next iteration looks it up again before "
                                "deciding anything")
    assert live.watcher.watch == {}


def test_submit_whose_lookup_fails_too_is_unknown(vsrv, live):
    vsrv.faults.add("503", method="POST", path="/v2/orders", times=1)
    vsrv.faults.add("503", path="/v2/orders:by_client_order_id", times=None)
    result = live.submit(MarketOrder("V05", 2, "buy", "lv-503-2"), "entry")
    assert (result.ok, result.status) == (False, "unknown")


def test_rejection_is_reported_with_alpacas_answer_and_not_looked_up(vsrv, live):
    before = vsrv.count("/v2/orders:by_client_order_id")
    result = live.submit(MarketOrder("V06", 1_000_000, "buy", "lv-rej-1"), "entry")
    assert (result.ok, result.status, result.broker_id) == (False, "rejected", None)
    assert result.response["http_status"] == 403
    assert result.response["body"]["code"] == 40310000
    assert result.response["message"] == result.response["body"]["message"]
    assert result.note == f"rejected by Alpaca (403: {result.response['message']})"
    assert vsrv.count("/v2/orders:by_client_order_id") == before


def test_duplicate_client_id_is_the_order_already_sent(vsrv, live):
    first = live.submit(LimitOrder("V07", 1, "buy", Decimal("50"), "lv-dup-1"), "entry")
    again = live.submit(LimitOrder("V07", 1, "buy", Decimal("50"), "lv-dup-1"), "entry")
    assert (again.ok, again.broker_id) == (True, first.broker_id)
    assert again.note == "already sent earlier; found by client order id"


def test_duplicate_of_a_dead_order_is_sent_again_under_a_new_id(vsrv, live):
    first = live.submit(LimitOrder("V08", 1, "buy", Decimal("50"), "lv-dead-1"), "entry")
    live.gw.cancel(first.broker_id)
    vsrv.settle()
    again = live.submit(LimitOrder("V08", 1, "buy", Decimal("50"), "lv-dead-1"), "entry")
    assert (again.ok, again.broker_id, again.status) == (False, first.broker_id, "dead-duplicate")
    assert again.note == "id already used by an order now canceled: sending under the next derived id"
    assert again.response["status"] == "canceled"


def _protected(vsrv, live, symbol: str, qty: int, cid: str) -> tuple[str, str, str]:
    """A filled bracket: (parent id, take-profit leg id, stop leg id)."""
    price = vsrv.price(symbol)
    result = live.submit(BracketOrder(symbol, qty, Decimal(str(price)), Decimal(str(round(price * 1.3, 2))),
                                      Decimal(str(round(price * 0.9, 2))), cid), "entry")
    vsrv.settle()
    legs = live.gw.order(result.broker_id).legs
    tp = next(str(leg.id) for leg in legs if _value(leg.type) == "limit")
    sl = next(str(leg.id) for leg in legs if _value(leg.type) == "stop")
    return result.broker_id, tp, sl


def test_move_stop_patches_the_leg_and_watches_its_replacement(vsrv, live):
    _, _, sl = _protected(vsrv, live, "V09", 2, "lv-move-1")
    stop = Decimal(str(round(vsrv.price("V09") * 0.95, 2)))
    result = live.move_stop(StopUpdate("V09", sl, stop, "lv-move-1-s1"))
    assert result.ok is True
    assert result.broker_id != sl
    assert vsrv.orders[result.broker_id]["replaces"] == sl
    assert float(vsrv.orders[result.broker_id]["stop_price"]) == float(stop)
    assert result.response["client_order_id"] == "lv-move-1-s1"
    assert result.status == vsrv.orders[result.broker_id]["status"] or result.status == "pending_new"
    assert live.watcher.watch[result.broker_id] == {"symbol": "V09", "side": "sell", "role": "stop", "filled": 0.0,
                                                    "avg": 0.0}


def test_move_stop_whose_answer_was_lost_is_found_replaced(vsrv, live):
    _, _, sl = _protected(vsrv, live, "V10", 1, "lv-move-2")
    vsrv.faults.add("lost_response", method="PATCH", times=1)
    vsrv.settings.cancel_delay_steps = 0
    try:
        result = live.move_stop(StopUpdate("V10", sl, Decimal(str(round(vsrv.price("V10") * 0.95, 2))), "lv-move-2-s1"))
    finally:
        vsrv.settings.cancel_delay_steps = 2
    new = vsrv.orders[sl]["replaced_by"]
    assert (result.ok, result.broker_id, result.status) == (True, new, "replaced")
    assert result.note == "found replaced after an error"
    assert result.response["id"] == sl
    assert live.watcher.watch[new] == {"symbol": "V10", "side": "sell", "role": "stop", "filled": 0.0, "avg": 0.0}


def test_move_stop_refused_leaves_the_stop(vsrv, live):
    _, _, sl = _protected(vsrv, live, "V11", 1, "lv-move-3")
    vsrv.faults.add("503", method="PATCH", times=1)
    result = live.move_stop(StopUpdate("V11", sl, Decimal(str(round(vsrv.price("V11") * 0.95, 2))), "lv-move-3-s1"))
    assert result.ok is False
    assert result.note == "replace failed (503: service unavailable); the stop stays"
    assert vsrv.orders[sl]["status"] in ("new", "held", "accepted")
    vsrv.faults.add("503", method="PATCH", times=1)
    vsrv.faults.add("503", method="GET", path=f"/v2/orders/{sl}", times=None)
    result = live.move_stop(StopUpdate("V11", sl, Decimal(str(round(vsrv.price("V11") * 0.95, 2))), "lv-move-3-s2"))
    assert result.ok is False
    assert result.note == "replace failed (service unavailable); the stop stays where it was"


def test_cancel_sends_one_delete_per_group_and_waits_until_gone(vsrv, live, monkeypatch):
    monkeypatch.setattr(alpaca_venue.time, "sleep", lambda s: None)
    parent, tp, sl = _protected(vsrv, live, "V12", 2, "lv-cancel-1")
    live.sync_fills(vsrv.now)
    live.snapshot(vsrv.now)
    before = vsrv.count("/v2/orders/", method="DELETE")
    assert live.cancel((parent, tp, sl)) is True  # the filled parent is not open: left alone
    assert vsrv.count("/v2/orders/", method="DELETE") - before == 1
    assert vsrv.orders[tp]["status"] == "canceled"
    assert vsrv.orders[sl]["status"] == "canceled"
    assert vsrv.orders[parent]["status"] == "filled"


def test_cancel_not_confirmed_in_time_is_false(vsrv, live, monkeypatch):
    monkeypatch.setattr(alpaca_venue.time, "sleep", lambda s: None)
    _, _, sl = _protected(vsrv, live, "V13", 1, "lv-cancel-2")
    live.snapshot(vsrv.now)
    vsrv.faults.add("cancel_never_confirmed", symbol="V13")
    live.cancel_wait_seconds = 0.05
    assert live.cancel((sl,)) is False
    vsrv.faults.clear()
    vsrv.settle()


class CancelGateway:
    """Open-order reads scripted round by round, cancels recorded."""

    def __init__(self, rounds: list[list]) -> None:
        self.rounds, self.cancels = rounds, []

    def cancel(self, oid):
        self.cancels.append(oid)
        return "canceled"

    def open_orders(self):
        return self.rounds.pop(0) if len(self.rounds) > 1 else self.rounds[0]


def venue_with(gw, open_orders=()) -> AlpacaVenue:
    st = SimpleNamespace(bar_period=HOUR)
    v = AlpacaVenue(st, gw, watcher=None)
    v._open = {o.order_id: o for o in open_orders}
    return v


def raw(oid, status="new", legs=()):
    return SimpleNamespace(id=oid, status=status, legs=list(legs))


def test_cancel_repeats_for_members_the_group_cancel_missed(monkeypatch):
    monkeypatch.setattr(alpaca_venue.time, "sleep", lambda s: None)
    a = OpenOrder("a", "AAPL", "sell", "limit", 1, parent_id=None)
    b = OpenOrder("b", "AAPL", "sell", "stop", 1, parent_id="a")
    c = OpenOrder("c", "AAPL", "sell", "limit", 1, parent_id="p2")
    d = OpenOrder("d", "AAPL", "sell", "stop", 1, parent_id="p2")
    group2 = raw("p2", "filled", [raw("c", "pending_cancel"), raw("d", "pending_cancel")])
    gw = CancelGateway([[raw("a", "pending_cancel", [raw("b")]), group2],
                        [raw("x", "filled", [raw("b", "new"), raw("d", "pending_cancel")])],
                        []])
    v = venue_with(gw, [a, b, c, d])
    assert v.cancel(("a", "b", "c", "d", "unknown")) is True
    # one DELETE per group first; then b, which still stood; d was on its way
    assert sorted(gw.cancels[:2]) == ["a", "c"]
    assert gw.cancels[2:] == ["b"]


def test_cancel_without_a_snapshot_cancels_every_id(monkeypatch):
    monkeypatch.setattr(alpaca_venue.time, "sleep", lambda s: None)
    gw = CancelGateway([[raw("a")], []])
    v = venue_with(gw)
    assert v.cancel(("a", "b")) is True
    assert sorted(gw.cancels) == ["a", "b"]


def test_cancel_waits_a_quarter_second_between_reads(monkeypatch):
    slept = []
    monkeypatch.setattr(alpaca_venue.time, "sleep", slept.append)
    gw = CancelGateway([[raw("a", "pending_cancel")], [raw("a", "pending_cancel")], []])
    v = venue_with(gw, [OpenOrder("a", "AAPL", "sell", "limit", 1)])
    assert v.cancel_wait_seconds == 10.0
    assert v.cancel(("a",)) is True
    assert slept == [0.25, 0.25]
    assert gw.cancels == ["a"]


def test_first_snapshot_reads_the_open_orders_itself(vsrv, live):
    result = live.submit(LimitOrder("V16", 1, "buy", Decimal("50"), "lv-first-1"), "entry")
    live.st.session = "extended"
    live.st.features = FeatureParams.from_settings(live.st.settings)  # the meta-model's columns too
    snap = live.snapshot(vsrv.now)
    assert set(FEATURE_NAMES) <= set(snap.market.columns)
    assert result.broker_id in {o.order_id for o in snap.open_orders}
    assert snap.session == "extended"
    assert live.bars.day is not None  # the bar window is kept for the next iteration
    assert {"AAPL", "SPY"} <= set(live.bars.frames)


def test_cancel_before_any_snapshot_cancels_what_it_is_given(vsrv, live, monkeypatch):
    monkeypatch.setattr(alpaca_venue.time, "sleep", lambda s: None)
    result = live.submit(LimitOrder("V16", 1, "buy", Decimal("51"), "lv-first-2"), "entry")
    assert live.cancel((result.broker_id,)) is True
    assert vsrv.orders[result.broker_id]["status"] == "canceled"


def test_fills_settle_orders_in_doubt_first(vsrv, live):
    sent = live.submit(LimitOrder("V16", 1, "buy", Decimal("52"), "lv-doubt-1"), "entry")
    j = live.st.journal
    for cid in ("lv-doubt-1", "lv-doubt-2"):
        j.record_order(vsrv.now, client_order_id=cid, symbol="V16", side="buy", order_type="limit",
                       order_class="simple", qty=1, intent="enter", role="entry", status="unknown")
    live.watcher.watch.clear()
    lines = live.sync_fills(vsrv.now)
    assert "lv-doubt-1: had no answer from Alpaca; Alpaca has it (new)" in lines or \
        "lv-doubt-1: had no answer from Alpaca; Alpaca has it (accepted)" in lines
    assert "lv-doubt-2: had no answer from Alpaca; Alpaca has no such order (not sent)" in lines
    assert live.watcher.watch[sent.broker_id]["symbol"] == "V16"


def test_snapshot_and_fills_share_one_open_orders_read(vsrv, live):
    bought = live.submit(MarketOrder("V14", 4, "buy", "lv-fill-1"), "entry")
    vsrv.settle()
    before = vsrv.count("/v2/orders", method="GET")
    lines = live.sync_fills(vsrv.now)
    price = float(vsrv.orders[bought.broker_id]["filled_avg_price"])
    assert f"fill: V14: buy 4 filled at {price:,.2f} (entry)" in lines
    reads = vsrv.count("/v2/orders", method="GET") - before
    snap = live.snapshot(vsrv.now)
    assert vsrv.count("/v2/orders", method="GET") - before == reads  # the snapshot used the read sync_fills made
    live.snapshot(vsrv.now)
    assert vsrv.count("/v2/orders", method="GET") - before == reads + 1  # used once only
    assert snap.holdings["V14"].qty >= 4
    assert set(live._open) == {o.order_id for o in snap.open_orders}


def test_position_is_fresh_live_and_the_snapshots_in_a_dry_run(vsrv, live):
    vsrv.add_position("V15", 7, 400.0)
    assert live.position("ZZZZ") == BrokerPosition(0.0, 0.0)
    live.dry_run = True
    assert live.position("V15") == live.gw.position("V15")  # no snapshot yet: read from Alpaca
    snap = live.snapshot(vsrv.now)
    qty = snap.holdings["V15"].qty
    vsrv.add_position("V15", 9, 400.0)
    assert live.position("V15") == BrokerPosition(qty, qty)
    assert live.position("ZZZZ") == BrokerPosition(0.0, 0.0)


def test_alpaca_answer_is_json_ready_or_none():
    assert _alpaca_answer(None) is None
    assert _alpaca_answer(SimpleNamespace(id="x")) is None
