"""One symbol's scripted bars as arrays, with the bar ends, the visibility rule and timeframe aggregation."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from .sessions import Sessions
from .values import NY, from_ns, to_ns

HOUR_NS = 3_600_000_000_000
MIN_NS = 60_000_000_000
DAY_NS = 24 * HOUR_NS

_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D|Week|W|Month|M)$")
_UNIT_NS = {"Min": MIN_NS, "T": MIN_NS, "Hour": HOUR_NS, "H": HOUR_NS}


def parse_timeframe(text: str) -> tuple[str, int]:
    """'1Hour' -> ('hour', 3600e9 ns), '15Min' -> ('min', ...), '1Day' -> ('day', 0). ValueError if invalid."""
    m = _TIMEFRAME.match(text or "")
    if not m:
        raise ValueError(text)
    n, unit = int(m.group(1)), m.group(2)
    if unit in ("Min", "T") and 1 <= n <= 59:
        return "intraday", n * MIN_NS
    if unit in ("Hour", "H") and 1 <= n <= 23:
        return "intraday", n * HOUR_NS
    if unit in ("Day", "D") and n == 1:
        return "day", DAY_NS
    if unit in ("Week", "W") and n == 1:
        return "week", 7 * DAY_NS
    if unit in ("Month", "M") and n in (1, 2, 3, 4, 6, 12):
        return "month", 0
    raise ValueError(text)


def _column(df: pd.DataFrame, *names: str) -> np.ndarray | None:
    lower = {str(c).lower(): c for c in df.columns}
    for n in names:
        if n in lower:
            return df[lower[n]].to_numpy(dtype=float)
    return None


class BarSeries:
    """Bars of one symbol. `start`/`end` are int64 ns; a bar is visible at t when end <= t.

    The bar length is the smallest gap between two starts (1 hour when there is one bar); a bar that starts
    inside a regular session is cut at the session close (the 15:30 hourly bar ends at 16:00).
    """

    def __init__(self, symbol: str, df: pd.DataFrame, sessions: Sessions, step: timedelta | None = None) -> None:
        if not isinstance(df.index, pd.DatetimeIndex) or df.index.tz is None:
            raise ValueError(f"{symbol}: bars need a tz-aware DatetimeIndex (bar start)")
        df = df.sort_index()
        df = df[~df.index.duplicated(keep="last")]
        self.symbol = symbol
        self.start = df.index.tz_convert("UTC").asi8.astype(np.int64)
        self.open = _column(df, "open", "o")
        self.high = _column(df, "high", "h")
        self.low = _column(df, "low", "l")
        self.close = _column(df, "close", "c")
        if self.open is None or self.high is None or self.low is None or self.close is None:
            raise ValueError(f"{symbol}: bars need open/high/low/close columns")
        vol = _column(df, "volume", "v")
        self.volume = vol if vol is not None else np.full(len(df), 1000.0)
        self.trades = np.maximum(1, (self.volume // 100)).astype(np.int64)
        self.vwap = (self.high + self.low + self.close) / 3.0
        if step is not None:
            self.step_ns = int(step / timedelta(microseconds=1)) * 1000
        elif len(self.start) > 1:
            self.step_ns = int(np.min(np.diff(self.start)))
        else:
            self.step_ns = HOUR_NS
        end = self.start + self.step_ns
        if len(self.start):
            first = from_ns(self.start[0])
            last = from_ns(self.start[-1])
            opens, closes = sessions.closes_array(first.year, last.year)
            i = np.searchsorted(opens, self.start, side="right") - 1
            ok = i >= 0
            inside = np.zeros(len(self.start), dtype=bool)
            inside[ok] = self.start[ok] < closes[i[ok]]
            end = np.where(inside, np.minimum(end, closes[np.clip(i, 0, None)]), end)
        self.end = end.astype(np.int64)

    def __len__(self) -> int:
        return len(self.start)

    # ------------------------------------------------------------------ visibility
    def last_ended(self, t_ns: int) -> int:
        """Index of the last bar with end <= t, or -1."""
        return int(np.searchsorted(self.end, t_ns, side="right")) - 1

    def current(self, t_ns: int) -> int:
        """Index of the bar with start <= t < end, or -1."""
        i = int(np.searchsorted(self.start, t_ns, side="right")) - 1
        return i if i >= 0 and t_ns < self.end[i] else -1

    def price_at(self, t_ns: int) -> float | None:
        """Close of the last ended bar; else the open of the current bar; else None."""
        i = self.last_ended(t_ns)
        if i >= 0:
            return float(self.close[i])
        j = self.current(t_ns)
        return float(self.open[j]) if j >= 0 else None

    def bar_time(self, i: int) -> datetime:
        return from_ns(self.start[i])

    def row(self, i: int) -> dict:
        return {"t": int(self.start[i]), "o": float(self.open[i]), "h": float(self.high[i]), "l": float(self.low[i]),
                "c": float(self.close[i]), "v": float(self.volume[i]), "n": int(self.trades[i]),
                "vw": float(self.vwap[i]), "end": int(self.end[i])}

    # ------------------------------------------------------------------ aggregation
    def bars(self, kind: str, tf_ns: int, cutoff_ns: int, sessions: Sessions) -> list[dict] | None:
        """Bars of the requested timeframe whose end is <= cutoff; None when the timeframe is finer than the data."""
        n = self.last_ended(cutoff_ns) + 1
        if kind == "intraday":
            if tf_ns == self.step_ns:
                return [self.row(i) for i in range(n)]
            if tf_ns < self.step_ns or tf_ns % self.step_ns:
                return None
            return self._aggregate(n, cutoff_ns, lambda t: _floor_local(t, tf_ns), lambda b: b + tf_ns)
        if kind == "day":
            return self._aggregate(n, cutoff_ns, _local_midnight, lambda b: _day_end(b, sessions))
        return None

    def _aggregate(self, n: int, cutoff_ns: int, bucket_of, end_of) -> list[dict]:
        out: list[dict] = []
        cur = None
        for i in range(n):
            b = bucket_of(int(self.start[i]))
            if cur is None or cur["t"] != b:
                if cur is not None:
                    out.append(cur)
                cur = {"t": b, "o": float(self.open[i]), "h": float(self.high[i]), "l": float(self.low[i]),
                       "c": float(self.close[i]), "v": 0.0, "n": 0, "pv": 0.0}
            cur["h"] = max(cur["h"], float(self.high[i]))
            cur["l"] = min(cur["l"], float(self.low[i]))
            cur["c"] = float(self.close[i])
            cur["v"] += float(self.volume[i])
            cur["n"] += int(self.trades[i])
            cur["pv"] += float(self.vwap[i]) * float(self.volume[i])
        if cur is not None:
            out.append(cur)
        result = []
        for bar in out:
            bar["end"] = end_of(bar["t"])
            if bar["end"] > cutoff_ns:
                continue
            pv = bar.pop("pv")
            bar["vw"] = pv / bar["v"] if bar["v"] else bar["c"]
            result.append(bar)
        return result

    def day_bars(self, cutoff_ns: int) -> list[dict]:
        """Daily aggregates of every visible bar, today's partial day included (for snapshots)."""
        n = self.last_ended(cutoff_ns) + 1
        return self._aggregate(n, 2**62, _local_midnight, lambda b: b)


def _floor_local(t_ns: int, tf_ns: int) -> int:
    """Floor to a multiple of the timeframe counted from New York midnight (09:30 -> 09:00 for 1Hour)."""
    midnight = _local_midnight(t_ns)
    return midnight + ((t_ns - midnight) // tf_ns) * tf_ns


def _local_midnight(t_ns: int) -> int:
    local = from_ns(t_ns).astimezone(NY)
    return to_ns(local.replace(hour=0, minute=0, second=0, microsecond=0))


def _day_end(midnight_ns: int, sessions: Sessions) -> int:
    d = from_ns(midnight_ns).astimezone(NY).date()
    rows = sessions.between(d, d)
    return to_ns(rows[0][2]) if rows else midnight_ns + DAY_NS
