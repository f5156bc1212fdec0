"""Performance from the journal: per strategy step, per exit reason, and what the gates blocked.

Closed trades give win rate, profit factor, average R, expectancy and P&L; the equity samples give
Sharpe, max drawdown and time in market overall, and each step's or exit reason's own realised P&L
curve and open intervals give them per step and per exit reason (realised_stats). The same tables
serve the backtest summary and `python live_trader.py report` / `python check_positions_now.py --history` for live runs.
"""

import math

import numpy as np
import pandas as pd

BLOCKED_ACTIONS = ("skip", "denied", "blocked")
EXIT_ORDER = ("take_profit", "partial", "trailing", "breakeven", "stop", "software_stop", "time", "model", "trim",
              "hedge_unwind", "manual")


def trade_stats(trades: pd.DataFrame) -> dict:
    n = len(trades)
    if not n:
        return {"trades": 0, "win_rate": math.nan, "profit_factor": math.nan, "avg_r": math.nan,
                "expectancy_usd": math.nan, "pnl_usd": 0.0}
    wins, losses = trades[trades["pnl_usd"] > 0], trades[trades["pnl_usd"] < 0]
    gross_loss = -losses["pnl_usd"].sum()
    return {"trades": n, "win_rate": len(wins) / n,
            "profit_factor": wins["pnl_usd"].sum() / gross_loss if gross_loss > 0 else math.inf,
            "avg_r": float(pd.to_numeric(trades["r_multiple"], errors="coerce").mean()),
            "expectancy_usd": float(trades["pnl_usd"].mean()), "pnl_usd": float(trades["pnl_usd"].sum())}


def equity_stats(equity: pd.DataFrame) -> dict:
    if equity.empty:
        return {"sharpe": math.nan, "max_drawdown": math.nan, "time_in_market": math.nan}
    e = equity.copy()
    e["time"] = pd.to_datetime(e["time"], utc=True)
    v = e.set_index("time")["portfolio_value"].astype(float)
    daily = v.groupby(v.index.date).last()
    rets = daily.pct_change().dropna()
    sharpe = float(rets.mean() / rets.std() * np.sqrt(252)) if len(rets) > 1 and rets.std() > 0 else math.nan
    return {"sharpe": sharpe, "max_drawdown": float((v / v.cummax() - 1).min()),
            "time_in_market": float((e["positions"] > 0).mean()),
            "hedge_time_in_market": float((e["inverse_value"] > 0).mean())}


def realised_stats(trades: pd.DataFrame, equity: pd.DataFrame) -> dict:
    """Sharpe, max drawdown and time in market of one slice of the trades (a step, an exit reason), from
    their realised P&L: the slice's own equity curve is the starting equity plus its P&L on each exit day,
    and its time in market is the share of the run's sampled hours during which one of its trades was open."""
    if equity.empty or trades.empty:
        return {"sharpe": math.nan, "max_drawdown": math.nan, "time_in_market": math.nan}
    times = pd.to_datetime(equity["time"], utc=True)
    start_equity = float(equity["portfolio_value"].iloc[0])
    days = pd.Index(sorted(set(times.dt.date)))
    exits = pd.to_datetime(trades["exit_time"], utc=True)
    daily = trades["pnl_usd"].astype(float).groupby(exits.dt.date.to_numpy()).sum().reindex(days, fill_value=0.0)
    curve = start_equity + daily.cumsum()
    rets = curve.pct_change().fillna(curve.iloc[0] / start_equity - 1)
    sharpe = float(rets.mean() / rets.std() * np.sqrt(252)) if len(rets) > 1 and rets.std() > 0 else math.nan
    peak = np.maximum(curve.cummax(), start_equity)
    t = pd.DatetimeIndex(times).asi8
    held = np.zeros(len(t), dtype=bool)
    for entry, exit_ in zip(pd.to_datetime(trades["entry_time"], utc=True), exits, strict=True):
        held |= (t >= entry.value) & (t < exit_.value)
    return {"sharpe": sharpe, "max_drawdown": float((curve / peak - 1).min()), "time_in_market": float(held.mean())}


