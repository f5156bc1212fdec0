"""The `Market` value object every data source returns: OHLCV frames per symbol and their bar size."""

from dataclasses import dataclass, field

import pandas as pd

OHLCV = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Market:
    bars: dict[str, pd.DataFrame]  # per symbol: open, high, low, close, volume; index = bar start (New York)
    timestep: str  # "hour", "minute" or "day" (Lumibot's names)
    bar_period: pd.Timedelta
    source: str  # human description: "built-in simulated market (seed 2024)", "csv:/path"
    warnings: tuple[str, ...] = field(default=())

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.bars)

    def first_bar(self) -> pd.Timestamp:
        return min(df.index[0] for df in self.bars.values())

    def last_bar(self) -> pd.Timestamp:
        return max(df.index[-1] for df in self.bars.values())

    def price_at(self, symbol: str, t: pd.Timestamp) -> float:
        """Close of the last bar that ended at or before t (what the strategy would see)."""
        return float(self.prices_at(symbol, pd.DatetimeIndex([pd.Timestamp(t)])).iloc[0])

    def prices_at(self, symbol: str, times: pd.DatetimeIndex) -> pd.Series:
        """`price_at` for many times at once."""
        df = self.bars[symbol]
        i = df.index.searchsorted(times - self.bar_period, side="right") - 1
        return pd.Series(df["close"].to_numpy()[i.clip(min=0)], index=times, name=symbol)
