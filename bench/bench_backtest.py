"""Benchmark: Lumibot's plain BuyAndHold vs CombinedStrategy, one process, the same built-in year.

  python bench/bench_backtest.py [--start 2024-01-02 --end 2024-12-31]

Prints each run's wall time and their ratio, then the share of CombinedStrategy's wall time spent in
the project's own code. That share is measured without a profiler (profilers inflate code made of
many small Python calls): the strategy's entry points (initialize, on_trading_iteration,
on_filled_order), the once-per-series indicator precompute, the journal's write at the end, and every
Lumibot method the strategy calls back into (get_positions, submit_order, ...) are wrapped with a timer
stack, and each moment of the run is attributed to whichever is on top. Project time therefore includes the pandas /
numpy / pandas-ta work our code does, and excludes Lumibot's.
BuyAndHold runs at the same 1H cadence: its shipped 1D sleeptime on hourly data is a slow path inside
Lumibot (150 s for the year, measured), not a fair baseline.
"""

import argparse
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import lumibot_env  # noqa: E402

lumibot_env.prepare(backtesting=True)

import pandas as pd  # noqa: E402

from backtest.runner import BacktestConfig, execute, prepare  # noqa: E402
from trading.settings import Settings  # noqa: E402
from utils import logging_setup  # noqa: E402


def run_buy_and_hold(prep, sleeptime: str) -> tuple[float, int]:
    from lumibot.backtesting import PandasDataBacktesting
    from lumibot.entities import Asset, Data
    from lumibot.example_strategies.stock_buy_and_hold import BuyAndHold

    class Counting(BuyAndHold):
        def initialize(self):
            super().initialize()
            self.sleeptime = sleeptime
            self.n = 0

        def on_trading_iteration(self):
            self.n += 1
            super().on_trading_iteration()

    usd = Asset("USD", "forex")
    data = [Data(Asset(s, "stock"), df, timestep=prep.market.timestep, quote=usd) for s, df in prep.market.bars.items()]
    t0 = time.perf_counter()
    _, strat = Counting.run_backtest(
        PandasDataBacktesting, prep.start.to_pydatetime().replace(tzinfo=None),
        prep.end.to_pydatetime().replace(tzinfo=None), pandas_data=data, parameters={"buy_symbol": "SPY"},
        budget=100_000, benchmark_asset=None, risk_free_rate=0.0, analyze_backtest=False, save_stats_file=False,
        show_plot=False, show_tearsheet=False, save_tearsheet=False, show_indicators=False,
        show_progress_bar=False, quiet_logs=True, name=f"BuyAndHold{sleeptime}")
    return time.perf_counter() - t0, strat.n


class Attribution:
    """Exclusive wall time per owner ("ours" / "lumibot") of the innermost wrapped call."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.seconds = {"ours": 0.0, "lumibot": 0.0}
        self.calls = {"ours": 0, "lumibot": 0}
        self._last = 0.0

    def _switch(self) -> None:
        now = time.perf_counter()
        if self.stack:
            self.seconds[self.stack[-1]] += now - self._last
        self._last = now

    def wrap(self, owner: str, fn):
        def timed(*args, **kwargs):
            self._switch()
            self.stack.append(owner)
            self.calls[owner] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._switch()
                self.stack.pop()

        return timed


OUR_ENTRY_POINTS = ("initialize", "on_trading_iteration", "on_filled_order", "on_canceled_order")
LUMIBOT_CALLS = ("get_datetime", "get_positions", "get_position", "get_cash", "get_portfolio_value", "get_orders",
                 "get_order", "create_order", "submit_order", "cancel_order", "get_historical_prices_for_assets")


def instrumented(prep, out_dir: Path) -> tuple[float, Attribution, int]:
    from lumibot.backtesting import BacktestingBroker

    from backtest import runner
    from strategies.combined_strategy import CombinedStrategy
    from trading.indicators import IndicatorBook
    from trading.records.journal import Journal

    attr = Attribution()
    saved = []
    targets = [(CombinedStrategy, n, "ours") for n in OUR_ENTRY_POINTS if n in vars(CombinedStrategy)]
    targets += [(CombinedStrategy, n, "lumibot") for n in LUMIBOT_CALLS]
    targets += [(BacktestingBroker, "get_active_tracked_orders", "lumibot")]
    # the once-per-series indicator precompute and the journal's write at the end are ours too
    targets += [(runner, "market_frames", "ours"), (IndicatorBook, "__init__", "ours"), (Journal, "save", "ours")]
    for cls, name, owner in targets:
        saved.append((cls, name, cls.__dict__.get(name)))
        setattr(cls, name, attr.wrap(owner, getattr(cls, name)))
    try:
        t0 = time.perf_counter()
        run = execute(prep, out_dir=out_dir)
        wall = time.perf_counter() - t0
    finally:
        for cls, name, original in saved:
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
    return wall, attr, run.strategy.iterations


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 2))
    ap.add_argument("--end", type=date.fromisoformat, default=date(2024, 12, 31))
    args = ap.parse_args()
    out = Path("/tmp/bench-backtest")
    out.mkdir(exist_ok=True)
    # as `make run` logs: every decision line into the report folder's decisions.log
    logging_setup.configure(console=False, logfile=out / "decisions.log", buffered=True)
    settings = Settings.defaults()
    prep = prepare(BacktestConfig(start=args.start, end=args.end, progress=False), settings)
    print(f"data: {prep.market.source}, {prep.start.date()} .. {(prep.end - pd.Timedelta(days=1)).date()}, "
          f"{len(prep.market.bars)} symbols, {len(next(iter(prep.market.bars.values())))} hourly bars each")

    rows = []
    wall, n = run_buy_and_hold(prep, "1H")
    rows.append(("Lumibot BuyAndHold (SPY, 1H)", wall, n))
    t0 = time.perf_counter()
    run = execute(prep, out_dir=out / "plain")
    rows.append(("CombinedStrategy (1H)", time.perf_counter() - t0, run.strategy.iterations))

    wall, attr, _ = instrumented(prep, out / "instrumented")
    ours = attr.seconds["ours"]

    print(f"\n{'run':<34} {'wall s':>8} {'iterations':>11} {'ms/iter':>8}")
    for name, w, n in rows:
        print(f"{name:<34} {w:8.2f} {n:11d} {1000 * w / max(n, 1):8.2f}")
    print(f"\nratio CombinedStrategy / BuyAndHold: {rows[1][1] / rows[0][1]:.1f}x (same data, same iterations)")
    print(f"project's own share of CombinedStrategy's run: {ours:.2f} s of {wall:.2f} s = {ours / wall:.1%} "
          f"(the rest: Lumibot's engine, {attr.calls['lumibot']} calls back into it, order simulation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
