"""The live bar window: the last N completed regular-session bars of every symbol, kept between iterations.

The first iteration fetches the whole window (history_bars per symbol: 400, or 1,500 with the
meta-model) in one multi-symbol request, which alpaca-py pages through (next_page_token, 10,000 bars a
page). Later iterations fetch only from the last bar held onwards, still one request for all symbols,
and merge it in: for 500 symbols that is one page an hour instead of 25 (or 75).

The bars are requested split- and dividend-adjusted, so a corporate action can rewrite a symbol's
history overnight. The first iteration of each New York day therefore fetches a few bars more
(OVERLAP) and compares the ones it already held: a symbol whose past bars changed is fetched whole
again, alone. Refetching every symbol's window every morning instead cost 26 pages at 500 symbols and
left the process's memory fragmented (the soak in bench/bench_soak.py: RSS +17% over 500 iterations
while the live heap stayed flat). Symbols that join later (a position the bot did not open) get a full
fetch of their own; symbols no longer asked for are dropped.
"""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from broker.gateway import AlpacaGateway
from trading.indicators import completed_bars

NY = "America/New_York"
OVERLAP = 3  # bars re-read on a new day: the last held may have been forming, the two before it must match
PRICES = ["open", "high", "low", "close"]


def window_days(history_bars: int, bar_period: pd.Timedelta) -> int:
    """Calendar days that hold `history_bars` regular-session bars (6.5 hours a day), weekends and holidays
    included, with room to spare."""
    if bar_period >= pd.Timedelta(days=1):
        return int(history_bars * 1.5) + 10
    per_day = 6.5 * pd.Timedelta(hours=1) / bar_period
    return int(history_bars / per_day * 1.5) + 10


class LiveBars:
    def __init__(self, gateway: AlpacaGateway, bar_period: pd.Timedelta, history_bars: int):
        self.gw, self.bar_period, self.history_bars = gateway, pd.Timedelta(bar_period), history_bars
        self.window = timedelta(days=window_days(history_bars, self.bar_period))  # a full fetch reaches back this far
        self.frames: dict[str, pd.DataFrame] = {}
        self.day = None  # the New York date of the last update: the first of a day checks for re-adjustments

    def update(self, symbols: list[str], now: datetime) -> dict[str, pd.DataFrame]:
        """Completed bars per symbol as of `now`, at most `history_bars` each."""
        now = pd.Timestamp(now)
        today = now.tz_convert(NY).date()
        new_day = self.day != today
        self.frames = {s: self.frames[s] for s in symbols if s in self.frames}
        # a symbol that had no bars is asked for its whole window again once a day, not every hour
        new = [s for s in symbols if s not in self.frames or (new_day and not len(self.frames[s]))]
        held = [s for s in symbols if s not in new]
        if held:
            back = OVERLAP if new_day else 1  # from the last bar held: it may have been forming, or corrected
            starts = [f.index[-min(back, len(f))] for f in (self.frames[s] for s in held) if len(f)]
            fresh = self._fetch(held, min(starts) if starts else now - self.window, now)
            if new_day:
                moved = [s for s in held if _rewritten(self.frames[s], fresh[s])]
                for sym in moved:  # re-adjusted overnight: nothing held for it can be spliced to the new bars
                    del self.frames[sym], fresh[sym]
                new += moved
            self._merge(fresh)
        if new:
            self._merge(self._fetch(new, now - self.window, now))
        self.day = today  # only now: a fetch that failed leaves the day's check for re-adjustments to the next try
        out = {}
        for sym in symbols:
            df = self.frames.get(sym)
            if df is not None and len(df):
                out[sym] = completed_bars(df, now, self.bar_period).iloc[-self.history_bars:]
        return out

    def _fetch(self, symbols: list[str], start, end) -> dict[str, pd.DataFrame]:
        raw = self.gw.bars(symbols, self.bar_period, pd.Timestamp(start), pd.Timestamp(end))
        if self.bar_period < pd.Timedelta(days=1):  # Alpaca's hourly bars are clock-aligned: keep the session's
            for sym, df in raw.items():
                minutes = df.index.hour * 60 + df.index.minute
                raw[sym] = df[(minutes >= 9 * 60) & (minutes < 16 * 60)]
        for sym in symbols:
            raw.setdefault(sym, self.frames.get(sym, _empty()))
        return raw

    def _merge(self, fresh: dict[str, pd.DataFrame]) -> None:
        keep = self.history_bars + 50  # a little more than needed: the newest bar may still be forming
        for sym, df in fresh.items():
            old = self.frames.get(sym)
            if old is not None and len(old) and df is not old:
                df = pd.concat([old[old.index < df.index[0]] if len(df) else old, df])
            self.frames[sym] = df.iloc[-keep:]


def _rewritten(held: pd.DataFrame, fresh: pd.DataFrame) -> bool:
    """True when bars held (all but the last, which may have been forming) differ from the same bars fetched
    now, or cannot be compared: a split or dividend re-adjusted the symbol's history."""
    if fresh is held or not len(held):
        return False
    common = held.index[:-1].intersection(fresh.index)
    if not len(common):
        return len(held) > 1
    a, b = held.loc[common, PRICES].to_numpy(float), fresh.loc[common, PRICES].to_numpy(float)
    return not np.allclose(a, b, rtol=1e-9, atol=0.0)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["open", "high", "low", "close", "volume"],
                        index=pd.DatetimeIndex([], tz=NY))
