"""Hand-built snapshots and stand-in confidence models for planner tests."""

import math
from datetime import datetime

import numpy as np
import pandas as pd

from trading.snapshot import Holding, OpenOrder, Snapshot

NOW = pd.Timestamp("2024-03-05 10:30", tz="America/New_York").to_pydatetime()


def market(rows: dict[str, dict], now: datetime = NOW) -> pd.DataFrame:
    """Indicator rows: {"AAPL": {"close": 100, "rsi": 25}}; missing columns are NaN; each row's last bar is the
    hour before `now` unless the row gives its own "bar_time"."""
    cols = ["close", "rsi", "trend", "atr", "high", "low"]
    cols += sorted({k for r in rows.values() for k in r} - set(cols) - {"bar_time"})  # e.g. atr_pct, adv
    df = pd.DataFrame([{c: r.get(c, math.nan) for c in cols} for r in rows.values()],
                      index=pd.Index(list(rows), name="symbol"), columns=cols)
    last = pd.Timestamp(now) - pd.Timedelta(hours=1)
    df["bar_time"] = pd.DatetimeIndex([pd.Timestamp(r.get("bar_time", last)) for r in rows.values()])
    return df


def snapshot(*, cash: float = 50_000.0, portfolio_value: float | None = None, holdings=(), orders=(),
             prices: dict | None = None, now: datetime = NOW, session: str = "regular") -> Snapshot:
    """A hand-built snapshot. holdings: (symbol, qty, avg_entry); prices: {symbol: price or row dict}."""
    rows = {}
    for sym, value in (prices or {}).items():
        rows[sym] = value if isinstance(value, dict) else {"close": value}
    held = {sym: Holding(sym, qty, entry) for sym, qty, entry in holdings}
    mkt = market(rows, now)
    if portfolio_value is None:
        portfolio_value = cash + sum(h.qty * float(mkt.at[s, "close"]) for s, h in held.items() if s in mkt.index)
    return Snapshot(now=now, cash=cash, portfolio_value=portfolio_value, holdings=held, open_orders=tuple(orders),
                    market=mkt, session=session)


def oco_legs(symbol: str, qty: float, stop: float, target: float, group: str = "g1") -> tuple[OpenOrder, OpenOrder]:
    return (OpenOrder(f"{group}-tp", symbol, "sell", "limit", qty, limit_price=target, parent_id=group),
            OpenOrder(f"{group}-sl", symbol, "sell", "stop", qty, stop_price=stop, parent_id=group))


class Fixed:
    """A confidence model that returns a fixed number and records its calls."""

    name = "fixed"

    def __init__(self, value):
        self.value, self.calls = value, []

    def describe(self):
        return "fixed"

    def gate(self, now):
        return None

    def score(self, rows):
        self.calls.append(list(rows.index))
        return np.full(len(rows), self.value, dtype=float)
