"""The real NYSE session calendar (holidays and early closes), the hourly bar stamps in it, and the
extended-hours windows around each session."""

from datetime import date, datetime
from functools import lru_cache

import numpy as np
import pandas as pd
import pandas_market_calendars as mcal

NY = "America/New_York"


def nyse_sessions(start: date | str, end: date | str) -> pd.DataFrame:
    """One row per trading day: market_open, market_close (New York time)."""
    sched = mcal.get_calendar("NYSE").schedule(start_date=pd.Timestamp(start), end_date=pd.Timestamp(end))
    if sched.empty:  # a holiday or a weekend alone
        return pd.DataFrame({"market_open": pd.Series(dtype=f"datetime64[ns, {NY}]"),
                             "market_close": pd.Series(dtype=f"datetime64[ns, {NY}]")})
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


PRE_MARKET_OPEN = pd.Timedelta(hours=4)  # 04:00 ET
AFTER_HOURS_LENGTH = pd.Timedelta(hours=4)  # after-hours runs four hours past the close: 16-20, 13-17 on early closes


@lru_cache(maxsize=64)
def _session_on(day: date) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    s = nyse_sessions(day, day)
    return None if s.empty else (s["market_open"].iloc[0], s["market_close"].iloc[0])


def in_extended_hours(now: datetime) -> bool:
    """True in the pre-market (04:00 to the open) or the after-hours session (the close plus four hours:
    16:00-20:00, or 13:00-17:00 on an early-close day) of a trading day. A holiday or weekend has neither."""
    local, session = _local_session(now)
    if session is None:
        return False
    market_open, market_close = session
    pre_market = local.normalize() + PRE_MARKET_OPEN <= local < market_open
    return pre_market or market_close <= local < market_close + AFTER_HOURS_LENGTH


def in_regular_session(now: datetime) -> bool:
    """True from the open to the close of a trading day (the real calendar: early closes, holidays)."""
    local, session = _local_session(now)
    return session is not None and session[0] <= local < session[1]


def _local_session(now: datetime) -> tuple[pd.Timestamp, tuple[pd.Timestamp, pd.Timestamp] | None]:
    local = pd.Timestamp(now).tz_convert(NY)
    return local, _session_on(local.date())
