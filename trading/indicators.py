"""Indicators for every symbol, computed with pandas-ta-classic in one pass, read as of a time.

Indicators are causal (a value at bar t uses bars up to t only), so a backtest computes them once
per series and each iteration looks up the last *completed* bar; live, the same functions run over
the rolling window fetched in one batched request. `IndicatorBook.as_of(t)` returns one row per
symbol from bars that ended at or before t, which is what makes look-ahead impossible.

Wilder-smoothed indicators (RSI) depend on where their history starts; with at least
`MIN_HISTORY_BARS` of history the two paths agree to within 1e-6 (tested).
"""

import math
from collections.abc import Callable, Mapping
from datetime import datetime

import numpy as np
import pandas as pd
import pandas_ta_classic as ta

TREND_BARS = 200  # long trend line (simple average: exact on any window of 200+ bars)
MIN_HISTORY_BARS = 400  # live window: RSI forgets its seed ((13/14)^386 < 1e-12); the 200-bar SMA is exact

ColumnsFn = Callable[[pd.DataFrame], pd.DataFrame]


VOL_BARS, VOL_RANK_BARS, ADV_DAYS = 20, 250, 20  # realised volatility, its percentile's look-back, dollar volume
TRADING_DAYS = 252  # a year, to annualise realised volatility


