"""The backtest report: a summary table beside SPY buy-and-hold, and the files behind it.

Files in the run's folder:
  summary.txt / summary.json   the table printed at the end (and the numbers, for scripts)
  decisions.csv / decisions.log every decision with its reason (the log is written in blocks as the run goes)
  trades.csv                   round trips: entry, exit, exit reason, P&L (open lots marked at the end)
  fills.csv                    every fill with the role of its order
  equity.csv / equity.png      strategy vs SPY buy-and-hold, inverse allocation, drawdown
  tearsheet.html               Lumibot's QuantStats tearsheet (benchmark: SPY from the same data)
  lumibot_trade_events.csv     Lumibot's own trade-event export
  settings.json                the settings and data source used
  journal.sqlite               the trade journal of the run (python live_trader.py report --journal ...)
  final_state.json             positions and protection at the end (check_positions_now.py shows it offline)
"""

import json
import logging
import math
from pathlib import Path

import pandas as pd

from backtest.metrics import buy_and_hold, equity_metrics, safe, time_in_market
from backtest.runner import BacktestRun
from trading.records import performance
from trading.records.positions_view import position_rows, to_json

logger = logging.getLogger("trader.backtest")


def equity_frame(run: BacktestRun) -> pd.DataFrame:
    st = run.strategy
    stats = st._strategy_returns_df  # Lumibot's per-iteration account values
    equity = stats["portfolio_value"].astype(float)
    equity = equity[~equity.index.duplicated(keep="last")]
    frame = pd.DataFrame({"strategy": equity})
    if "SPY" in run.market.bars:
        spy = run.market.prices_at("SPY", equity.index)
        frame["spy_buy_hold"] = buy_and_hold(spy, float(equity.iloc[0]))
    samples = st.ledger.samples_frame()
    if len(samples):
        s = samples.drop_duplicates("time", keep="last").set_index("time")
        frame["inverse_value"] = s["inverse_value"].reindex(frame.index, method="ffill").fillna(0.0)
        frame["cash"] = s["cash"].reindex(frame.index, method="ffill")
    return frame


def summarize(run: BacktestRun) -> dict:
    st = run.strategy
    eq = equity_frame(run)
    last = eq.index[-1]
    mark = {sym: run.market.price_at(sym, last) for sym in {lot.symbol for lot in st.ledger.open_lots()}}
    trades = st.ledger.trades_frame(mark=mark, at=last)
    perf = performance.tables(st.journal)
    exits = {reason: s["trades"] for reason, s in perf["per_exit_reason"].items()}
    fills = st.ledger.fills_frame()
    inverse = eq["inverse_value"] if "inverse_value" in eq else pd.Series(dtype=float)
    log = st.decision_log
    o = perf["overall"]
    strategy = {
        **equity_metrics(eq["strategy"]),
        "trades": o["trades"], "win_rate": o["win_rate"], "profit_factor": o["profit_factor"], "avg_r": o["avg_r"],
        "expectancy_usd": o["expectancy_usd"],
        "start_value": float(eq["strategy"].iloc[0]), "final_value": float(eq["strategy"].iloc[-1]),
        "exits_stop": exits.get("stop", 0), "exits_take_profit": exits.get("take_profit", 0),
        "exits_software_stop": exits.get("software_stop", 0), "exits_hedge_unwind": exits.get("hedge_unwind", 0),
        "exits_breakeven": exits.get("breakeven", 0), "exits_trailing": exits.get("trailing", 0),
        "exits_partial": exits.get("partial", 0), "exits_time": exits.get("time", 0),
        "trims": int((fills["role"] == "trim").sum()) if len(fills) else 0,
        "entries": log.count("enter"), "hedges_opened": log.count("hedge"), "hedges_unwound": log.count("unhedge"),
        "protections_attached": log.count("protect"), "hedge_time_in_market": time_in_market(inverse),
        "open_positions_at_end": int((trades["exit_reason"] == "open").sum()),
        **cost_figures(run, float(eq["strategy"].iloc[0]), float(eq["strategy"].iloc[-1])),
    }
    bench = {}
    if "spy_buy_hold" in eq:
        bench = {**equity_metrics(eq["spy_buy_hold"]), "start_value": float(eq["spy_buy_hold"].iloc[0]),
                 "final_value": float(eq["spy_buy_hold"].iloc[-1]), "trades": 1}
    lumi = run.lumibot_results
    return {
        "window": [str(run.start.date()), str((run.end - pd.Timedelta(days=1)).date())],
        "data": run.market.source, "timestep": run.market.timestep, "iterations": st.iterations,
        "confidence_source": st.scorer.describe(), "wall_seconds": run.wall_seconds,
        "strategy": strategy, "spy_buy_hold": bench, "exits_by_reason": exits, "warnings": run.warnings,
        "journal": perf, "risk": st.risk.describe(), "costs": run.costs.describe(),
        "starting_book": list(run.book.notes),
        "lumibot": {"total_return": safe(_f(lumi.get("total_return"))), "cagr": safe(_f(lumi.get("cagr"))),
                    "sharpe": safe(_f(lumi.get("sharpe"))),
                    "max_drawdown": safe(_f((lumi.get("max_drawdown") or {}).get("drawdown")))},
        "out_dir": str(run.out_dir),
    }