def tables(journal) -> dict:
    closed = journal.frame("closed_trades")
    equity = journal.frame("equity")
    step = closed["kind"].map(lambda k: "hedges" if k == "hedge" else "entries") if len(closed) else closed["kind"]
    per_step = {name: {**trade_stats(closed[step == name]), **realised_stats(closed[step == name], equity)}
                for name in ("entries", "hedges")}
    reasons = sorted(set(closed["exit_reason"]), key=lambda r: EXIT_ORDER.index(r) if r in EXIT_ORDER else 99)
    per_reason = {r: {**trade_stats(closed[closed["exit_reason"] == r]),
                      **realised_stats(closed[closed["exit_reason"] == r], equity)} for r in reasons}
    return {"overall": {**trade_stats(closed), **equity_stats(equity)}, "per_step": per_step,
            "per_exit_reason": per_reason, "blocked_by_gate": blocked_by_gate(journal.frame("decisions")),
            "risk_events": risk_events(journal.frame("decisions"))}


MAIN_GATES = ("confidence", "breadth", "exposure", "concurrency", "circuit_breaker", "stale_data")


def blocked_by_gate(decisions: pd.DataFrame) -> dict[str, int]:
    """Entries (and hedges) that a gate stopped or shrank: the main gates always (0 when they never
    fired), then any other that did: cash, loss limits, orders per iteration, losing streak and recovery
    (resized)."""
    counts = {g: 0 for g in MAIN_GATES}
    if decisions.empty or "gate" not in decisions:
        return counts
    d = decisions[decisions["gate"].notna() & decisions["action"].isin((*BLOCKED_ACTIONS, "enter", "hedge"))]
    for gate, n in d.groupby("gate").size().sort_values(ascending=False).items():
        counts[str(gate)] = counts.get(str(gate), 0) + int(n)
    return counts


def risk_events(decisions: pd.DataFrame) -> dict[str, int]:
    if decisions.empty:
        return {}
    d = decisions[(decisions["step"] == "risk") & decisions["action"].isin(("reducing", "halted"))]
    return {str(k): int(v) for k, v in d.groupby("gate").size().items()} if "gate" in d else {}


def render(t: dict, equity: bool = True) -> str:
    def f(x, spec):
        return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)

    def pf(x) -> str:
        return "inf" if x == math.inf else f(x, ".2f")  # no losing trade at all

    def rows(title: str, block: dict) -> list[str]:
        head = (f"{title:<16} {'trades':>6} {'win':>5} {'PF':>6} {'avg R':>6} {'$/trade':>9} {'P&L':>10} "
                f"{'Sharpe':>7} {'max DD':>7} {'in mkt':>7}")
        out = [head, "-" * len(head)]
        for name, s in block.items():
            out.append(f"{name:<16} {s['trades']:>6} {f(s['win_rate'], '.0%'):>5} {pf(s['profit_factor']):>6} "
                       f"{f(s['avg_r'], '+.2f'):>6} {f(s['expectancy_usd'], ',.0f'):>9} {f(s['pnl_usd'], ',.0f'):>10} "
                       f"{f(s.get('sharpe'), '.2f'):>7} {f(s.get('max_drawdown'), '.1%'):>7} "
                       f"{f(s.get('time_in_market'), '.0%'):>7}")
        return out

    o = t["overall"]
    head = (f"Journal: {o['trades']} closed trades, win rate {f(o['win_rate'], '.0%')}, profit factor "
            f"{f(o['profit_factor'], '.2f')}, average {f(o['avg_r'], '+.2f')}R, expectancy "
            f"${f(o['expectancy_usd'], ',.0f')}/trade")
    if equity:
        head += (f", Sharpe {f(o.get('sharpe'), '.2f')}, max drawdown {f(o.get('max_drawdown'), '.1%')}, "
                 f"time in market {f(o.get('time_in_market'), '.0%')}")
    lines = [head, ""]
    lines += rows("step", t["per_step"]) + [""] + rows("exit reason", t["per_exit_reason"])
    lines += ["(per row: Sharpe and max drawdown of that row's realised P&L added to the starting equity; in mkt: "
              "share of the run's hours with one of its trades open)"]
    if t["blocked_by_gate"]:
        lines += ["", "Entries blocked or shrunk, per gate: "
                  + ", ".join(f"{g} {n}" for g, n in t["blocked_by_gate"].items())]
    if t["risk_events"]:
        lines += ["Risk events: " + ", ".join(f"{g} tripped {n}x" for g, n in t["risk_events"].items())]
    return "\n".join(lines)
