"""Stale data: no new order in a symbol whose last bar lags the freshest bar by STALE_BARS periods."""

import pandas as pd

from trading.risk.verdict import Verdict


def stale_data(bar_time, freshest, bar_period: pd.Timedelta, stale_bars: int) -> Verdict:
    """Measured against the freshest bar in the market, not the clock: overnight and weekends are not
    stale, a symbol whose feed stopped is. (A feed where everything stopped is the live loop's concern.)"""
    if stale_bars <= 0 or freshest is None or pd.isna(freshest):
        return Verdict.allow()
    if bar_time is None or pd.isna(bar_time):
        return Verdict.deny("stale_data", "no bars for this symbol")
    lag = (pd.Timestamp(freshest) - pd.Timestamp(bar_time)) / bar_period
    if lag < stale_bars:
        return Verdict.allow()
    return Verdict.deny("stale_data", f"last bar {pd.Timestamp(bar_time):%Y-%m-%d %H:%M} is {lag:.0f} bars behind "
                        f"the market (STALE_BARS={stale_bars})")
