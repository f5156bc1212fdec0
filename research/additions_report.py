"""The additions table's numbers and files: each addition's stitched out-of-sample row and SPY's over the same
days; table.md (the table with its span and notes), table.csv, folds.csv, equity.csv and equity.png."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.metrics import equity_metrics
from research.overfitting import sharpe_interval
from research.report import fmt_num, fmt_pct, fmt_share, plot_curves, spy_curve
from research.sweep import stitch

SPY_ROW = "SPY buy & hold"
COLUMNS = {"return": "return", "max_drawdown": "max drawdown", "return_over_dd": "return / max DD",
           "worst_month": "worst month", "trades": "trades", "exposure": "exposure", "invested": "avg invested",
           "sharpe": "Sharpe", "sharpe_ci": "Sharpe 95% CI"}
NOTES = (
    "return, max drawdown, worst month (calendar) and Sharpe (daily returns, annualised, rf 0) are those of the "
    "stitched test windows: each starts from cash with the settings chosen before it, its return compounded onto "
    "the last window's value. Sharpe 95% CI: a moving-block bootstrap of the daily returns (20-day blocks, 2,000 "
    "resamples, seeded): how far the Sharpe ratio of this many days can move by luck alone; two rows whose "
    "intervals overlap widely are not told apart by these years.",
    "trades: closed trades in the test windows (hedges included; a position still open at a window's end is "
    "marked, not counted). exposure: share of days with any position; avg invested: the positions' value over "
    "equity, averaged over days (both weighted by each window's days).",
    "SPY is bought at the close before the first test day and held over the same days. Both are price only: the "
    "bars are split- but not dividend-adjusted. The stock list is today's S&P 100 (survivorship bias: absolute "
    "returns are optimistic; compare rows with each other).",
)


def worst_month(curve: pd.Series) -> float:
    """The worst calendar month's return; the first month is counted from the curve's first value."""
    curve = curve.dropna()
    if len(curve) < 2:
        return math.nan
    values = np.concatenate([[curve.iloc[0]], curve.groupby(curve.index.to_period("M")).last().to_numpy()])
    return float((values[1:] / values[:-1] - 1).min())


def curve_row(curve: pd.Series) -> dict[str, float]:
    """The figures an equity curve alone gives."""
    m = equity_metrics(curve)
    dd = m["max_drawdown"]
    return {"return": m["total_return"], "max_drawdown": dd,
            "return_over_dd": m["total_return"] / abs(dd) if dd < 0 else math.nan,
            "worst_month": worst_month(curve), "sharpe": m["sharpe"], "sharpe_ci": sharpe_ci(curve)}


def sharpe_ci(curve: pd.Series) -> str:
    """The Sharpe ratio's 95% interval as "low..high" (the daily returns equity_metrics uses)."""
    daily = curve.dropna()
    daily = daily.groupby(daily.index.date).last()
    lo, hi = sharpe_interval(daily.pct_change().dropna().to_numpy())
    return f"{lo:.2f}..{hi:.2f}" if math.isfinite(lo) else "-"


def stitched_row(curve: pd.Series, tests: list[dict]) -> dict[str, float]:
    """One addition's row: its stitched curve's figures, and trades and time in the market from the windows."""
    days = [max(len(t["equity"]) - 1, 1) for t in tests]  # a window's shares of time count by its length
    return {**curve_row(curve), "trades": float(sum(t["trades"] for t in tests)),
            "exposure": float(np.average([t["exposure"] for t in tests], weights=days)),
            "invested": float(np.average([t.get("invested", math.nan) for t in tests], weights=days))}


def build_table(result: dict, additions: list, market) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """(one row per addition plus SPY, the stitched curves by row name)."""
    rows, curves = [], {}
    for a in additions:
        tests = result["tests"][a.name]
        failed = next((t["error"] for t in tests if "error" in t), None)
        row = {"addition": a.name, "switched_on": a.describe(), "note": a.note}
        if failed:  # a missing window would make the stitched figures look better or worse than they were
            row["note"] = f"a test window failed, no figures: {failed}"
        else:
            curves[a.name] = stitch([t["equity"] for t in tests])
            row.update(stitched_row(curves[a.name], tests))
        rows.append(row)
    spy = spy_curve(market, next(iter(curves.values()), pd.Series(dtype=float)))
    if len(spy):
        curves[SPY_ROW] = spy
        row = {"addition": SPY_ROW, "switched_on": "(benchmark)", **curve_row(spy), "trades": math.nan,
               "exposure": 1.0, "invested": 1.0, "note": "price only"}
        rows.append(row)
    return pd.DataFrame(rows, columns=["addition", "switched_on", *COLUMNS, "note"]), curves


def markdown(table: pd.DataFrame) -> str:
    fmt = {"return": fmt_pct, "max_drawdown": fmt_pct, "return_over_dd": fmt_num, "worst_month": fmt_pct,
           "trades": lambda x: "-" if not math.isfinite(x) else f"{x:.0f}", "exposure": fmt_share,
           "invested": fmt_share, "sharpe": fmt_num, "sharpe_ci": str}
    lines = ["| addition | switched on | " + " | ".join(COLUMNS.values()) + " |",
             "|---|---|" + "---:|" * len(COLUMNS)]
    for _, r in table.iterrows():
        cells = [fmt[c](r[c]) if pd.notna(r[c]) else "-" for c in COLUMNS]
        lines.append(f"| {r['addition']} | {r['switched_on']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(result: dict, additions: list, market, settings, args, wall_seconds: float) -> Path:
    out = Path(args.out or settings.reports_dir) / f"additions-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    table, curves = build_table(result, additions, market)
    fold_rows = pd.DataFrame(result["fold_rows"])
    table.to_csv(out / "table.csv", index=False)
    fold_rows.to_csv(out / "folds.csv", index=False)
    pd.DataFrame(curves).to_csv(out / "equity.csv", index_label="date")
    fs = result["folds"]
    span = f"{fs[0].test_start} .. {fs[-1].test_end}"
    plot_curves(curves, out / "equity.png", f"Out-of-sample equity, each addition alone, {span} (stitched)")
    fallbacks = fold_rows[fold_rows["how"].str.endswith("the declared settings")] if len(fold_rows) else fold_rows
    head = (f"Walk-forward on {market.source} ({market.timestep} bars, costs on): {len(fs)} folds of "
            f"{args.train_days} training days, a {args.gap_days}-day gap and {args.test_days} test days; training "
            f"from {fs[0].train_start}, every figure from the test windows {span}. An addition with a space was "
            f"tuned on each training window ({args.trials} trials, objective {args.objective}, at least "
            f"{args.min_trades} trades) and traded with the winner on the next test window only. "
            f"{args.runner} runner, {wall_seconds / 60:.1f} min.")
    lines = ["# Each addition alone, out of sample", "", head, "", markdown(table), ""]
    lines += [f"- {n}" for n in NOTES]
    lines += [f"- {r.addition}: {r.note}" for r in table.itertuples() if r.note and r.addition != SPY_ROW]
    if len(fallbacks):
        lines.append(f"- {len(fallbacks)} fold(s) had no training trial that counted and traded the declared "
                     "settings: " + "; ".join(f"{r.addition} fold {r.fold} ({r.how.split(' in training')[0]})"
                                              for r in fallbacks.itertuples()))
    (out / "table.md").write_text("\n".join(lines) + "\n")
    return out
