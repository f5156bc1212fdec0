"""The NYSE calendar (pandas_market_calendars), cached per year: regular sessions, early closes, holidays."""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import pandas_market_calendars as mcal

from .values import NY, from_ns, to_ns

EXTENDED_OPEN = time(4, 0)
EXTENDED_CLOSE = time(20, 0)


class Sessions:
    """Regular sessions as sorted arrays of open/close nanoseconds; years are loaded on demand."""

    def __init__(self) -> None:
        self._cal = mcal.get_calendar("NYSE")
        self._years: set[int] = set()
        self._days = np.array([], dtype="datetime64[D]")
        self._opens = np.array([], dtype=np.int64)
        self._closes = np.array([], dtype=np.int64)
        self._lock = threading.Lock()

    def _ensure(self, first_year: int, last_year: int) -> None:
        missing = [y for y in range(first_year, last_year + 1) if y not in self._years]
        if not missing:
            return
        with self._lock:
            frames = []
            for y in missing:
                if y in self._years:
                    continue
                frames.append(self._cal.schedule(start_date=f"{y}-01-01", end_date=f"{y}-12-31"))
                self._years.add(y)
            if not frames:
                return
            days = [self._days] + [np.asarray(f.index.values, dtype="datetime64[D]") for f in frames]
            opens = [self._opens] + [f["market_open"].astype("int64").to_numpy() for f in frames]
            closes = [self._closes] + [f["market_close"].astype("int64").to_numpy() for f in frames]
            d, o, c = np.concatenate(days), np.concatenate(opens), np.concatenate(closes)
            order = np.argsort(o)
            self._days, self._opens, self._closes = d[order], o[order], c[order]

    def _around(self, t: datetime) -> None:
        self._ensure(t.year - 1, t.year + 1)

    # ------------------------------------------------------------------ queries
    def session_at(self, t: datetime) -> tuple[datetime, datetime] | None:
        """(open, close) of the regular session containing t, else None."""
        self._around(t)
        ns = to_ns(t)
        i = int(np.searchsorted(self._opens, ns, side="right")) - 1
        if i >= 0 and ns < self._closes[i]:
            return from_ns(self._opens[i]), from_ns(self._closes[i])
        return None

    def is_open(self, t: datetime) -> bool:
        return self.session_at(t) is not None

    def next_session(self, t: datetime, *, strictly_after_open: bool = True) -> tuple[datetime, datetime]:
        """The first session whose open is after t (or at t when strictly_after_open is False)."""
        self._around(t)
        ns = to_ns(t)
        side = "right" if strictly_after_open else "left"
        i = int(np.searchsorted(self._opens, ns, side=side))
        if i >= len(self._opens):
            self._ensure(t.year + 2, t.year + 2)
            i = int(np.searchsorted(self._opens, ns, side=side))
        return from_ns(self._opens[i]), from_ns(self._closes[i])

    def current_or_next(self, t: datetime) -> tuple[datetime, datetime]:
        """The session containing t, else the next one."""
        return self.session_at(t) or self.next_session(t)

    def last_close_before(self, t: datetime) -> datetime | None:
        self._around(t)
        ns = to_ns(t)
        i = int(np.searchsorted(self._closes, ns, side="left")) - 1
        return from_ns(self._closes[i]) if i >= 0 else None

    def opens_between(self, a: datetime, b: datetime) -> list[datetime]:
        """Session opens in (a, b]."""
        self._ensure(a.year, b.year + 1)
        lo = int(np.searchsorted(self._opens, to_ns(a), side="right"))
        hi = int(np.searchsorted(self._opens, to_ns(b), side="right"))
        return [from_ns(x) for x in self._opens[lo:hi]]

    def closes_array(self, first_year: int, last_year: int) -> tuple[np.ndarray, np.ndarray]:
        self._ensure(first_year, last_year)
        return self._opens, self._closes

    def between(self, start: date, end: date) -> list[tuple[date, datetime, datetime]]:
        """(date, open, close) of every session with start <= date <= end."""
        self._ensure(start.year, end.year)
        lo = int(np.searchsorted(self._days, np.datetime64(start, "D"), side="left"))
        hi = int(np.searchsorted(self._days, np.datetime64(end, "D"), side="right"))
        return [(pd.Timestamp(self._days[i]).date(), from_ns(self._opens[i]), from_ns(self._closes[i]))
                for i in range(lo, hi)]

    def is_trading_day(self, d: date) -> bool:
        return bool(self.between(d, d))

    def extended_window(self, t: datetime) -> bool:
        """04:00-20:00 New York on a trading day (pre-market, regular and after-hours)."""
        local = t.astimezone(NY)
        return self.is_trading_day(local.date()) and EXTENDED_OPEN <= local.time() < EXTENDED_CLOSE

    def extended_close(self, t: datetime) -> datetime:
        """20:00 of t's trading day when t is before it, else 20:00 of the next trading day."""
        local = t.astimezone(NY)
        d = local.date()
        for _ in range(10):
            if self.is_trading_day(d):
                end = datetime.combine(d, EXTENDED_CLOSE, tzinfo=NY)
                if end > local:
                    return end
            d += timedelta(days=1)
        return local + timedelta(days=1)
