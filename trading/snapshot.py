"""What the planners see: one frozen snapshot of the account and the market per iteration.

The strategy gathers it (positions, open orders with legs, indicator rows for every symbol, cash,
portfolio value, time) and passes it to plain functions; nothing here talks to a broker.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pandas as pd

from trading.orders import Session

STOP_TYPES = ("stop", "stop_limit", "trailing_stop")


@dataclass(frozen=True)
class Holding:
    symbol: str
    qty: float
    avg_entry_price: float | None  # None when the broker does not know the cost basis

    def value(self, price: float) -> float:
        return self.qty * price

    def pnl_pct(self, price: float) -> float | None:
        if not self.avg_entry_price or not math.isfinite(price):
            return None
        return price / self.avg_entry_price - 1.0


@dataclass(frozen=True)
class OpenOrder:
    order_id: str
    symbol: str
    side: Literal["buy", "sell"]
    order_type: str  # market, limit, stop, stop_limit, trailing_stop
    qty: float
    limit_price: float | None = None
    stop_price: float | None = None
    order_class: str = "simple"  # simple, bracket, oco, oto
    parent_id: str | None = None  # set on bracket/OCO legs
    client_order_id: str | None = None

    @property
    def is_protective_stop(self) -> bool:
        return self.side == "sell" and self.order_type in STOP_TYPES

    @property
    def is_take_profit(self) -> bool:
        return self.side == "sell" and self.order_type == "limit" and self.parent_id is not None

    @property
    def is_entry(self) -> bool:
        return self.side == "buy" and self.parent_id is None


@dataclass(frozen=True)
class Protection:
    """The server-side exits resting for one symbol."""

    symbol: str
    stop_price: float | None
    target_price: float | None
    stop_qty: float
    order_ids: tuple[str, ...]  # everything to cancel before selling shares (legs and their parents)
    orphan_ids: tuple[str, ...] = ()  # sells in a group with no stop (a bracket whose stop leg was rejected):
    #                                   they hold shares a new OCO needs, and protect nothing on the way down

    @property
    def has_stop(self) -> bool:
        return self.stop_price is not None and self.stop_qty > 0


LOOKUP_COLUMNS = ("close", "rsi", "atr", "high", "low")


@dataclass(frozen=True)
class Snapshot:
    now: datetime
    cash: float
    portfolio_value: float
    holdings: dict[str, Holding]
    open_orders: tuple[OpenOrder, ...]
    # one row per symbol: close, rsi, trend, bar_time, ... (bars completed before `now`); None when `lookups`
    # carries everything instead (the backtest's fast path): read rows through rows(), not this frame
    market: pd.DataFrame | None
    session: Session = "regular"
    notes: tuple[str, ...] = field(default=())  # data problems found while gathering, logged by the planner
    feed_stale: str | None = None  # live: why the whole data feed is behind the clock (no new exposure then)
    # the per-symbol lookups below, when the caller already has them (IndicatorBook.as_of(..., lookups=True))
    lookups: dict | None = field(default=None, repr=False, compare=False)
    # closes of recent completed bars: history(symbols, n) -> DataFrame (the correlation cap); None: unknown
    history: object = field(default=None, repr=False, compare=False)
    quotes: dict | None = field(default=None, repr=False, compare=False)  # live: {symbol: (bid, ask)}
    take_profits: dict = field(default_factory=dict, repr=False, compare=False)  # symbol -> when its last trade
    #                                                                              ended at its take-profit

    def __post_init__(self) -> None:
        # plain dicts for the per-symbol lookups the planners make many times per iteration
        lk = self.lookups
        if lk is None:
            symbols = self.market.index.tolist()
            lk = {col: dict(zip(symbols, self.market[col].to_numpy(dtype=float).tolist(), strict=False))
                  if col in self.market else {} for col in LOOKUP_COLUMNS}
            times = self.market["bar_time"].dropna() if "bar_time" in self.market else ()
            lk["freshest"] = times.max() if len(times) else None
            column = self.market["bar_time"] if "bar_time" in self.market else pd.Series(dtype=object)
            lk["bar_time"] = lambda sym: None if sym not in column.index or pd.isna(column[sym]) else column[sym]
            market = self.market
            lk["rows"] = lambda symbols: market.reindex(list(symbols))
        for col in LOOKUP_COLUMNS:
            object.__setattr__(self, f"_{col}", lk[col])
        object.__setattr__(self, "_freshest", lk["freshest"])
        object.__setattr__(self, "_bar_time", lk["bar_time"])
        object.__setattr__(self, "_rows", lk["rows"])
        if self.history is None and "history" in lk:
            object.__setattr__(self, "history", lk["history"])

    def returns(self, symbols, bars: int) -> pd.DataFrame:
        """Bar-to-bar returns of these symbols over the last `bars` completed bars (empty when unknown)."""
        if self.history is None:
            return pd.DataFrame()
        return self.history(list(symbols), bars + 1).pct_change().iloc[1:]

    def rows(self, symbols) -> pd.DataFrame:
        """The indicator (and feature) rows of these symbols, in this order (NaN for unknown symbols)."""
        return self._rows(symbols)

    @property
    def rsi_values(self) -> dict[str, float]:
        """{symbol: RSI of its last completed bar} (NaN when unknown)."""
        return self._rsi

    def bar_time(self, symbol: str):
        """Start of the symbol's last completed bar, or None when it has none."""
        return self._bar_time(symbol)

    @property
    def freshest_bar(self):
        """Start of the newest bar any symbol has (for the stale-data check), or None."""
        return self._freshest

    def price(self, symbol: str) -> float:
        """Close of the last completed bar, or NaN when the symbol has no data."""
        return self._close.get(symbol, math.nan)

    def rsi(self, symbol: str) -> float:
        return self._rsi.get(symbol, math.nan)

    def atr(self, symbol: str) -> float:
        return self._atr.get(symbol, math.nan)

    def bar_range(self) -> tuple[dict[str, float], dict[str, float]]:
        """(high, low) of each symbol's last completed bar."""
        return self._high, self._low

    def value(self, symbol: str) -> float:
        h = self.holdings.get(symbol)
        return 0.0 if h is None else h.value(self.price(symbol))

    def orders_for(self, symbol: str) -> list[OpenOrder]:
        return [o for o in self.open_orders if o.symbol == symbol]

    def protection(self, symbol: str) -> Protection:
        cache = self.__dict__.setdefault("_protection", {})  # every planner asks; the snapshot never changes
        if symbol not in cache:
            cache[symbol] = self._protection_of(symbol)
        return cache[symbol]

    def _protection_of(self, symbol: str) -> Protection:
        orders = self.orders_for(symbol)
        stops = [o for o in orders if o.is_protective_stop]
        targets = [o for o in orders if o.side == "sell" and o.order_type == "limit"]
        sells = [o for o in orders if o.side == "sell"]
        ids = tuple(dict.fromkeys([o.order_id for o in sells] + [o.parent_id for o in sells if o.parent_id]))
        stop_price = max((o.stop_price for o in stops if o.stop_price), default=None)
        target_price = min((o.limit_price for o in targets if o.limit_price), default=None)
        guarded = {o.parent_id or o.order_id for o in stops}
        orphans = tuple(o.order_id for o in sells if o not in stops and (o.parent_id or o.order_id) not in guarded)
        return Protection(symbol, stop_price, target_price, sum(o.qty for o in stops), ids, orphans)

    def has_open_entry(self, symbol: str) -> bool:
        return any(o.is_entry for o in self.orders_for(symbol))

    def open_buy_notional(self) -> float:
        """Cash promised to open buy orders that have not filled (the broker reserves it too)."""
        total = 0.0
        for o in self.open_orders:
            if o.is_entry:
                px = o.limit_price or self.price(o.symbol)
                total += o.qty * px if math.isfinite(px) else 0.0
        return total