def base_columns(rsi_period: int, bars_per_day: int | None = None) -> ColumnsFn:
    """close, high, low, RSI, the 200-bar trend line and ATR14 for one symbol's OHLCV frame, and what the entry
    filters read: ATR as a share of price, the percentile of 20-bar realised volatility among the last 250
    bars' values, and the average daily dollar volume of the last 20 sessions."""

    def columns(df: pd.DataFrame) -> pd.DataFrame:
        close = df["close"].astype(float)
        out = pd.DataFrame(index=df.index)
        out["close"] = close
        out["high"] = df["high"].astype(float)
        out["low"] = df["low"].astype(float)
        out["rsi"] = _series(ta.rsi(close, length=rsi_period), close.index)
        out["trend"] = _series(ta.sma(close, length=TREND_BARS), close.index)
        out["atr"] = _series(ta.atr(out["high"], out["low"], close, length=14), close.index)
        out["atr_pct"] = out["atr"] / close
        vol = np.log(close).diff().rolling(VOL_BARS).std()
        out["vol_pctile"] = vol.rolling(VOL_RANK_BARS, min_periods=VOL_RANK_BARS // 2).rank(pct=True)
        per_day = bars_per_day or _bars_per_day(df.index)
        out["vol_ann"] = vol * math.sqrt(TRADING_DAYS * per_day)  # annualised, whatever the bar
        dollars = (close * df["volume"].astype(float)) if "volume" in df else pd.Series(np.nan, index=df.index)
        out["adv"] = dollars.rolling(ADV_DAYS * per_day, min_periods=per_day).mean() * per_day
        return out

    return columns


def _bars_per_day(index: pd.DatetimeIndex) -> int:
    """Bars in a typical session (1 for daily bars): the calendar's shape, not its prices."""
    if len(index) == 0:
        return 1
    counts = pd.Series(1, index=index).groupby(index.normalize()).size()
    return max(1, int(counts.median()))


def market_frames(bars: Mapping[str, pd.DataFrame], rsi_period: int, features=None) -> dict[str, pd.DataFrame]:
    """Per symbol: the strategy's columns, plus the meta-model's features when `features` (a
    models.features.FeatureParams) is given. The one builder for backtests (whole series) and live
    (rolling window)."""
    # the session's shape is the calendar's, the same for every symbol: read once, not once per symbol
    longest = max(bars.values(), key=len, default=None)
    columns = base_columns(rsi_period, _bars_per_day(longest.index) if longest is not None else 1)
    frames = {sym: columns(df) for sym, df in bars.items() if len(df)}
    if features is not None:
        from models.features import feature_frames

        for sym, f in feature_frames(bars, features, symbols=tuple(frames)).items():
            frames[sym] = frames[sym].join(f.drop(columns=[c for c in f.columns if c in frames[sym].columns]))
    return frames


def _series(result: pd.Series | None, index: pd.Index) -> pd.Series:
    # pandas-ta returns None when the series is shorter than the indicator length
    return result if result is not None else pd.Series(np.nan, index=index)


class IndicatorBook:
    """Indicator frames for all symbols aligned on one time axis, for O(log n) lookups per iteration."""

    def __init__(self, frames: Mapping[str, pd.DataFrame], bar_period: pd.Timedelta):
        if not frames:
            raise ValueError("no symbols to compute indicators for")
        self.bar_period = pd.Timedelta(bar_period)
        self.symbols = tuple(frames)
        columns = list(next(iter(frames.values())).columns)
        self.columns = tuple(columns) + ("bar_time",)
        index = frames[self.symbols[0]].index
        for f in frames.values():
            index = index.union(f.index)
        self.index = index
        self.value_columns = list(columns)
        cube = np.full((len(index), len(self.symbols), len(columns)), np.nan)
        last_bar = np.full((len(index), len(self.symbols)), -1, dtype=np.int64)  # position in `index`, -1 = none
        positions = np.arange(len(index))
        for j, sym in enumerate(self.symbols):
            f = frames[sym]
            aligned = f.reindex(index).ffill()  # a symbol without a bar at some time keeps its last values
            cube[:, j, :] = aligned.to_numpy(dtype=float)
            own = pd.Series(np.where(index.isin(f.index), positions, np.nan), index=index).ffill()
            last_bar[:, j] = own.fillna(-1).to_numpy(dtype=np.int64)
        self._cube = cube
        self._last_bar = last_bar
        self._symbol_index = pd.Index(self.symbols, name="symbol")

    @classmethod
    def from_bars(cls, bars: Mapping[str, pd.DataFrame], columns: ColumnsFn, bar_period: pd.Timedelta
                  ) -> "IndicatorBook":
        return cls({sym: columns(df) for sym, df in bars.items() if len(df)}, bar_period)

    def as_of(self, t: datetime, lookups: bool = False):
        """One row per symbol from the last bar that *ended* at or before t (NaN rows when none). With
        `lookups`, no frame but the Snapshot's lookups, read straight from the arrays: (None, lookups)."""
        # one frame construction per call: inside a running backtest every pandas operation is costly
        cutoff = pd.Timestamp(t) - self.bar_period
        i = int(self.index.searchsorted(cutoff, side="right")) - 1
        if i < 0:
            row = np.full((len(self.symbols), len(self.value_columns)), np.nan)
            bars = np.full(len(self.symbols), -1)
        else:
            row, bars = self._cube[i], self._last_bar[i]
        if not lookups:
            data = {c: row[:, k] for k, c in enumerate(self.value_columns)}
            data["bar_time"] = self.index.take(bars, allow_fill=True, fill_value=pd.NaT)
            return pd.DataFrame(data, index=self._symbol_index)
        from trading.snapshot import LOOKUP_COLUMNS

        # the backtest's fast path: the lookups read straight from the arrays; rows for the confidence model
        # and each symbol's bar time (the stale-data check of an order) built only when asked for
        found = {c: dict(zip(self.symbols, row[:, self.value_columns.index(c)].tolist(), strict=True))
                 if c in self.value_columns else {} for c in LOOKUP_COLUMNS}
        last = int(bars.max()) if len(bars) else -1
        found["freshest"] = self.index[last] if last >= 0 else None
        positions = dict(zip(self.symbols, bars.tolist(), strict=True))
        index, columns, where = self.index, self.value_columns, {sym: j for j, sym in enumerate(self.symbols)}
        found["bar_time"] = lambda sym: index[positions[sym]] if positions.get(sym, -1) >= 0 else None

        def rows(symbols) -> pd.DataFrame:
            picked = np.array([row[where[s]] if s in where else np.full(len(columns), np.nan) for s in symbols])
            return pd.DataFrame(picked.reshape(len(symbols), len(columns)), columns=columns,
                                index=pd.Index(list(symbols), name="symbol"))

        found["rows"] = rows
        found["history"] = lambda symbols, n: self.closes(t, symbols, n)
        return None, found

    def closes(self, t: datetime, symbols, bars: int) -> pd.DataFrame:
        """The closes of the last `bars` bars that ended at or before t, one column per symbol (the correlation
        cap's input: the same look-ahead rule as as_of)."""
        i = int(self.index.searchsorted(pd.Timestamp(t) - self.bar_period, side="right"))
        k = self.value_columns.index("close")
        lo = max(0, i - bars)
        cols = {s: self._cube[lo:i, self.symbols.index(s), k] for s in symbols if s in self.symbols}
        return pd.DataFrame(cols, index=self.index[lo:i])

    def series(self, symbol: str, column: str) -> pd.Series:
        j, k = self.symbols.index(symbol), self.value_columns.index(column)
        return pd.Series(self._cube[:, j, k], index=self.index, name=f"{symbol}.{column}")


def completed_bars(df: pd.DataFrame, now: datetime, bar_period: pd.Timedelta) -> pd.DataFrame:
    """Drop a still-forming bar: keep bars whose end (start + period) is at or before `now`."""
    return df[df.index <= pd.Timestamp(now) - pd.Timedelta(bar_period)]