def cost_figures(run: BacktestRun, start_value: float, final_value: float) -> dict:
    """Fees and slippage the run paid, and the gross return: the net one with those dollars added back (the
    sizing and the cash they would have left are not replayed)."""
    tally = run.costs.tally
    paid = tally.fees + tally.slippage
    return {"fees": tally.fees, "slippage": tally.slippage, "costs_share_of_start": paid / start_value,
            "gross_return": (final_value + paid) / start_value - 1}


def _f(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def render_table(summary: dict) -> str:
    s, b = summary["strategy"], summary["spy_buy_hold"]

    def pct(x):
        return "-" if x is None or not math.isfinite(x) else f"{x:+.1%}"

    def num(x, fmt="{:.2f}"):
        return "-" if x is None or not math.isfinite(x) else fmt.format(x)

    rows = [
        ("Final value", f"${s['final_value']:,.0f}", f"${b['final_value']:,.0f}" if b else "-"),
        ("Total return (net of costs)", pct(s["total_return"]), pct(b.get("total_return")) if b else "-"),
        ("Total return, gross", pct(s["gross_return"]), "-"),
        ("Fees / slippage paid", f"${s['fees']:,.0f} / ${s['slippage']:,.0f}", "-"),
        ("CAGR", pct(s["cagr"]), pct(b.get("cagr")) if b else "-"),
        ("Sharpe (daily, rf 0)", num(s["sharpe"]), num(b.get("sharpe", math.nan)) if b else "-"),
        ("Max drawdown", pct(s["max_drawdown"]), pct(b.get("max_drawdown")) if b else "-"),
        ("Worst day", pct(s["worst_day"]), pct(b.get("worst_day")) if b else "-"),
        ("Worst week", pct(s["worst_week"]), pct(b.get("worst_week")) if b else "-"),
        ("Closed trades", str(s["trades"]), "1 (held)" if b else "-"),
        ("Win rate", "-" if not math.isfinite(s["win_rate"]) else f"{s['win_rate']:.0%}", "-"),
        ("Profit factor", num(s["profit_factor"]), "-"),
        ("Bracket exits: stop / take-profit", f"{s['exits_stop']} / {s['exits_take_profit']}", "-"),
        ("Exit policy: breakeven / trailing", f"{s['exits_breakeven']} / {s['exits_trailing']}", "-"),
        ("Exit policy: partial / time", f"{s['exits_partial']} / {s['exits_time']}", "-"),
        ("Software stops", str(s["exits_software_stop"]), "-"),
        ("Trims", str(s["trims"]), "-"),
        ("Entries placed", str(s["entries"]), "-"),
        ("Hedges opened / unwound", f"{s['hedges_opened']} / {s['hedges_unwound']}", "-"),
        ("Hedge time in market", "-" if not math.isfinite(s["hedge_time_in_market"])
         else f"{s['hedge_time_in_market']:.1%}", "-"),
        ("Protections attached", str(s["protections_attached"]), "-"),
        ("Positions open at the end", str(s["open_positions_at_end"]), "1"),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows + [("", "CombinedStrategy", "")])
    lines = [f"{'':<{w0}}  {'CombinedStrategy':>{w1}}  {'SPY buy & hold':>14}",
             f"{'-' * w0}  {'-' * w1}  {'-' * 14}"]
    lines += [f"{a:<{w0}}  {c:>{w1}}  {d:>14}" for a, c, d in rows]
    head = (f"Backtest {summary['window'][0]} .. {summary['window'][1]}  |  data: {summary['data']} "
            f"({summary['timestep']} bars)  |  {summary['iterations']} iterations  |  "
            f"{summary['wall_seconds']:.0f} s")
    notes = [f"Confidence: {summary['confidence_source']}.",
             f"Costs: {summary['costs']} (gross adds what was paid back; SPY buy & hold pays none)."]
    lu = summary["lumibot"]
    if lu.get("total_return") is not None:
        notes.append(f"Lumibot's own figures: total return {lu['total_return']:+.1%}, max drawdown "
                     f"{-(lu['max_drawdown'] or 0):.1%}, Sharpe {lu['sharpe']:.2f} (its own Sharpe method).")
    notes.append(f"Risk controller at the end: {summary['risk']}.")
    notes += [f"Starting book: {n}" for n in summary["starting_book"]]
    notes += [f"Warning: {w}" for w in summary["warnings"]]
    journal = performance.render(summary["journal"], equity=False)  # the table above has the equity figures
    return "\n".join([head, "", *lines, "", journal, "", *notes]) + "\n"


def write_report(run: BacktestRun, summary: dict, table: str) -> list[Path]:
    out = run.out_dir
    st = run.strategy
    written = []

    def put(name: str, text: str) -> None:
        (out / name).write_text(text)
        written.append(out / name)

    put("summary.txt", table)
    put("summary.json", json.dumps(_clean(summary), indent=2, default=_json_default))
    eq = equity_frame(run)
    eq.to_csv(out / "equity.csv")
    written.append(out / "equity.csv")
    st.decision_log.frame().to_csv(out / "decisions.csv", index=False)
    written.append(out / "decisions.csv")
    last = eq.index[-1]
    mark = {sym: run.market.price_at(sym, last) for sym in {lot.symbol for lot in st.ledger.open_lots()}}
    st.ledger.trades_frame(mark=mark, at=last).to_csv(out / "trades.csv", index=False)
    st.ledger.fills_frame().to_csv(out / "fills.csv", index=False)
    written += [out / "trades.csv", out / "fills.csv"]
    final = st.snapshot_from_lumibot(st.get_datetime())
    rows, totals = position_rows(final, run.settings)
    put("final_state.json", to_json(rows, totals, f"{run.market.source}, end of the backtest {summary['window'][1]}",
                                    simulated=True))
    put("settings.json", json.dumps({"settings": run.settings.public_dict(), "data": run.market.source,
                                     "config": {k: str(v) for k, v in vars(run.config).items()}}, indent=2,
                                    default=_json_default))
    written.append(_plot(eq, out / "equity.png", f"CombinedStrategy on {run.market.source}"))
    try:
        st.broker.export_trade_events_to_csv(str(out / "lumibot_trade_events.csv"))
        written.append(out / "lumibot_trade_events.csv")
    except Exception as exc:  # noqa: BLE001 - a missing optional export must not lose the rest of the report
        logger.warning("Lumibot's trade-event export failed: %s", exc)
    tearsheet = _tearsheet(run, eq)
    if tearsheet is not None:
        written.append(tearsheet)
    written += [out / "journal.sqlite", out / "decisions.log"]  # written by the run itself
    return [p for p in written if p is not None and p.exists()]


def _tearsheet(run: BacktestRun, eq: pd.DataFrame) -> Path | None:
    """Lumibot's QuantStats tearsheet, with SPY buy-and-hold from the same data as the benchmark."""
    st = run.strategy
    if "spy_buy_hold" not in eq:
        return None
    daily = eq["spy_buy_hold"].groupby(eq.index.date).last()
    daily.index = pd.DatetimeIndex(pd.to_datetime(daily.index)).tz_localize("America/New_York")
    bench = pd.DataFrame({"close": daily})
    bench["return"] = bench["close"].pct_change()
    bench["symbol_cumprod"] = bench["close"] / bench["close"].iloc[0]
    st._benchmark_returns_df = bench
    st._benchmark_asset = "SPY (same data)"
    st.parameters = {k: v for k, v in run.settings.public_dict().items() if not isinstance(v, list)}
    path = run.out_dir / "tearsheet.html"
    try:
        st.tearsheet(save_tearsheet=True, tearsheet_file=str(path), show_tearsheet=False,
                     tearsheet_metrics_file=str(run.out_dir / "tearsheet_metrics.json"))
    except Exception as exc:  # noqa: BLE001 - QuantStats can fail on degenerate series; the rest still counts
        logger.warning("tearsheet not written: %s", exc)
        return None
    return path if path.exists() else None


def _plot(eq: pd.DataFrame, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    x = range(len(eq))  # trading time only: no flat weekend gaps
    ax1.plot(x, eq["strategy"], label="CombinedStrategy", color="tab:blue", lw=1.4)
    if "spy_buy_hold" in eq:
        ax1.plot(x, eq["spy_buy_hold"], label="SPY buy & hold (same data)", color="tab:gray", lw=1.1)
    if "inverse_value" in eq:
        hedged = (eq["inverse_value"] > 0).to_numpy()
        lo, hi = ax1.get_ylim()
        ax1.fill_between(x, lo, hi, where=hedged, color="tab:orange", alpha=0.15, label="hedged (inverse ETF held)")
        ax1.set_ylim(lo, hi)
    ax1.set_ylabel("portfolio value ($)")
    ax1.legend(loc="upper left")
    ax1.set_title(title)
    dd = eq["strategy"] / eq["strategy"].cummax() - 1
    ax2.fill_between(x, dd * 100, 0, color="tab:red", alpha=0.4, label="strategy")
    if "spy_buy_hold" in eq:
        bdd = eq["spy_buy_hold"] / eq["spy_buy_hold"].cummax() - 1
        ax2.plot(x, bdd * 100, color="tab:gray", lw=0.9, label="SPY")
    ax2.set_ylabel("drawdown (%)")
    ax2.legend(loc="lower left")
    ticks = list(range(0, len(eq), max(len(eq) // 10, 1)))
    ax2.set_xticks(ticks)
    ax2.set_xticklabels([eq.index[i].strftime("%Y-%m-%d") for i in ticks], rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _clean(obj):
    """NaN and infinity are not JSON: write them as null."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _json_default(x):
    if isinstance(x, (pd.Timestamp,)):
        return x.isoformat()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)
