"""Backtest versus live, decision by decision: `python live_trader.py diff --journal PATH`.

The journal of a live or paper run records what the run started from (trading/records/runs.py: its settings,
bar period, cash and positions). The run's period is replayed as a backtest with those settings, from that
book, beginning at the backtester's iteration that sees what the live bot saw when it started, on the same bars
(`--data alpaca` through the bar cache, or `--data csv:DIR`), and the two are compared:

- decisions: per bar, step and symbol, the actions each side took; every slot where they differ is listed with
  both reasons (informational "plan" lines are left out: reconciliation, outages, market closed);
- fills, per order (a live order's partial fills summed): each live order is matched with the backtest's of the
  same symbol, side and role within a bar; a market or stop fill further from the backtest's price before
  slippage than the slippage modelled for it (limit fills: more than a cent from it) is listed with the
  realised and the modelled slippage, and orders only one side filled are listed too;
- equity: both curves' start, end, return and max drawdown.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from backtest.metrics import equity_metrics
from backtest.scenario import StartingBook
from marketdata.csv_source import DataError

NY = "America/New_York"
SLIPPED_ROLES = {"entry", "exit", "trim", "time-exit", "model-exit", "hedge", "unhedge", "partial", "stop",
                 "software-stop"}
LIMIT_ROLES = {"target"}


@dataclass
class DiffResult:
    decisions: pd.DataFrame  # time, step, symbol, live, backtest
    fills: pd.DataFrame  # time, symbol, side, role, live_price, backtest_price, realised, modelled, note
    equity: dict  # live / backtest: start, end, return, max drawdown
    window: tuple[str, str]
    out_dir: Path | None = None
    notes: tuple[str, ...] = ()


def replay_inputs(journal):
    """(the first run record, when it started, its last decision) or DataError when the journal cannot be
    replayed. Rows the journal holds from before that run (an older version of the bot) are left out."""
    from trading.records.runs import read_runs

    runs = read_runs(journal)
    if not runs:
        raise DataError("this journal holds no run record (what a live run started from); diff needs the journal "
                        "of a live or paper run made by this version of the bot.")
    started = pd.Timestamp(runs[0]["started"])
    started = started.tz_localize(NY) if started.tzinfo is None else started.tz_convert(NY)
    decisions = journal.frame("decisions")
    times = pd.to_datetime(decisions["time"], utc=True).dt.tz_convert(NY) if len(decisions) else pd.Series([])
    times = times[times >= started] if len(times) else times
    if not len(times):
        raise DataError("this journal holds no decisions since its run started: nothing to compare.")
    return runs[0], started, times.max()


def replay_start(started: pd.Timestamp, bar_minutes: int) -> pd.Timestamp:
    """Where the replay begins: the backtester's iteration that sees what the live bot saw at `started` (the
    latest :30 of the session's hourly grid at or before it; the day itself for daily bars)."""
    if bar_minutes >= 1440:
        return started.normalize()
    return (started - pd.Timedelta(minutes=30)).floor("1h") + pd.Timedelta(minutes=30)


def starting_book(run: dict) -> StartingBook:
    qty = {s: int(p["qty"]) for s, p in run["positions"].items() if p["qty"] > 0}
    cost = {s: float(p["cost"]) for s, p in run["positions"].items() if p.get("cost")}
    notes = tuple(f"{s}: {q} sh at {cost.get(s, float('nan')):.2f} (the live account at the start)"
                  for s, q in qty.items())
    return StartingBook(float(run["cash"]), qty, cost, notes or ("the live account held cash only",))


def slot_of(times: pd.Series, bar_minutes: int) -> pd.Series:
    t = pd.to_datetime(times, utc=True).dt.tz_convert(NY)
    return t.dt.floor("1D") if bar_minutes >= 1440 else t.dt.floor(f"{min(bar_minutes, 60)}min")


