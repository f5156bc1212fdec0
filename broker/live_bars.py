"""The live bar window: the last N completed regular-session bars of every symbol, kept between iterations.

The first iteration of each New York day fetches the whole window (history_bars per symbol: 400, or
1,500 with the meta-model) in one multi-symbol request, which alpaca-py pages through
(next_page_token, 10,000 bars a page). Later iterations that day fetch only from the last bar held
onwards, still one request for all symbols, and merge it in: for 500 symbols that is one page an hour
instead of 25 (or 75). The daily full fetch picks up corporate-action adjustments (the bars are
requested split- and dividend-adjusted, which can rewrite history overnight). Symbols that join later
(a position the bot did not open) get a full fetch of their own.
"""

from datetime import datetime, timedelta

import pandas as pd

from broker.gateway import AlpacaGateway
from trading.indicators import completed_bars

NY = "America/New_York"


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
        self.day = None  # the New York date of the last full fetch

    def update(self, symbols: list[str], now: datetime) -> dict[str, pd.DataFrame]:
        """Completed bars per symbol as of `now`, at most `history_bars` each."""
        now = pd.Timestamp(now)
        today = now.tz_convert(NY).date()
        if self.day != today:
            self.frames, self.day = {}, today
        new = [s for s in symbols if s not in self.frames]
        if new:
            self._merge(self._fetch(new, now - self.window, now))
        held = [s for s in symbols if s in self.frames and s not in new]
        if held:
            # from the last bar held: it is fetched again, in case it was still forming or was corrected
            lasts = [self.frames[s].index[-1] for s in held if len(self.frames[s])]
            since = min(lasts) if lasts else now - self.window
            self._merge(self._fetch(held, since, now))
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


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["open", "high", "low", "close", "volume"],
                        index=pd.DatetimeIndex([], tz=NY))
