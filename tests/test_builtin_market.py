"""The built-in market: deterministic, on the real NYSE calendar, and with every behaviour the strategy needs."""

import numpy as np
import pandas as pd
import pandas_ta_classic as ta
import pytest

from marketdata.builtin import DOUBLER, generate, inverse_map
from trading.settings import Settings

S = Settings.defaults()


@pytest.fixture(scope="module")
def year():
    return generate(S.all_symbols(), inverse_map(S.inverse_etfs), "2024-01-02", "2024-12-31",
                    nasdaq=S.nasdaq_symbols)


def window(df):
    return df[df.index >= pd.Timestamp("2024-01-02", tz="America/New_York")]


def test_same_seed_same_market_and_symbols_are_independent(year):
    again = generate(["AAPL", "SPY"], {}, "2024-01-02", "2024-12-31")
    pd.testing.assert_frame_equal(year.bars["AAPL"], again.bars["AAPL"])
    other = generate(["AAPL"], {}, "2024-01-02", "2024-12-31", seed=7)
    assert not np.allclose(other.bars["AAPL"]["close"], year.bars["AAPL"]["close"])


def test_bars_follow_the_nyse_calendar(year):
    idx = window(year.bars["SPY"]).index
    days = pd.Index(idx.date)
    assert pd.Timestamp("2024-07-04").date() not in set(days), "Independence Day is a holiday"
    assert pd.Timestamp("2024-11-28").date() not in set(days), "Thanksgiving is a holiday"
    assert len(set(days)) == 252
    per_day = pd.Series(1, index=idx).groupby(days).size()
    assert per_day[pd.Timestamp("2024-03-05").date()] == 7
    assert per_day[pd.Timestamp("2024-11-29").date()] == 4, "early close at 13:00"
    assert set(idx.strftime("%H:%M")) == {"09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"}


def test_ohlc_is_consistent(year):
    for df in year.bars.values():
        assert (df["high"] >= df[["open", "close"]].max(axis=1) - 1e-9).all()
        assert (df["low"] <= df[["open", "close"]].min(axis=1) + 1e-9).all()
        assert (df[["open", "high", "low", "close"]] > 0).all().all() and (df["volume"] > 0).all()


def test_inverse_etfs_are_daily_reset_products(year):
    spy, qqq = year.bars["SPY"]["close"], year.bars["QQQ"]["close"]
    for sym, under, lev in (("SH", spy, -1), ("SPXS", spy, -3), ("SQQQ", qqq, -3)):
        inv = year.bars[sym]["close"]
        days = inv.index.normalize()
        daily_inv = inv.groupby(days).last().pct_change().dropna()
        daily_under = under.groupby(days).last().pct_change().dropna()
        fee = 0.009 / 252
        np.testing.assert_allclose(daily_inv, lev * daily_under - fee * (1 + lev * daily_under), atol=2e-4)
    # leveraged decay: over the year SPXS loses more than 3x what SPY gains would imply
    w_spy, w_spxs = window(year.bars["SPY"])["close"], window(year.bars["SPXS"])["close"]
    assert w_spxs.iloc[-1] / w_spxs.iloc[0] < 1 - 3 * (w_spy.iloc[-1] / w_spy.iloc[0] - 1) + 0.02


def test_scripted_behaviours_happen(year):
    bells = pd.DataFrame({b: ta.rsi(year.bars[b]["close"], 14) for b in S.bellwethers})
    breadth = (window(bells) > 70).mean(axis=1)
    assert (breadth >= 0.6).sum() >= 20, "a strong rally drives the bellwethers overbought"
    spy = window(year.bars["SPY"])["close"]
    assert (spy / spy.cummax() - 1).min() < -0.10, "at least one sharp sell-off"
    doubler = window(year.bars[DOUBLER])["close"]
    assert 1.9 < doubler.iloc[-1] / doubler.iloc[0] < 2.1, "one stock doubles"


def test_fat_tails_volatility_clustering_and_gaps(year):
    def abs_autocorr(sym):
        a = np.log(window(year.bars[sym])["close"]).diff().dropna().abs().to_numpy()
        return np.corrcoef(a[1:], a[:-1])[0, 1]

    r = np.log(window(year.bars["AAPL"])["close"]).diff().dropna()
    assert r.kurt() > 1.0, "fat tails"
    assert abs_autocorr("SPY") > 0.05, "volatility clusters in the market"
    assert np.mean([abs_autocorr(s) for s in ("AAPL", "MSFT", "JPM")]) > 0.02, "and in single stocks"
    df = window(year.bars["AAPL"])
    first = df.index.strftime("%H:%M") == "09:30"
    gaps = (df["open"] / df["close"].shift(1) - 1)[first].dropna()
    assert gaps.abs().mean() > 0.002, "sessions open with overnight gaps"