def outcomes(orders: pd.DataFrame) -> dict[str, str]:
    """client order id -> what became of an order that did not go through ("rejected: <Alpaca's message>")."""
    import json

    out = {}
    for _, o in orders.iterrows():
        if o["status"] in ("rejected", "unknown", "dead-duplicate"):
            try:
                message = json.loads(o["response"] or "{}").get("message", "")
            except ValueError:
                message = ""
            out[o["client_order_id"]] = f"{o['status']}" + (f": {message}" if message else "")
    return out


def compare_decisions(live: pd.DataFrame, back: pd.DataFrame, bar_minutes: int,
                      live_outcomes: dict[str, str] | None = None) -> pd.DataFrame:
    """Per bar, step and symbol: the decisions' actions on each side; the slots where they differ. A live
    decision whose order Alpaca refused carries that outcome in its text."""
    def table(df: pd.DataFrame, fates: dict[str, str]) -> pd.DataFrame:
        df = df[df["step"] != "plan"].copy()
        df["slot"] = slot_of(df["time"], bar_minutes)
        df["symbol"] = df["symbol"].fillna("")
        fate = df["order_ids"].fillna("").map(lambda ids: "; ".join(f"[order {fates[i]}]" for i in ids.split(",")
                                                                    if i in fates)) if fates else ""
        df["text"] = df["action"].fillna("") + ": " + df["reason"].fillna("") + (" " + fate if fates else "")
        df["text"] = df["text"].str.strip()
        return df.groupby(["slot", "step", "symbol"]).agg(actions=("action", lambda a: tuple(sorted(set(a)))),
                                                          text=("text", " | ".join))

    a, b = table(live, live_outcomes or {}), table(back, {})
    both = a.join(b, how="outer", lsuffix="_live", rsuffix="_backtest")
    differ = both[both["actions_live"].fillna("").astype(str) != both["actions_backtest"].fillna("").astype(str)]
    out = differ.reset_index()[["slot", "step", "symbol", "text_live", "text_backtest"]]
    out.columns = ["time", "step", "symbol", "live", "backtest"]
    return out.fillna("(nothing)").sort_values(["time", "step", "symbol"]).reset_index(drop=True)


def per_order(fills: pd.DataFrame) -> pd.DataFrame:
    """One row per order: the pieces of a partly filled order summed (quantity) and averaged (price, by quantity),
    at the time of its first piece. Live fills arrive piece by piece; the backtester fills whole orders."""
    if fills.empty:
        return fills.assign(t=pd.Series(dtype="datetime64[ns, UTC]"))
    f = fills.assign(t=pd.to_datetime(fills["time"], utc=True), value=fills["qty"] * fills["price"],
                     key=fills["broker_order_id"].fillna(pd.Series(fills.index.astype(str), index=fills.index)))
    g = f.groupby("key", sort=False).agg(t=("t", "min"), symbol=("symbol", "first"), side=("side", "first"),
                                         role=("role", "first"), qty=("qty", "sum"), value=("value", "sum"))
    return g.assign(price=g["value"] / g["qty"]).drop(columns="value").reset_index(drop=True)


