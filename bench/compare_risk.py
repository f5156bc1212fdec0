"""Risk layer off vs on, side by side on the same built-in year (one process, same data).

  python bench/compare_risk.py [--start 2024-01-02 --end 2024-12-31]

Columns: everything off (no risk controller, no Kelly cap, no exit policy: the plain brackets), the
exit policy alone, and the defaults (risk controller + exit policy + Kelly cap), each with the backtest's
costs (fees and slippage, backtest/costs.py); then the defaults without costs (BACKTEST_COSTS=false).
"""

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import lumibot_env  # noqa: E402

lumibot_env.prepare(backtesting=True)

from backtest.report import summarize  # noqa: E402
from backtest.runner import BacktestConfig, execute, prepare  # noqa: E402
from trading.settings import Settings  # noqa: E402
from utils import logging_setup  # noqa: E402

OFF = dict(risk_enabled=False, kelly_fraction=0, breakeven_at_r=0, partial_at_r=0, trail_after_r=0,
           time_exit_hours=0)
VARIANTS = {
    "all off": OFF,
    "exit policy only": dict(risk_enabled=False, kelly_fraction=0),
    "defaults (all on)": {},
    "defaults, no costs": dict(backtest_costs=False),
}
REASONS = ("stop", "take_profit", "breakeven", "trailing", "partial", "time", "software_stop", "trim",
           "hedge_unwind")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 2))
    ap.add_argument("--end", type=date.fromisoformat, default=date(2024, 12, 31))
    args = ap.parse_args()
    logging_setup.configure(console=False)
    out = Path(tempfile.mkdtemp(prefix="compare-risk-"))
    results = {}
    for name, overrides in VARIANTS.items():
        settings = Settings.defaults(kill_switch_file=str(out / "HALT"), **overrides)
        prep = prepare(BacktestConfig(start=args.start, end=args.end, progress=False), settings)
        run = execute(prep, out_dir=out / name.replace(" ", "_").replace("(", "").replace(")", ""))
        results[name] = summarize(run)
        print(f"ran {name}: {run.wall_seconds:.0f} s", flush=True)

    def pct(x):
        return "-" if x is None else f"{x:+.1%}"

    rows = [("total return", lambda s: pct(s["strategy"]["total_return"])),
            ("gross of costs", lambda s: pct(s["strategy"]["gross_return"])),
            ("fees / slippage $", lambda s: f"{s['strategy']['fees']:,.0f} / {s['strategy']['slippage']:,.0f}"),
            ("max drawdown", lambda s: pct(s["strategy"]["max_drawdown"])),
            ("worst day", lambda s: pct(s["strategy"]["worst_day"])),
            ("worst week", lambda s: pct(s["strategy"]["worst_week"])),
            ("Sharpe", lambda s: f"{s['strategy']['sharpe']:.2f}"),
            ("closed trades", lambda s: str(s["strategy"]["trades"])),
            ("entries placed", lambda s: str(s["strategy"]["entries"]))]
    rows += [(f"exits: {r}", lambda s, r=r: str(s["exits_by_reason"].get(r, 0))) for r in REASONS]
    rows += [("risk events", lambda s: ", ".join(f"{g} {n}x" for g, n in s["journal"]["risk_events"].items())
              or "-")]
    width = max(len(n) for n in VARIANTS) + 2
    print(f"\n{'':<22}" + "".join(f"{n:>{width}}" for n in VARIANTS))
    for label, fn in rows:
        print(f"{label:<22}" + "".join(f"{fn(results[n]):>{width}}" for n in VARIANTS))
    spy = results["defaults (all on)"]["spy_buy_hold"]
    print(f"\nSPY buy & hold on the same data: {pct(spy['total_return'])}, max drawdown {pct(spy['max_drawdown'])}, "
          f"worst day {pct(spy['worst_day'])}, worst week {pct(spy['worst_week'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
