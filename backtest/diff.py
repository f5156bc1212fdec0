"""Backtest versus live, decision by decision: `python live_trader.py diff --journal PATH`.

The journal of a live or paper run records what the run started from (trading/records/runs.py: its settings,
bar period, cash and positions). The run's period is replayed as a backtest with those settings, from that
book, on the same bars (`--data alpaca` through the bar cache, or `--data csv:DIR`), and the two are compared:

- decisions: per bar, step and symbol, the actions each side took; every slot where they differ is listed with
  both reasons (informational "plan" lines are left out: reconciliation, outages, market closed);
- fills: each live fill is matched with the backtest's fill of the same symbol, side and role within a bar;
  a price difference beyond the slippage the backtest models for that fill (limit fills: beyond a cent) is
  listed with the realised and the modelled slippage, and fills only one side has are listed too;
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
SLIPPED_ROLES = {"entry", "exit", "trim", "time-exit", "hedge", "unhedge", "partial", "stop", "software-stop"}
LIMIT_ROLES = {"target"}


@dataclass
class DiffResult:
    decisions: pd.DataFrame  # time, step, symbol, live, backtest
    fills: pd.DataFrame  # time, symbol, side, role, live_price, backtest_price, realised, modelled, note
    equity: dict  # live / backtest: start, end, return, max drawdown
    window: tuple[str, str]
    out_dir: Path | None = None


def replay_inputs(journal, env_overrides: dict[str, str] | None = None):
    """(the first run record, its period as dates) or DataError when the journal cannot be replayed."""
    from trading.records.runs import read_runs

    runs = read_runs(journal)
    if not runs:
        raise DataError("this journal holds no run record (what a live run started from); diff needs the journal "
                        "of a live or paper run made by this version of the bot.")
    decisions = journal.frame("decisions")
    if decisions.empty:
        raise DataError("this journal holds no decisions: nothing to compare.")
    times = pd.to_datetime(decisions["time"], utc=True).dt.tz_convert(NY)
    return runs[0], times.min(), times.max()


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


def compare_fills(live: pd.DataFrame, back: pd.DataFrame, bar_minutes: int, costs) -> pd.DataFrame:
    """Live fills against the backtest's, matched by symbol, side and role within one bar."""
    rows, used = [], set()
    window = pd.Timedelta(minutes=max(bar_minutes, 1))
    back = back.assign(t=pd.to_datetime(back["time"], utc=True))
    for _, f in live.assign(t=pd.to_datetime(live["time"], utc=True)).iterrows():
        same = back[(back["symbol"] == f["symbol"]) & (back["side"] == f["side"]) & (back["role"] == f["role"])
                    & ((back["t"] - f["t"]).abs() <= window) & ~back.index.isin(used)]
        base = {"time": f["t"].tz_convert(NY), "symbol": f["symbol"], "side": f["side"], "role": f["role"],
                "live_qty": f["qty"], "live_price": f["price"]}
        if same.empty:
            rows.append({**base, "note": "live only"})
            continue
        m = same.iloc[(same["t"] - f["t"]).abs().argmin()]
        used.add(m.name)
        diff = float(f["price"]) - float(m["price"])
        modelled = _modelled(costs, f, m)
        limit = f["role"] in LIMIT_ROLES
        beyond = abs(diff) > (0.01 if limit else modelled + 0.01)
        if beyond or float(f["qty"]) != float(m["qty"]):
            rows.append({**base, "backtest_qty": m["qty"], "backtest_price": m["price"], "difference": diff,
                         "modelled_slippage": 0.0 if limit else modelled,
                         "note": "quantity differs" if float(f["qty"]) != float(m["qty"]) and not beyond
                         else "price beyond the slippage model"})
    for _, m in back[~back.index.isin(used)].iterrows():
        rows.append({"time": m["t"].tz_convert(NY), "symbol": m["symbol"], "side": m["side"], "role": m["role"],
                     "backtest_qty": m["qty"], "backtest_price": m["price"], "note": "backtest only"})
    return pd.DataFrame(rows).sort_values("time").reset_index(drop=True) if rows else pd.DataFrame(
        columns=["time", "symbol", "side", "role", "live_price", "backtest_price", "note"])


def _modelled(costs, live_fill, back_fill) -> float:
    """The slippage the backtest charged (or would charge) on this fill, per share."""
    if costs is None or not costs.enabled:
        return 0.0
    price = float(back_fill["price"])
    kind = "market" if live_fill["role"] in SLIPPED_ROLES else "limit"
    return abs(costs.slipped(live_fill["symbol"], "buy", kind, price, back_fill["t"]) - price)


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

    run, first, last = replay_inputs(journal)
    bar_minutes = int(run["bar_minutes"])
    tf = timeframe or ("day" if bar_minutes >= 1440 else "hour")
    # the loaders want a window of at least two days; what the replay does after the run's last bar is cut below
    config = BacktestConfig(data=data, start=first.date(), end=last.date() + pd.Timedelta(days=1).to_pytimedelta(),
                            book="cash", timeframe=tf, out_root=Path(out_root or settings.reports_dir),
                            progress=progress)
    market, *_ = load_market(config, settings)
    prep = prepare(config, settings, market=market)
    prep = dataclasses.replace(prep, book=starting_book(run))
    bt = execute(prep)
    back = Journal(bt.out_dir / "journal.sqlite")
    live_eq = journal.frame("equity")
    live_curve = pd.Series(live_eq["portfolio_value"].to_numpy(), index=pd.to_datetime(live_eq["time"], utc=True))
    cut = last + pd.Timedelta(minutes=bar_minutes)  # the replay runs on past the run's last bar: cut there
    back_eq = back.frame("equity")
    back_curve = pd.Series(back_eq["portfolio_value"].to_numpy(), index=pd.to_datetime(back_eq["time"], utc=True))
    back_curve = back_curve[back_curve.index <= cut]
    result = DiffResult(compare_decisions(journal.frame("decisions"), _until(back.frame("decisions"), cut),
                                          bar_minutes, outcomes(journal.frame("orders"))),
                        compare_fills(journal.frame("fills"), _until(back.frame("fills"), cut), bar_minutes, bt.costs),
                        {"live": equity_summary(live_curve), "backtest": equity_summary(back_curve)},
                        (str(first.date()), str(last.date())), bt.out_dir)
    back.close()
    return result


def _until(frame: pd.DataFrame, cut: pd.Timestamp) -> pd.DataFrame:
    return frame[pd.to_datetime(frame["time"], utc=True) < cut] if len(frame) else frame


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
        extra = (f" (difference {r['difference']:+.2f}/sh, modelled slippage {r['modelled_slippage']:.2f}/sh)"
                 if isinstance(r.get("difference"), float) and math.isfinite(r["difference"]) else "")
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