def compare_fills(live: pd.DataFrame, back: pd.DataFrame, bar_minutes: int, costs) -> pd.DataFrame:
    """Live fills (per order) against the backtest's, matched by symbol, side and role within one bar. A market
    or stop fill differs when it is further from the backtest's price *before* slippage than the slippage the
    backtest modelled for it; realised is signed (positive: worse for the order than that price)."""
    rows, used = [], set()
    window = pd.Timedelta(minutes=max(bar_minutes, 1))
    live, back = per_order(live), per_order(back)
    for _, f in live.iterrows():
        same = back[(back["symbol"] == f["symbol"]) & (back["side"] == f["side"]) & (back["role"] == f["role"])
                    & ((back["t"] - f["t"]).abs() <= window) & ~back.index.isin(used)]
        base = {"time": f["t"].tz_convert(NY), "symbol": f["symbol"], "side": f["side"], "role": f["role"],
                "live_qty": f["qty"], "live_price": f["price"]}
        if same.empty:
            rows.append({**base, "note": "live only"})
            continue
        m = same.iloc[(same["t"] - f["t"]).abs().argmin()]
        used.add(m.name)
        buy = f["side"] == "buy"
        limit = f["role"] in LIMIT_ROLES
        modelled = 0.0 if limit else _modelled(costs, f, m)
        before = float(m["price"]) - modelled if buy else float(m["price"]) + modelled  # the backtest's own price
        realised = (float(f["price"]) - before) if buy else (before - float(f["price"]))
        beyond = abs(realised) > modelled + 0.01
        qty_differs = float(f["qty"]) != float(m["qty"])
        if beyond or qty_differs:
            rows.append({**base, "backtest_qty": m["qty"], "backtest_price": m["price"],
                         "realised_slippage": realised, "modelled_slippage": modelled,
                         "note": "price beyond the slippage model" if beyond else "quantity differs"})
    for _, m in back[~back.index.isin(used)].iterrows():
        rows.append({"time": m["t"].tz_convert(NY), "symbol": m["symbol"], "side": m["side"], "role": m["role"],
                     "backtest_qty": m["qty"], "backtest_price": m["price"], "note": "backtest only"})
    return pd.DataFrame(rows).sort_values("time").reset_index(drop=True) if rows else pd.DataFrame(
        columns=["time", "symbol", "side", "role", "live_price", "backtest_price", "note"])


def _modelled(costs, live_fill, back_fill) -> float:
    """The slippage per share the backtest charged on this fill (market and stop fills; 0 with costs off)."""
    if costs is None or not costs.enabled or live_fill["role"] not in SLIPPED_ROLES:
        return 0.0
    price = float(back_fill["price"])
    return abs(costs.slipped(live_fill["symbol"], "buy", "market", price, back_fill["t"]) - price)


def equity_summary(curve: pd.Series) -> dict:
    curve = curve.dropna()
    if curve.empty:
        return {}
    m = equity_metrics(curve)
    return {"start": float(curve.iloc[0]), "end": float(curve.iloc[-1]), "return": m["total_return"],
            "max_drawdown": m["max_drawdown"]}


def run_diff(journal, settings, data: str, timeframe: str | None = None, out_root: Path | None = None,
             progress: bool = False) -> DiffResult:
    from backtest.runner import BacktestConfig, execute, load_market, prepare
    from trading.records.journal import Journal

    run, started, last = replay_inputs(journal)
    bar_minutes = int(run["bar_minutes"])
    tf = timeframe or ("day" if bar_minutes >= 1440 else "hour")
    begin = replay_start(started, bar_minutes)
    # the loaders want a window of at least two days; what the replay does after the run's last bar is cut below
    config = BacktestConfig(data=data, start=begin.date(), end=last.date() + pd.Timedelta(days=1).to_pytimedelta(),
                            book="cash", timeframe=tf, out_root=Path(out_root or settings.reports_dir),
                            progress=progress)
    market, *_ = load_market(config, settings)
    prep = prepare(config, settings, market=market)
    prep = dataclasses.replace(prep, start=begin, book=starting_book(run))  # from the run's own start and book
    bt = execute(prep)
    back = Journal(bt.out_dir / "journal.sqlite")
    cut = last + pd.Timedelta(minutes=bar_minutes)  # the replay runs on past the run's last bar: cut there

    def live(table: str) -> pd.DataFrame:
        return _between(journal.frame(table), begin, cut)

    def replay(table: str) -> pd.DataFrame:
        return _between(back.frame(table), begin, cut)

    live_eq, back_eq = live("equity"), replay("equity")
    live_curve = pd.Series(live_eq["portfolio_value"].to_numpy(), index=pd.to_datetime(live_eq["time"], utc=True))
    back_curve = pd.Series(back_eq["portfolio_value"].to_numpy(), index=pd.to_datetime(back_eq["time"], utc=True))
    result = DiffResult(compare_decisions(live("decisions"), replay("decisions"), bar_minutes,
                                          outcomes(journal.frame("orders"))),
                        compare_fills(live("fills"), replay("fills"), bar_minutes, bt.costs),
                        {"live": equity_summary(live_curve), "backtest": equity_summary(back_curve)},
                        (str(started.date()), str(last.date())), bt.out_dir,
                        notes=_notes(data, bar_minutes))
    back.close()
    return result


