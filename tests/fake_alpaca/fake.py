"""FakeAlpaca: the public object tests use (see __init__.py for the API)."""

from __future__ import annotations

import copy
import threading
from datetime import datetime, timedelta

import pandas as pd

from . import views
from .engine import Engine, Settings
from .faults import Faults
from .marketdata import MarketData
from .series import BarSeries
from .server import RateLimiter, serve
from .sessions import Sessions
from .stream_api import StreamsMixin
from .trading_api import TradingApi
from .values import NY, as_ny, from_ns

_SESSIONS: Sessions | None = None
_SESSIONS_LOCK = threading.Lock()


def shared_sessions() -> Sessions:
    """One NYSE calendar per process (loading a year takes ~50 ms)."""
    global _SESSIONS
    with _SESSIONS_LOCK:
        if _SESSIONS is None:
            _SESSIONS = Sessions()
        return _SESSIONS


class FakeAlpaca(StreamsMixin):
    """A local Alpaca (Trading API v2 + stock Market Data v2 + both websockets) on 127.0.0.1 with a simulated
    clock. The websocket side (stream_url, push_trade, ...) is in stream_api.py."""

    def __init__(self, bars: dict[str, pd.DataFrame], *, key: str = "PKFAKE", secret: str = "fake-secret",
                 cash: float = 100_000.0, now: datetime | None = None, bar_size: timedelta | None = None,
                 rate_limit: int | None = 200, data_rate_limit: int | None = 200) -> None:
        self.key, self.secret = key, secret
        self.sessions = shared_sessions()
        series = {sym.upper(): BarSeries(sym.upper(), df, self.sessions, bar_size) for sym, df in bars.items()}
        if now is None:
            starts = [int(s.start[-1]) for s in series.values() if len(s)]
            now = from_ns(max(starts)) if starts else datetime.now(NY).replace(microsecond=0)
        self.faults = Faults(lambda: self.now)
        self.engine = Engine(series, self.sessions, self.faults, cash, as_ny(now), key)
        self.marketdata = MarketData(self.engine)
        self.trading = TradingApi(self.engine)
        self.rate_limiter = RateLimiter({"trading": rate_limit, "data": data_rate_limit})
        self.requests: list[dict] = []
        self.rejections: list[dict] = []
        self.errors: list[str] = []
        self.connections_accepted = 0
        self.log_lock = threading.Lock()
        self._server = None
        self._thread = None
        self._init_streams()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeAlpaca:
        if self._server is None:
            self._server, self._thread = serve(self)
        return self

    def stop(self) -> None:
        self._stop_streams()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_all()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeAlpaca:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeAlpaca is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def dispatch(self, method: str, path: str, query: dict, body):
        with self.engine.lock:
            if path.startswith("/v2/stocks"):
                if method != "GET":
                    return 405, {"message": "method not allowed"}
                return self.marketdata.handle(path, query)
            self.engine.pending.tick()  # one server step: due fills, cancels and replaces resolve first
            self._tag_request()  # this request's own events wait for its response (stream_api.py)
            try:
                return self.trading.handle(method, path, query, body)
            finally:
                self.engine.emit_tag = None

    # ------------------------------------------------------------------ clock and market
    @property
    def now(self) -> datetime:
        return self.engine.now

    def set_now(self, t) -> None:
        """Move the clock to t (naive = New York); every bar, expiry and session open in between is processed."""
        with self.engine.lock:
            old = self.engine.now_ns
            self.engine.clock_advance(as_ny(t))
            self._clock_moved(old)

    def advance(self, delta: timedelta) -> None:
        with self.engine.lock:
            old = self.engine.now_ns
            self.engine.clock_advance(self.engine.now + delta)
            self._clock_moved(old)

    def price(self, symbol: str) -> float:
        with self.engine.lock:
            if symbol.upper() not in self.engine.series:
                raise KeyError(symbol)
            px = self.engine.mark(symbol.upper())
        if px is None:
            raise LookupError(f"no {symbol} bar has started by {self.now}")
        return px

    @property
    def market_is_open(self) -> bool | None:
        return self.engine.market_is_open

    @market_is_open.setter
    def market_is_open(self, value: bool | None) -> None:
        with self.engine.lock:
            self.engine.market_is_open = value

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @property
    def step(self) -> int:
        """Trading API requests handled so far (the clock of pending fills, cancels and replaces)."""
        return self.engine.pending.step

    def settle(self) -> None:
        """Resolve every pending fill, cancel and replace now (what a clock advance does first)."""
        with self.engine.lock:
            self.engine.pending.settle_all()
            self._flush_streams()

    # ------------------------------------------------------------------ state
    @property
    def orders(self) -> dict[str, dict]:
        with self.engine.lock:
            return {oid: o.to_json() for oid, o in self.engine.orders.items()}

    def positions(self) -> dict[str, dict]:
        with self.engine.lock:
            return {s: views.position(self.engine, s) for s in sorted(self.engine.positions)}

    def account(self) -> dict:
        with self.engine.lock:
            return views.account(self.engine)

    @property
    def cash(self) -> float:
        return self.engine.cash

    def add_position(self, symbol: str, qty: float, avg_entry_price: float) -> None:
        """Seed a position (cash is not touched: the shares were bought before the fake started)."""
        with self.engine.lock:
            self.engine.add_position(symbol.upper(), qty, avg_entry_price)

    def set_asset(self, symbol: str, **fields) -> None:
        """Change an asset's flags (tradable, fractionable, shortable, easy_to_borrow, exchange, status)."""
        with self.engine.lock:
            asset = self.engine.assets.setdefault(symbol.upper(), self.engine._default_asset(symbol.upper()))
            unknown = set(fields) - set(asset)
            if unknown:
                raise ValueError(f"unknown asset fields {sorted(unknown)}")
            asset.update(fields)

    def count(self, path_prefix: str, method: str | None = None) -> int:
        with self.log_lock:
            return sum(1 for r in self.requests if r["path"].startswith(path_prefix)
                       and (method is None or r["method"] == method.upper()))

    def clear_log(self) -> None:
        with self.log_lock:
            self.requests.clear()
            self.rejections.clear()

    def snapshot(self) -> dict:
        """A deep copy of orders, positions and account, for assertions."""
        return copy.deepcopy({"orders": self.orders, "positions": self.positions(), "account": self.account()})
