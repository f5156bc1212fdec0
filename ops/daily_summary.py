"""The daily summary sent after the close, read from the journal alone (so it can be rebuilt for any day).

Equity: the day's last sample against the previous day's last (the previous close), or against the
day's first sample when the journal has nothing earlier. Trades: the day's closed trades with their
exit reason, P&L and R. Positions: the open trades with the stop and target on record. Gates: how many
entries (and hedges) each gate blocked or shrank that day, and how often the meta-model blocked them all.
"""

import math
from datetime import date, timedelta

import pandas as pd

from trading.records.performance import blocked_by_gate, trade_stats

NY = "America/New_York"


def last_sample_day(journal) -> date | None:
    """The New York date of the newest equity sample: the trading day a summary after the close is about."""
    row = journal.conn.execute("SELECT time FROM equity ORDER BY time DESC LIMIT 1").fetchone()
    return _ny(pd.Series([row[0]])).dt.date.iloc[0] if row else None


def daily_summary(journal, day: date) -> str:
    equity = _around(journal, "equity", day)
    today = equity[equity["day"] == day]
    lines = [f"Daily summary {day:%a %Y-%m-%d}"]
    if today.empty:
        lines.append("no equity sample that day (the bot did not run in the session)")
    else:
        last = float(today["portfolio_value"].iloc[-1])
        before = equity[equity["day"] < day]
        ref, what = ((float(before["portfolio_value"].iloc[-1]), "the previous close") if len(before)
                     else (float(today["portfolio_value"].iloc[0]), "the day's first sample"))
        pnl = last - ref
        lines.append(f"Equity ${last:,.2f}, day P&L {_usd(pnl)} ({pnl / ref:+.2%}) vs {what} ${ref:,.2f}; cash "
                     f"${float(today['cash'].iloc[-1]):,.2f}; risk {today['risk_mode'].iloc[-1] or 'ACTIVE'}")
    lines += _trades(journal, day) + _positions(journal) + _gates(journal, day)
    return "\n".join(lines)


def _trades(journal, day: date) -> list[str]:
    closed = _around(journal, "closed_trades", day, column="exit_time")
    closed = closed[closed["day"] == day]
    if closed.empty:
        return ["Trades closed: none"]
    stats = trade_stats(closed)
    wins = int((closed["pnl_usd"] > 0).sum())
    out = [f"Trades closed: {stats['trades']} ({wins} won), P&L {_usd(stats['pnl_usd'])}"]
    for t in closed.itertuples():
        r = f", {t.r_multiple:+.2f}R" if t.r_multiple is not None and math.isfinite(t.r_multiple) else ""
        out.append(f"  {t.symbol} {t.exit_reason}: {t.qty:g} sh {t.entry_price:,.2f} -> {t.exit_price:,.2f}, "
                   f"{_usd(t.pnl_usd)}{r}")
    return out


def _positions(journal) -> list[str]:
    trades = journal.open_trades()
    if not trades:
        return ["Open positions: none"]
    out = [f"Open positions: {len(trades)}"]
    for sym, t in sorted(trades.items()):
        prot = (f"stop {t['stop']:,.2f}, target {t['target']:,.2f}" if t.get("stop") and t.get("target")
                else f"stop {t['stop']:,.2f}" if t.get("stop") else "NO STOP on record")
        out.append(f"  {sym} {t['qty']:g} sh @ {t['price']:,.2f} ({t['kind']}): {prot}")
    return out


def _gates(journal, day: date) -> list[str]:
    decisions = _around(journal, "decisions", day)
    decisions = decisions[decisions["day"] == day]
    counts = {g: n for g, n in blocked_by_gate(decisions).items() if n}
    model = int(((decisions["step"] == "entry") & (decisions["action"] == "blocked")).sum()) if len(decisions) else 0
    if model:
        counts["model (whole iteration)"] = model
    if not counts:
        return ["Entries blocked: none"]
    return ["Entries blocked or shrunk, per gate: " + ", ".join(f"{g} {n}" for g, n in counts.items())]


def _around(journal, table: str, day: date, column: str = "time") -> pd.DataFrame:
    """The table's rows from the day before to the day after `day` (ISO text compares as time, give or take
    the offset, hence the margin), with each row's New York date in `day`; the equity table also gets its
    last row before that window, the previous close."""
    lo, hi = (day - timedelta(days=1)).isoformat(), (day + timedelta(days=2)).isoformat()
    frame = pd.read_sql_query(f"SELECT * FROM {table} WHERE {column} >= ? AND {column} < ? ORDER BY {column}",
                              journal.conn, params=(lo, hi))
    if table == "equity":
        prev = pd.read_sql_query("SELECT * FROM equity WHERE time < ? ORDER BY time DESC LIMIT 1", journal.conn,
                                 params=(lo,))
        frame = pd.concat([prev, frame]) if len(prev) else frame
    frame["day"] = _ny(frame[column]).dt.date if len(frame) else pd.Series(dtype=object)
    return frame.reset_index(drop=True)


def _ny(times: pd.Series) -> pd.Series:
    return pd.to_datetime(times, utc=True, format="ISO8601").dt.tz_convert(NY)


def _usd(x: float) -> str:
    return f"{'-' if x < 0 else '+'}${abs(x):,.2f}"