def _between(frame: pd.DataFrame, begin: pd.Timestamp, cut: pd.Timestamp) -> pd.DataFrame:
    if not len(frame):
        return frame
    t = pd.to_datetime(frame["time"], utc=True)
    return frame[(t >= begin) & (t < cut)]


def _notes(data: str, bar_minutes: int) -> tuple[str, ...]:
    if data == "alpaca" and bar_minutes == 60:
        return ("The live bot reads Alpaca's clock-aligned hourly bars (09:00, 10:00, ...; the first mixes in "
                "pre-market trades); the replay reads the session's hourly bars from 09:30, rebuilt from 30-minute "
                "bars. Indicators differ slightly between the two, and some decisions with them.",)
    return ()


def render(result: DiffResult, limit: int = 40) -> str:
    def pct(x):
        return "-" if x is None or not math.isfinite(x) else f"{x:+.2%}"

    lines = [f"Live run {result.window[0]} .. {result.window[1]} against its backtest replay (same settings, same "
             "starting book, same bars):", ""]
    lines.append(f"{'':<14}{'live':>14}{'backtest':>14}")
    live, back = result.equity["live"], result.equity["backtest"]
    for label, key, fmt in (("start value", "start", "${:,.0f}"), ("end value", "end", "${:,.0f}")):
        lines.append(f"{label:<14}{fmt.format(live[key]) if key in live else '-':>14}"
                     f"{fmt.format(back[key]) if key in back else '-':>14}")
    lines.append(f"{'return':<14}{pct(live.get('return')):>14}{pct(back.get('return')):>14}")
    lines.append(f"{'max drawdown':<14}{pct(live.get('max_drawdown')):>14}{pct(back.get('max_drawdown')):>14}")
    lines += [f"Note: {n}" for n in result.notes]
    d, f = result.decisions, result.fills
    lines += ["", f"Decisions that differ: {len(d)}" + (" (none: every bar, step and symbol decided alike)"
                                                          if d.empty else "")]
    for _, r in d.head(limit).iterrows():
        lines.append(f"  {r['time']:%Y-%m-%d %H:%M} {r['step']:<8} {r['symbol']:<6} live: {r['live']}")
        lines.append(f"  {'':<16} {'':<8} {'':<6} backtest: {r['backtest']}")
    if len(d) > limit:
        lines.append(f"  ... and {len(d) - limit} more in decisions_diff.csv")
    lines += ["", f"Fills that differ: {len(f)}" + (" (none beyond the slippage model)" if f.empty else "")]
    for _, r in f.head(limit).iterrows():
        prices = (f"live {r.get('live_qty', float('nan')):g} @ {r.get('live_price', float('nan')):.2f}, backtest "
                  f"{r.get('backtest_qty', float('nan')):g} @ {r.get('backtest_price', float('nan')):.2f}")
        realised = r.get("realised_slippage")
        extra = (f" (slippage {realised:+.2f}/sh against the backtest's price before slippage; modelled "
                 f"{r['modelled_slippage']:.2f}/sh)" if isinstance(realised, float) and math.isfinite(realised)
                 else "")
        lines.append(f"  {r['time']:%Y-%m-%d %H:%M} {r['symbol']:<6} {r['side']:<4} {r['role']:<10} "
                     f"{r['note']}: {prices}{extra}")
    return "\n".join(lines) + "\n"


def write(result: DiffResult, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "diff.txt", folder / "decisions_diff.csv", folder / "fills_diff.csv"]
    paths[0].write_text(render(result, limit=10_000))
    result.decisions.to_csv(paths[1], index=False)
    result.fills.to_csv(paths[2], index=False)
    return paths
