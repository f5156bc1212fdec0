"""Where the return goes: why the bot sits in cash, measured on a backtest of real bars.

  python -m research.idle --data csv:data/daily --start 2010-01-04 --end 2018-12-31 [--profile NAME]

Runs one backtest (with costs) and reports from its journal and the bars:
- how often each universe stock is an RSI candidate (RSI below RSI_OVERSOLD) on the iteration's bars;
- how many candidates each gate blocked, and how many became entries;
- how the trades ended (per exit reason: count, median bars held, average R);
- the share of iterations with no position at all (in cash), and with any long;
- what the exits cut off: the stock's return over the next 20 bars after each closed trade, per exit reason
  (positive after a take-profit or a time exit = return left on the table).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

AFTER_BARS = 20


def analyse(run) -> dict:
    st, market, s = run.strategy, run.market, run.settings
    log = st.decision_log.frame()
    samples = st.ledger.samples_frame()
    trades = st.journal.frame("closed_trades")
    window = (run.start, run.end)
    rsi = {sym: _rsi(run, sym, window) for sym in s.universe if sym in market.bars}
    candidates = pd.Series({sym: float((r < s.rsi_oversold).mean()) for sym, r in rsi.items()}, name="candidate")
    entries = log[log["step"] == "entry"]
    gates = entries[entries["action"].isin(["skip", "blocked"])]
    gate_counts = gates["gate"].fillna("held/pending").value_counts() if "gate" in gates else pd.Series(dtype=int)
    ended = _exits(trades, market)
    in_cash = float((samples["positions"] == 0).mean()) if len(samples) else np.nan
    long_any = float((samples["long_value"] > 0).mean()) if len(samples) else np.nan
    return {"candidates": candidates, "gates": gate_counts, "entries": int((entries["action"] == "enter").sum()),
            "exits": ended, "in_cash": in_cash, "long_any": long_any, "iterations": len(samples)}


def _rsi(run, sym: str, window) -> pd.Series:
    """The RSI the run itself computed (its indicator book), on the symbol's own bars in the window."""
    r = run.strategy.book.series(sym, "rsi").reindex(run.market.bars[sym].index)
    return r[(r.index >= window[0]) & (r.index < window[1])].dropna()


def _exits(trades: pd.DataFrame, market) -> pd.DataFrame:
    if trades.empty:
        return pd.DataFrame()
    rows = []
    for _, t in trades.iterrows():
        bars = market.bars.get(t["symbol"])
        if bars is None:
            continue
        entry, exit_ = pd.Timestamp(t["entry_time"]), pd.Timestamp(t["exit_time"])
        held = int(((bars.index >= entry) & (bars.index <= exit_)).sum())
        after = bars["close"][bars.index > exit_]
        left = float(after.iloc[min(AFTER_BARS, len(after)) - 1] / t["exit_price"] - 1) if len(after) else np.nan
        rows.append({"reason": t["exit_reason"], "bars_held": held, "r": t["r_multiple"], "after_20": left})
    df = pd.DataFrame(rows)
    return df.groupby("reason").agg(trades=("r", "size"), median_bars=("bars_held", "median"), avg_r=("r", "mean"),
                                    next_20_bars=("after_20", "mean")).sort_values("trades", ascending=False)


def render(result: dict, run) -> str:
    s = run.settings
    lines = [f"Where the return goes: {run.market.source}, {run.start.date()} .. {run.end.date()}, "
             f"{result['iterations']} iterations ({run.market.timestep} bars)", "",
             f"In cash (no position at all): {result['in_cash']:.0%} of iterations; holding any long: "
             f"{result['long_any']:.0%}.", "",
             f"RSI candidates (RSI < {s.rsi_oversold:g}), share of bars per universe stock:"]
    lines += [f"  {sym:<6} {v:6.1%}" for sym, v in result["candidates"].sort_values(ascending=False).items()]
    lines += ["", f"Entries placed: {result['entries']}; candidates blocked per gate:"]
    lines += [f"  {g:<16} {n:6d}" for g, n in result["gates"].items()] or ["  (none)"]
    lines += ["", f"How trades ended (next_20_bars: the stock's return over the {AFTER_BARS} bars after the exit):"]
    ex = result["exits"]
    lines.append(ex.to_string(float_format=lambda x: f"{x:.3f}") if len(ex) else "  (no closed trades)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m research.idle", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="csv:data/daily")
    ap.add_argument("--start", type=date.fromisoformat, required=True)
    ap.add_argument("--end", type=date.fromisoformat, required=True)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--set", action="append", default=[], help="NAME=VALUE, a setting for this run (repeat)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    from utils import lumibot_env

    lumibot_env.prepare(backtesting=True)
    from backtest.runner import BacktestConfig, run_backtest
    from marketdata.csv_source import DataError
    from trading.settings import Settings, SettingsError
    from utils import logging_setup

    logging_setup.configure("ERROR", console=False)
    try:
        overrides = dict(kv.split("=", 1) for kv in args.set)
        if args.profile:
            overrides["PROFILE"] = args.profile
        settings = Settings.load(dotenv_path=None, overrides=overrides)
        run = run_backtest(BacktestConfig(data=args.data, start=args.start, end=args.end, book="cash",
                                          progress=False, out_root=args.out or Path(settings.reports_dir)), settings)
    except (ValueError, SettingsError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = render(analyse(run), run)
    (run.out_dir / "where_the_return_goes.txt").write_text(text)
    print(text)
    print(f"Report folder: {run.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
