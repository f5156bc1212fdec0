"""The entry filters of step 4 (trading/steps/entry_filters.py): each blocks exactly when its rule says, under its
own gate name (counted per gate in the journal), and is off at its default."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from tests.builders import NOW, Fixed, snapshot
from trading.order_ids import OrderIds
from trading.steps.entries import plan_entries
from trading.steps.entry_filters import spread_note

IDS = OrderIds("combined", NOW)


def plan(settings, snap, **changes):
    s = dataclasses.replace(settings, **changes)
    return {d.symbol: d for d in plan_entries(snap, s, Fixed(0.9), 90_000, set(), IDS) if d.symbol}


def row(**kw):
    return {"close": 100.0, "rsi": 25.0, "trend": 90.0, "atr": 2.0, "atr_pct": 0.02, "vol_pctile": 0.5,
            "adv": 5e8, **kw}


def test_every_filter_is_off_at_its_default(settings):
    snap = snapshot(cash=100_000, prices={"AAPL": row(close=80.0, trend=90.0, atr_pct=0.2, adv=1.0),
                                          "SPY": row(rsi=60.0, vol_pctile=0.99)})
    assert plan(settings, snap)["AAPL"].action == "enter"


@pytest.mark.parametrize("close, trend, blocked", [(95.0, 100.0, True), (100.0, 100.0, True), (100.01, 100.0, False),
                                                   (95.0, float("nan"), False)])
def test_trend_filter_wants_the_close_above_the_trend_line(settings, close, trend, blocked):
    snap = snapshot(cash=100_000, prices={"AAPL": row(close=close, trend=trend)})
    d = plan(settings, snap, trend_filter=True)["AAPL"]
    assert (d.action == "skip") is blocked
    if blocked:
        assert d.data["gate"] == "trend" and "200-bar trend line" in d.reason


@pytest.mark.parametrize("atr_pct, why", [(0.004, "too quiet"), (0.005, None), (0.06, None), (0.0601, "too wild")])
def test_volatility_band_on_atr_as_a_share_of_price(settings, atr_pct, why):
    snap = snapshot(cash=100_000, prices={"AAPL": row(atr_pct=atr_pct)})
    d = plan(settings, snap, atr_pct_min=0.005, atr_pct_max=0.06)["AAPL"]
    if why:
        assert d.action == "skip" and d.data["gate"] == "volatility" and why in d.reason
    else:
        assert d.action == "enter"


def test_a_volatile_market_holds_every_candidate_back(settings):
    prices = {"AAPL": row(), "MSFT": row(close=300.0, trend=250.0), "SPY": row(rsi=55.0, vol_pctile=0.95)}
    out = plan(settings, snapshot(cash=100_000, prices=prices), market_vol_max_pctile=0.9)
    assert {out["AAPL"].data["gate"], out["MSFT"].data["gate"]} == {"market_vol"}
    assert "95% percentile" in out["AAPL"].reason
    prices["SPY"] = row(rsi=55.0, vol_pctile=0.9)
    out = plan(settings, snapshot(cash=100_000, prices=prices), market_vol_max_pctile=0.9)
    assert out["AAPL"].action == out["MSFT"].action == "enter"


def test_liquidity_gate_on_average_daily_dollar_volume(settings):
    prices = {"AAPL": row(adv=4.9e6), "MSFT": row(close=300.0, adv=5e6)}
    out = plan(settings, snapshot(cash=100_000, prices=prices), min_dollar_volume=5e6)
    assert out["AAPL"].data["gate"] == "liquidity" and "$4.9M a day" in out["AAPL"].reason
    assert out["MSFT"].action == "enter"


def test_spread_gate_reads_live_quotes_and_is_skipped_without_them(settings):
    snap = snapshot(cash=100_000, prices={"AAPL": row(), "MSFT": row(close=300.0)})
    live = dataclasses.replace(snap, quotes={"AAPL": (99.90, 100.10), "MSFT": (299.97, 300.03)})
    out = plan(settings, live, max_spread_bps=10)
    assert out["AAPL"].data["gate"] == "spread" and "20 bp wide" in out["AAPL"].reason
    assert out["MSFT"].action == "enter"  # 2 bp
    assert plan(settings, snap, max_spread_bps=10)["AAPL"].action == "enter"  # no quotes: a backtest
    s = dataclasses.replace(settings, max_spread_bps=10)
    assert "skipped in this backtest" in spread_note(s, live=False) and spread_note(s, live=True) is None


def test_a_symbol_without_a_two_sided_quote_waits_when_the_quotes_were_read(settings):
    snap = snapshot(cash=100_000, prices={"AAPL": row(), "MSFT": row(close=300.0)})
    out = plan(settings, dataclasses.replace(snap, quotes={"MSFT": (299.97, 300.03)}), max_spread_bps=10)
    assert out["AAPL"].data["gate"] == "spread" and "no two-sided quote" in out["AAPL"].reason
    assert out["MSFT"].action == "enter"
    assert plan(settings, dataclasses.replace(snap, quotes=None), max_spread_bps=10)["AAPL"].action == "enter", \
        "quotes not read at all (a backtest, or the request failed and a note says so): the gate is skipped"


@pytest.mark.parametrize("quote", [(100.02, 99.98), (0.0, 100.0), (100.0, 0.0), (float("nan"), 100.0)])
def test_a_crossed_or_one_sided_quote_never_passes_the_spread_gate(settings, quote):
    """A crossed quote has a negative width and an ask of 0 a negative one too: neither is a tight market."""
    snap = snapshot(cash=100_000, prices={"AAPL": row()})
    out = plan(settings, dataclasses.replace(snap, quotes={"AAPL": quote}), max_spread_bps=10)
    assert out["AAPL"].data["gate"] == "spread" and "not a two-sided market" in out["AAPL"].reason


def _history(closes: pd.DataFrame):
    return lambda symbols, n: closes[[c for c in symbols if c in closes]].iloc[-n:]


def test_correlation_cap_against_the_books_weighted_returns(settings):
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.01, 80)
    closes = pd.DataFrame({"XOM": 100 * np.cumprod(1 + base),
                           "JPM": 100 * np.cumprod(1 + base + rng.normal(0, 0.002, 80)),  # moves with XOM
                           "AAPL": 100 * np.cumprod(1 + rng.normal(0, 0.01, 80))})  # does not
    snap = snapshot(cash=80_000, holdings=[("XOM", 100, 95.0)],
                    prices={"XOM": row(rsi=50.0), "JPM": row(), "AAPL": row()})
    snap = dataclasses.replace(snap, history=_history(closes))
    out = plan(settings, snap, correlation_max=0.7)
    assert out["JPM"].action == "skip" and out["JPM"].data["gate"] == "correlation"
    assert "correlate 0.9" in out["JPM"].reason
    assert out["AAPL"].action == "enter"
    flat = dataclasses.replace(snap, holdings={})  # nothing held: nothing to correlate with
    assert plan(settings, flat, correlation_max=0.7)["JPM"].action == "enter"


def test_correlation_cap_counts_the_entries_planned_earlier_in_the_same_iteration(settings):
    """Nothing held, XOM and JPM both oversold and moving together: the first (lower RSI) is bought, the second
    waits because it would double the same bet; an unrelated stock still enters, and without the cap all three."""
    rng = np.random.default_rng(2)
    base = rng.normal(0, 0.01, 80)
    closes = pd.DataFrame({"XOM": 100 * np.cumprod(1 + base),
                           "JPM": 100 * np.cumprod(1 + base + rng.normal(0, 0.002, 80)),
                           "AAPL": 100 * np.cumprod(1 + rng.normal(0, 0.01, 80))})
    snap = snapshot(cash=90_000, prices={"XOM": row(rsi=20.0), "JPM": row(rsi=25.0), "AAPL": row(rsi=28.0)})
    snap = dataclasses.replace(snap, history=_history(closes))
    out = plan(settings, snap, correlation_max=0.7)
    assert out["XOM"].action == "enter" and out["AAPL"].action == "enter"
    assert out["JPM"].action == "skip" and out["JPM"].data["gate"] == "correlation"
    assert "with this iteration's entries" in out["JPM"].reason and "correlate 0.9" in out["JPM"].reason
    assert {d.action for d in plan(settings, snap).values()} == {"enter"}, "CORRELATION_MAX=1: no cap"


def test_the_real_indicator_columns_feed_the_filters():
    from marketdata.builtin import generate, inverse_map
    from trading.indicators import IndicatorBook, market_frames
    from trading.settings import Settings

    s = Settings.defaults()
    m = generate(s.all_symbols(), inverse_map(s.inverse_etfs), pd.Timestamp("2024-01-02").date(),
                 pd.Timestamp("2024-06-28").date(), seed=3, nasdaq=s.nasdaq_symbols)
    book = IndicatorBook(market_frames(m.bars, 14), m.bar_period)
    row_ = book.as_of(pd.Timestamp("2024-06-03 12:30", tz="America/New_York")).loc["AAPL"]
    df = m.bars["AAPL"]
    done = df[df.index <= pd.Timestamp("2024-06-03 11:30", tz="America/New_York")]
    assert row_["atr_pct"] == pytest.approx(row_["atr"] / row_["close"])
    assert row_["adv"] == pytest.approx((done["close"] * done["volume"]).iloc[-140:].mean() * 7)
    assert 0 < row_["vol_pctile"] <= 1
    hourly_vol = np.log(done["close"]).diff().iloc[-20:].std()  # 20 completed hourly bars, 7 a session
    assert row_["vol_ann"] == pytest.approx(hourly_vol * np.sqrt(252 * 7))
    closes = book.closes(pd.Timestamp("2024-06-03 12:30", tz="America/New_York"), ["AAPL"], 5)
    assert list(closes["AAPL"]) == pytest.approx(list(done["close"].iloc[-5:]))  # completed bars only


@pytest.mark.usefixtures("close_bots")
@pytest.mark.parametrize("max_bps, entered", [(1, False), (5, True)])
def test_live_the_spread_gate_reads_alpacas_latest_quotes_once_an_iteration(day_bars, tmp_path, max_bps, entered):
    from tests.fake_alpaca import FakeAlpaca
    from tests.live_harness import NY, LiveBot

    srv = FakeAlpaca(day_bars, now=pd.Timestamp("2024-03-05 09:31", tz=NY)).start()
    try:
        bot = LiveBot(srv, tmp_path / "journal.sqlite", env={"MAX_SPREAD_BPS": str(max_bps),
                                                               "BREADTH_ENTRY_GATE": "false"})
        srv.clear_log()
        bot.iterate()
        quotes = [r for r in srv.requests if r["path"] == "/v2/stocks/quotes/latest"]
        assert len(quotes) == 1 and set(quotes[0]["query"]["symbols"].split(",")) == set(bot.settings.universe)
        jpm = [r for r in bot.strategy.decision_log.records if r["symbol"] == "JPM" and r["step"] == "entry"]
        assert jpm, "JPM is an entry candidate in the scripted day's first hour"
        assert (jpm[-1]["action"] == "enter") is entered
        if not entered:  # the fake quotes a cent either side: about 1.1 bp of JPM's price
            assert jpm[-1]["gate"] == "spread" and "bp wide > MAX_SPREAD_BPS 1" in jpm[-1]["reason"]
    finally:
        srv.stop()


@pytest.mark.parametrize("spy_vol, qty", [(0.60, 75), (0.30, 100), (float("nan"), 100)])
def test_a_volatility_target_scales_new_entries_by_the_markets_volatility(settings, spy_vol, qty):
    """1% of $100k x1.5 (confidence 0.9) at risk over a $5 stop is 300 shares, held to 100 by the 10% entry cap: a
    15% target over a 60%-volatility SPY quarters the risk (75 shares); at 30% it halves it, still above the cap;
    unknown: unscaled."""
    snap = snapshot(cash=100_000, prices={"AAPL": row(), "SPY": row(rsi=55.0, vol_ann=spy_vol)})
    d = plan(settings, snap, vol_target_pct=0.15)["AAPL"]
    assert d.action == "enter" and d.intent.orders[0].qty == qty
    if spy_vol == spy_vol:
        assert f"SPY {spy_vol:.0%}" in d.reason
    assert plan(settings, snap)["AAPL"].intent.orders[0].qty == 100, "VOL_TARGET_PCT=0: as before"
