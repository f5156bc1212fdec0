"""A sweep's report folder: the summary (stitched out-of-sample beside in-sample), the tables, the plot, and the
chosen settings as a profile."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd

from backtest.metrics import buy_and_hold, equity_metrics


def write_report(result: dict, market, settings, space, args, wall_seconds: float) -> Path:
    root = Path(args.out or settings.reports_dir)
    out = root / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    trials = pd.DataFrame([{k: v for k, v in r.items() if k != "_equity"} for r in result["trials"]])
    trials.to_csv(out / "trials.csv", index=False)
    folds = pd.DataFrame(result["folds"])
    folds.to_csv(out / "folds.csv", index=False)
    imp = pd.DataFrame(result["importances"]).mean().sort_values(ascending=False) if result["importances"] \
        else pd.Series(dtype=float)
    imp.rename("importance").to_csv(out / "importances.csv", index_label="parameter")
    oos = result["oos"]
    spy = spy_curve(market, oos)
    if len(oos):
        plot_curves({"strategy, out of sample (stitched)": oos, "SPY buy & hold": spy}, out / "oos_equity.png",
                    f"Walk-forward out-of-sample equity ({args.objective}, {args.train_days}d train / "
                    f"{args.test_days}d test)")
        pd.DataFrame({"strategy_oos": oos, "spy_buy_hold": spy if len(spy) else None}).to_csv(
            out / "oos_equity.csv", index_label="date")
    (out / "summary.txt").write_text(summary_text(result, trials, folds, imp, oos, spy, market, args, wall_seconds))
    if result["chosen"]:
        lines = [f"# chosen by `python -m research.sweep` on {market.source}, {args.start} .. {args.end}",
                 f"# objective {args.objective}, the last fold's best settings (tuned on {folds.iloc[-1]['train']})",
                 f"# load with: python live_trader.py --profile {out / 'best.env'}"]
        lines += [f"{k}={v}" for k, v in result["chosen"].items()]
        (out / "best.env").write_text("\n".join(lines) + "\n")
    return out


def spy_curve(market, oos: pd.Series) -> pd.Series:
    """SPY bought and held over the dates of `oos`, starting from its first value (empty without SPY data)."""
    if not len(oos) or "SPY" not in market.bars:
        return pd.Series(dtype=float)
    idx = pd.DatetimeIndex(oos.index).tz_localize(market.bars["SPY"].index.tz) + pd.Timedelta(hours=16)
    return buy_and_hold(market.prices_at("SPY", idx), float(oos.iloc[0])).set_axis(oos.index)


def fmt_pct(x) -> str:
    return "-" if x is None or not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:+.1%}"


def fmt_share(x) -> str:
    return "-" if x is None or not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:.1%}"


def fmt_num(x) -> str:
    return "-" if x is None or not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:.2f}"


def summary_text(result, trials, folds, imp, oos, spy, market, args, wall) -> str:
    counted = int(trials["objective"].notna().sum()) if len(trials) else 0
    head = (f"Walk-forward sweep on {market.source}, {args.start} .. {args.end}: {len(folds)} fold(s) of "
            f"{args.train_days} training days, a {args.gap_days}-day gap, {args.test_days} test days; "
            f"{len(trials)} trials ({counted} counted, at least {args.min_trades} trades), objective "
            f"{args.objective}; {args.runner} runner; {wall / 60:.1f} min")
    lines = [head, ""]
    if len(oos):
        m, b = equity_metrics(oos), equity_metrics(spy) if len(spy) else {}
        ret_dd = m["total_return"] / abs(m["max_drawdown"]) if m["max_drawdown"] else math.nan
        spy_dd = b["total_return"] / abs(b["max_drawdown"]) if b and b["max_drawdown"] else math.nan
        is_mean = float(pd.to_numeric(folds.get("is_objective"), errors="coerce").mean())
        oos_mean = float(pd.to_numeric(folds.get("oos_objective"), errors="coerce").mean())
        lines += ["The strategy's figure is the stitched out-of-sample result (each test window traded with the "
                  "settings chosen on the window before it):", "",
                  f"{'':<26}{'out of sample':>16}{'SPY buy & hold':>16}",
                  f"{'total return':<26}{fmt_pct(m['total_return']):>16}{fmt_pct(b.get('total_return')):>16}",
                  f"{'max drawdown':<26}{fmt_pct(m['max_drawdown']):>16}{fmt_pct(b.get('max_drawdown')):>16}",
                  f"{'return / max drawdown':<26}{fmt_num(ret_dd):>16}{fmt_num(spy_dd):>16}",
                  f"{'Sharpe (daily, rf 0)':<26}{fmt_num(m['sharpe']):>16}{fmt_num(b.get('sharpe')):>16}",
                  f"{'trades':<26}{int(pd.to_numeric(folds.get('oos_trades'), errors='coerce').sum()):>16}{1:>16}",
                  f"{'time in market':<26}"
                  f"{fmt_share(float(pd.to_numeric(folds.get('oos_exposure'), errors='coerce').mean())):>16}"
                  f"{'100%':>16}",
                  "", f"Objective ({args.objective}), mean over folds: in sample {fmt_num(is_mean)} (the best of "
                  f"each fold's trials), out of sample {fmt_num(oos_mean)}."]
    lines += ["", "Folds:"]
    cols = [c for c in ("fold", "train", "test", "is_objective", "oos_objective", "oos_return", "oos_max_drawdown",
                        "oos_trades", "deflated_sharpe", "pbo", "note") if c in folds]
    lines.append(folds[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}") if len(folds) else "(none)")
    lines += ["", "deflated_sharpe: probability that the chosen trial's Sharpe beats what the best of this many "
              "skill-less trials would show (Bailey & Lopez de Prado); pbo: probability of backtest overfitting "
              "by combinatorially symmetric cross-validation over the fold's trials (0.5 = selection is a coin "
              "toss)."]
    if len(imp):
        lines += ["", "Parameter importances (Optuna, mean over folds):"]
        lines += [f"  {k:<24}{v:.2f}" for k, v in imp.items()]
    if result["chosen"]:
        lines += ["", "Chosen settings (the last fold's best; best.env): "
                  + ", ".join(f"{k}={v}" for k, v in result["chosen"].items())]
    return "\n".join(lines) + "\n"


def plot_curves(curves: dict[str, pd.Series], path: Path, title: str) -> None:
    """Equity curves by label on one chart (a label starting with SPY is drawn grey: the benchmark)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2) if len(curves) <= 2 else (10, 5.5))
    if len(curves) > 10:  # the default cycle has 10 colours; past that two curves would share one
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    for label, curve in curves.items():
        if len(curve):
            spy = label.startswith("SPY")
            ax.plot(curve.index, curve.values, label=label, color="tab:gray" if spy else None, alpha=0.8 if spy else 1)
    ax.set_title(title)
    ax.set_ylabel("USD")
    ax.legend(loc="upper left", fontsize="small" if len(curves) > 2 else None)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
