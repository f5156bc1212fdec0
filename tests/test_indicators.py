"""Indicators: no look-ahead, and the once-per-series backtest path equals the live rolling window."""

import numpy as np
import pandas as pd
import pandas_ta_classic as ta
import pytest

from marketdata.builtin import generate
from trading.indicators import MIN_HISTORY_BARS, IndicatorBook, base_columns, completed_bars

HOUR = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def bars():
    m = generate(["AAPL", "MSFT", "XOM"], {}, "2024-01-02", "2024-04-30", seed=11)
    return m.bars


def test_values_match_pandas_ta(bars):
    book = IndicatorBook.from_bars(bars, base_columns(14), HOUR)
    t = bars["AAPL"].index[500]
    row = book.as_of(t)
    close = bars["AAPL"]["close"]
    expected = ta.rsi(close, length=14).loc[:t - HOUR].iloc[-1]
    assert row.at["AAPL", "rsi"] == pytest.approx(expected)
    assert row.at["AAPL", "close"] == close.loc[:t - HOUR].iloc[-1]
    assert row.at["AAPL", "bar_time"] == bars["AAPL"].index[499]


def test_as_of_uses_only_bars_that_ended(bars):
    book = IndicatorBook.from_bars(bars, base_columns(14), HOUR)
    t = bars["MSFT"].index[600]
    before = book.as_of(t)
    # change every bar that had not ended by t, including the one starting at t: nothing at t may move
    tampered = {s: df.copy() for s, df in bars.items()}
    for df in tampered.values():
        late = df.index > t - HOUR
        df.loc[late, ["open", "high", "low", "close"]] *= 3.0
    after = IndicatorBook.from_bars(tampered, base_columns(14), HOUR).as_of(t)
    pd.testing.assert_frame_equal(before, after)
    truncated = {s: df[df.index <= t - HOUR] for s, df in bars.items()}
    pd.testing.assert_frame_equal(before, IndicatorBook.from_bars(truncated, base_columns(14), HOUR).as_of(t))


def test_precomputed_series_equals_live_rolling_window(bars):
    """The backtest computes once per series; live computes over the last MIN_HISTORY_BARS bars."""
    book = IndicatorBook.from_bars(bars, base_columns(14), HOUR)
    index = bars["AAPL"].index
    checked = 0
    for i in range(MIN_HISTORY_BARS + 20, len(index), 97):
        now = index[i]
        window = {s: completed_bars(df, now, HOUR).iloc[-MIN_HISTORY_BARS:] for s, df in bars.items()}
        live = IndicatorBook.from_bars(window, base_columns(14), HOUR).as_of(now)
        full = book.as_of(now)
        np.testing.assert_allclose(live["rsi"], full["rsi"], atol=1e-6)
        np.testing.assert_allclose(live["close"], full["close"])
        np.testing.assert_allclose(live["trend"], full["trend"], rtol=1e-12)
        np.testing.assert_allclose(live["atr"], full["atr"], rtol=1e-6)  # Wilder-smoothed too: seed forgotten
        checked += 1
    assert checked >= 5


def test_symbols_with_gaps_keep_their_last_bar_time(bars):
    sparse = dict(bars)
    sparse["XOM"] = bars["XOM"].iloc[:100]  # data stops early
    book = IndicatorBook.from_bars(sparse, base_columns(14), HOUR)
    row = book.as_of(bars["AAPL"].index[300])
    assert row.at["XOM", "bar_time"] == bars["XOM"].index[99], "stale data shows as an old bar time"


def test_before_any_bar_everything_is_nan(bars):
    book = IndicatorBook.from_bars(bars, base_columns(14), HOUR)
    row = book.as_of(bars["AAPL"].index[0])
    assert row["close"].isna().all()
