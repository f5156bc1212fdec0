"""The real NYSE session calendar (holidays and early closes) and the hourly bar stamps in it."""

from datetime import date

import numpy as np
import pandas as pd
import pandas_market_calendars as mcal

NY = "America/New_York"


def nyse_sessions(start: date | str, end: date | str) -> pd.DataFrame:
    """One row per trading day: market_open, market_close (New York time)."""
    sched = mcal.get_calendar("NYSE").schedule(start_date=pd.Timestamp(start), end_date=pd.Timestamp(end))
    return pd.DataFrame({"market_open": sched["market_open"].dt.tz_convert(NY),
                         "market_close": sched["market_close"].dt.tz_convert(NY)}, index=sched.index)


def sessions_before(end: date | str, count: int) -> pd.DataFrame:
    """The `count` sessions strictly before `end` (for warm-up history)."""
    span = pd.Timestamp(end) - pd.Timedelta(days=int(count * 1.6) + 10)
    s = nyse_sessions(span, pd.Timestamp(end) - pd.Timedelta(days=1))
    return s.iloc[-count:]


def hourly_bars(sessions: pd.DataFrame) -> pd.DataFrame:
    """Regular-session hourly bars stamped at their start: 09:30, 10:30, ... up to the close.

    Columns: `start` (the index), `minutes` (60, or 30 for the last bar of a 16:00 close),
    `first` (True on the session's first bar, where the overnight gap lands), `session` (date).
    """
    starts, minutes, first, day = [], [], [], []
    opens_closes = zip(sessions["market_open"], sessions["market_close"], strict=True)
    for d, (o, c) in zip(sessions.index, opens_closes, strict=True):
        t = o
        k = 0
        while t < c:
            end = min(t + pd.Timedelta(hours=1), c)
            starts.append(t)
            minutes.append((end - t).total_seconds() / 60)
            first.append(k == 0)
            day.append(d)
            t += pd.Timedelta(hours=1)
            k += 1
    index = pd.DatetimeIndex(starts, name="datetime")
    return pd.DataFrame({"minutes": np.array(minutes), "first": np.array(first), "session": day}, index=index)
