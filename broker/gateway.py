"""Reads from Alpaca in as few requests as possible, retried on transient failures.

Per iteration: one account read, one positions read, one open-orders read (legs nested under their
parents), one multi-symbol bars request for every symbol (alpaca-py follows next_page_token, so a
long history is a few pages of the same request, not a request per symbol) and one latest-trades
request. Transient failures (429, 5xx, timeouts, resets) are retried with exponential backoff
(tenacity); when Alpaca stays unreachable the caller gets BrokerUnavailable and skips the rest of the
iteration. Writes are not retried blindly: a cancel is idempotent and may be repeated, a replace is
looked up after a failure.
"""

import logging
from collections.abc import Callable
from datetime import datetime

import pandas as pd
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest, StockLatestTradeRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrderByIdRequest, GetOrdersRequest, ReplaceOrderRequest
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from broker.errors import BrokerUnavailable, Incident, is_transient, status_of
from trading.execution.resize import BrokerPosition

logger = logging.getLogger("trader.broker")
NY = "America/New_York"


def timeframe(bar_period: pd.Timedelta) -> TimeFrame:
    minutes = int(bar_period / pd.Timedelta(minutes=1))
    if minutes >= 1440:
        return TimeFrame(1, TimeFrameUnit.Day)
    if minutes % 60 == 0:
        return TimeFrame(minutes // 60, TimeFrameUnit.Hour)
    return TimeFrame(minutes, TimeFrameUnit.Minute)


class AlpacaGateway:
    def __init__(self, trading, data, feed: str = "iex", attempts: int = 4, max_wait: float = 8.0,
                 first_wait: float = 0.5):
        self.trading, self.data = trading, data
        self.feed = DataFeed(feed)
        self.attempts, self.max_wait, self.first_wait = attempts, max_wait, first_wait
        self.incident = Incident()

    # ------------------------------------------------------------------ retries
    def _read(self, what: str, fn: Callable):
        retrying = Retrying(stop=stop_after_attempt(self.attempts), reraise=False,
                            wait=wait_exponential(multiplier=self.first_wait, max=self.max_wait),
                            retry=retry_if_exception(is_transient))
        try:
            result = retrying(fn)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            self.incident.failed(what, cause)
            raise BrokerUnavailable(f"{what} failed {self.attempts} times: {cause}") from cause
        except Exception as exc:
            if is_transient(exc):
                self.incident.failed(what, exc)
                raise BrokerUnavailable(f"{what}: {exc}") from exc
            raise
        self.incident.recovered(what)
        return result

    # ------------------------------------------------------------------ trading reads
    def account(self):
        return self._read("account", self.trading.get_account)

    def clock(self):
        return self._read("clock", self.trading.get_clock)

    def positions(self) -> list:
        return self._read("positions", self.trading.get_all_positions)

    def position(self, symbol: str) -> BrokerPosition:
        """One symbol's position read now (flat when Alpaca has none): what a sale is sized from."""
        def fetch():
            try:
                p = self.trading.get_open_position(symbol)
            except APIError as exc:
                if status_of(exc) == 404:
                    return BrokerPosition.flat()
                raise
            qty = float(p.qty)
            available = float(p.qty_available) if p.qty_available is not None else qty
            return BrokerPosition(qty, available)

        return self._read(f"position {symbol}", fetch)

    def open_orders(self) -> list:
        req = GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True, limit=500)
        return self._read("open orders", lambda: self.trading.get_orders(filter=req))

    def order(self, order_id: str):
        return self._read(f"order {order_id}",
                          lambda: self.trading.get_order_by_id(order_id, filter=GetOrderByIdRequest(nested=True)))

    def order_by_client_id(self, client_order_id: str):
        """The order with this client order id, or None when Alpaca has none."""
        def fetch():
            try:
                return self.trading.get_order_by_client_id(client_order_id)
            except APIError as exc:
                if status_of(exc) == 404:
                    return None
                raise

        return self._read(f"order {client_order_id}", fetch)

    # ------------------------------------------------------------------ writes
    def cancel(self, order_id: str) -> str:
        """'canceled', 'gone' (already terminal or unknown: nothing to cancel) — retried, as cancelling
        twice is harmless."""
        def send():
            try:
                self.trading.cancel_order_by_id(order_id)
                return "canceled"
            except APIError as exc:
                if status_of(exc) in (404, 422):
                    return "gone"
                raise

        return self._read(f"cancel {order_id}", send)

    def replace_stop(self, order_id: str, stop_price: float, client_order_id: str | None = None):
        """PATCH the stop price of a resting stop (leg); the replacement carries the bot's client order id.
        Not retried: a replace that may have gone through is looked up by the caller instead of being sent
        twice."""
        return self.trading.replace_order_by_id(order_id, ReplaceOrderRequest(stop_price=stop_price,
                                                                             client_order_id=client_order_id))

    # ------------------------------------------------------------------ market data
    def bars(self, symbols: list[str], bar_period: pd.Timedelta, start: datetime, end: datetime,
             adjustment: str = "all") -> dict[str, pd.DataFrame]:
        """Bars for all symbols in one request (paged by the SDK), as per-symbol OHLCV frames in New York time."""
        if not symbols:
            return {}
        req = StockBarsRequest(symbol_or_symbols=list(symbols), timeframe=timeframe(bar_period), start=start,
                               end=end, feed=self.feed, adjustment=Adjustment(adjustment))
        barset = self._read("bars", lambda: self.data.get_stock_bars(req))
        df = barset.df
        out: dict[str, pd.DataFrame] = {}
        if df is None or df.empty:
            return out
        for sym, frame in df.groupby(level=0):
            f = frame.droplevel(0)[["open", "high", "low", "close", "volume"]].astype(float)
            f.index = pd.DatetimeIndex(f.index).tz_convert(NY)
            out[str(sym)] = f.sort_index()
        return out

    def latest_quotes(self, symbols: list[str]) -> dict[str, tuple[float, float]]:
        """{symbol: (bid, ask)} of the latest quote, one request for all (symbols without a two-sided quote are
        left out)."""
        if not symbols:
            return {}
        req = StockLatestQuoteRequest(symbol_or_symbols=list(symbols), feed=self.feed)
        quotes = self._read("latest quotes", lambda: self.data.get_stock_latest_quote(req))
        return {str(sym): (float(q.bid_price), float(q.ask_price)) for sym, q in (quotes or {}).items()
                if q is not None and q.bid_price and q.ask_price}

    def latest_prices(self, symbols: list[str]) -> dict[str, float]:
        """Last trade price per symbol, one request for all."""
        return {sym: float(t.price) for sym, t in self._latest_trades(symbols).items()}

    def latest_trade_times(self, symbols: list[str]) -> dict[str, datetime]:
        """When each symbol last traded on the feed (aware), one request for all: what the price stream should
        have carried."""
        return {sym: t.timestamp for sym, t in self._latest_trades(symbols).items() if t.timestamp is not None}

    def _latest_trades(self, symbols: list[str]) -> dict:
        if not symbols:
            return {}
        req = StockLatestTradeRequest(symbol_or_symbols=list(symbols), feed=self.feed)
        trades = self._read("latest trades", lambda: self.data.get_stock_latest_trade(req))
        return {str(sym): t for sym, t in (trades or {}).items() if t is not None}
