"""Risk controls in a real Lumibot backtest: a scripted crash trips the circuit breaker, entries stop,
and they resume after the cool-down. Everything is read back from the run's journal."""

import dataclasses
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from backtest.runner import BacktestConfig, execute, prepare
from trading.records.journal import Journal
from trading.settings import Settings

CRASH = pd.Timestamp("2024-02-12 09:30", tz="America/New_York")


@pytest.fixture(scope="module")
def crash_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("crash")
    # isolate the circuit breaker: no daily/weekly limits, no size factors, generous exposure
    s = Settings.defaults(daily_loss_limit_pct=0, weekly_loss_limit_pct=0, recovery_drawdown_pct=0,
                          losing_streak=0, kill_switch_file=str(out / "HALT"))
    prep = prepare(BacktestConfig(start=date(2024, 1, 2), end=date(2024, 2, 16), book="cash", progress=False), s)
    bars = {}
    for sym, df in prep.market.bars.items():
        df = df.copy()
        if sym not in s.inverse_symbols:  # a 6% gap down, then a slide of 0.8% an hour for two days
            after = df.index >= CRASH
            path = pd.Series(1.0, index=df.index)
            bars_since = pd.Series(range(after.sum()), index=df.index[after]).clip(upper=14)
            path[after] = 0.94 * 0.992 ** bars_since
            df[["open", "high", "low", "close"]] = df[["open", "high", "low", "close"]].mul(path, axis=0)
        bars[sym] = df
    market = dataclasses.replace(prep.market, bars=bars)
    run = execute(dataclasses.replace(prep, market=market), out_dir=out)
    return run, Journal(out / "journal.sqlite")


def test_circuit_breaker_trips_on_the_crash(crash_run):
    _, journal = crash_run
    d = journal.frame("decisions")
    trips = d[(d["step"] == "risk") & (d["action"] == "reducing") & (d["gate"] == "circuit_breaker")]
    assert len(trips) >= 1
    first = pd.Timestamp(trips["time"].iloc[0])
    assert CRASH <= first <= CRASH + pd.Timedelta(days=2), "it trips during the sell-off, not before"
    state = d[(d["step"] == "risk") & (d["action"] == "resume") & d["reason"].str.contains("circuit_breaker")]
    assert len(state) >= 1, "the pause ends"


def test_entries_stop_during_every_pause_and_resume_after(crash_run):
    _, journal = crash_run
    d = journal.frame("decisions")
    d["t"] = pd.to_datetime(d["time"], utc=True).dt.tz_convert("America/New_York")
    risk = d[(d["step"] == "risk") & d["reason"].str.startswith("circuit_breaker")]
    trips = risk[risk["action"] == "reducing"]["t"].tolist()
    ends = risk[risk["action"] == "resume"]["t"].tolist()
    assert trips and len(ends) == len(trips)
    denied = 0
    for start, end in zip(trips, ends, strict=True):
        pause = d[(d["t"] >= start) & (d["t"] < end)]
        assert (pause["action"] == "enter").sum() == 0, f"no entries while the breaker is tripped ({start})"
        denied += ((pause["action"] == "denied") & (pause["gate"] == "circuit_breaker")).sum()
    assert denied >= 1, "candidates came up during a pause and the breaker denied them"
    assert (d[d["t"] >= ends[-1]]["action"] == "enter").sum() >= 1, "entries resume after the cool-down"


def test_the_crash_shows_in_the_journal_trades_and_equity(crash_run):
    run, journal = crash_run
    closed = journal.frame("closed_trades")
    assert len(closed) == len(run.strategy.ledger.trades)
    stops = closed[closed["exit_reason"] == "stop"]
    assert len(stops) >= 1 and (stops["r_multiple"] < -1.0).any(), "a gap through the stop costs more than 1R"
    equity = journal.frame("equity")
    assert (equity["risk_mode"] == "REDUCING").any()
    assert not Path(run.out_dir / "HALT").exists()
