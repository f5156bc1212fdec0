"""What the API and the dashboard show, read from the journal: plain functions, JSON-safe results.

The bot writes its status (trading/records/status.py), decisions, orders, fills, trades, equity, alerts and
control calls into the journal; these functions only read. They work the same over a live bot's journal and a
backtest's.
"""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd

from trading.records import performance
from trading.records.status import STATUS_KEY, clean
from trading.risk.controller import STATE_KEY as RISK_KEY
from trading.risk.kill_switch import COMMAND_KEY
from trading.settings_runtime import OVERRIDES_KEY

DECISION_COLUMNS = ("id", "time", "step", "symbol", "action", "level", "reason", "confidence", "gate", "verdict",
                    "order_ids")


def _records(df: pd.DataFrame) -> list[dict]:
    return clean(df.astype(object).where(df.notna(), None).to_dict("records"))


def status(journal, now: datetime | None = None) -> dict:
    """The bot's last status plus what the journal knows besides: risk holds, the pending command, run-time
    setting changes, the day's P&L, and how old the status is (a bot that stopped writing is stale)."""
    st = journal.get_state(STATUS_KEY) or {}
    risk = journal.get_state(RISK_KEY) or {}
    holds = risk.get("holds", [])
    out = {
        "has_status": bool(st), "time": st.get("time"), "next_iteration": st.get("next_iteration"),
        "mode": st.get("mode", "unknown"), "strategy": st.get("strategy"), "account": st.get("account", ""),
        "iterations": st.get("iterations"), "session": st.get("session"), "started": st.get("started"),
        "risk": st.get("risk") or {"mode": max((h["mode"] for h in holds), default="ACTIVE"), "why": ""},
        "holds": holds, "broker": st.get("broker", {"reachable": None}), "model": st.get("model", {}),
        "account_values": st.get("account_values", {}), "hedge": st.get("hedge", {}), "streams": st.get("streams"),
        "command": journal.get_state(COMMAND_KEY), "settings_changed": (journal.get_state(OVERRIDES_KEY) or {}).get(
            "values", {}),
        "day": day_pnl(journal), "positions": len(st.get("positions", [])),
        "unprotected": (st.get("totals") or {}).get("unprotected", []),
    }
    if st.get("time") and now is not None:
        out["status_age_s"] = (pd.Timestamp(now) - pd.Timestamp(st["time"])).total_seconds()
    model_created = (st.get("model") or {}).get("created")
    if model_created and st.get("time"):
        out["model"] = {**out["model"], "age_days": round(
            (pd.Timestamp(st["time"]) - pd.Timestamp(model_created)).total_seconds() / 86400, 1)}
    return clean(out)


def day_pnl(journal) -> dict:
    """Equity now against the last reading of the previous day (the first of today when there is none)."""
    row = journal.conn.execute("SELECT time, portfolio_value FROM equity ORDER BY time DESC LIMIT 1").fetchone()
    if row is None:
        return {"pnl_usd": None, "pnl_pct": None}
    day = str(row[0])[:10]
    prev = journal.conn.execute("SELECT portfolio_value FROM equity WHERE substr(time, 1, 10) < ? ORDER BY time DESC "
                                "LIMIT 1", (day,)).fetchone() or journal.conn.execute(
        "SELECT portfolio_value FROM equity WHERE substr(time, 1, 10) = ? ORDER BY time LIMIT 1", (day,)).fetchone()
    base = prev[0]
    return clean({"day": day, "pnl_usd": row[1] - base, "pnl_pct": row[1] / base - 1 if base else None})


def positions(journal) -> dict:
    st = journal.get_state(STATUS_KEY) or {}
    return {"time": st.get("time"), "positions": st.get("positions", []), "totals": st.get("totals", {})}


def orders(journal) -> dict:
    st = journal.get_state(STATUS_KEY) or {}
    return {"time": st.get("time"), "orders": st.get("orders", [])}


def decisions(journal, step: str | None = None, symbol: str | None = None, since: datetime | None = None,
              action: str | None = None, limit: int = 100) -> list[dict]:
    """Most recent first. `since` compares as text on ISO times, which sort as times within one time zone."""
    where, args = [], []
    for col, value in (("step", step), ("symbol", symbol and symbol.upper()), ("action", action)):
        if value:
            where.append(f"{col} = ?")
            args.append(value)
    if since is not None:
        where.append("time >= ?")
        args.append(since.isoformat())
    sql = (f"SELECT {', '.join(DECISION_COLUMNS)} FROM decisions {'WHERE ' + ' AND '.join(where) if where else ''} "
           "ORDER BY id DESC LIMIT ?")
    return _records(pd.read_sql_query(sql, journal.conn, params=[*args, limit]))


def trades(journal, limit: int = 200) -> list[dict]:
    return _records(pd.read_sql_query("SELECT * FROM closed_trades ORDER BY id DESC LIMIT ?", journal.conn,
                                      params=[limit]))


def performance_tables(journal) -> dict:
    return clean(performance.tables(journal))


def equity(journal, since: datetime | None = None, points: int = 2000) -> dict:
    """The equity curve with its drawdown and SPY scaled to the first equity reading, thinned to `points`
    (a year of hourly samples is ~1,800; a long live run is thinned evenly, the last point always kept)."""
    df = journal.frame("equity")
    if since is not None:
        start = pd.Timestamp(since)
        start = start.tz_localize("UTC") if start.tzinfo is None else start
        df = df[pd.to_datetime(df["time"], utc=True) >= start]
    if df.empty:
        return {"time": [], "equity": [], "drawdown": [], "benchmark": [], "benchmark_symbol": "SPY"}
    if len(df) > points:
        step = math.ceil(len(df) / points)
        df = pd.concat([df.iloc[::step], df.iloc[[-1]]]).drop_duplicates("time")
    eq = df["portfolio_value"].astype(float)
    dd = eq / eq.cummax() - 1
    bench = df["benchmark"].astype(float) if "benchmark" in df else pd.Series(math.nan, index=df.index)
    first = bench.dropna()
    scaled = bench / first.iloc[0] * eq.iloc[0] if len(first) else bench
    return clean({"time": df["time"].tolist(), "equity": eq.tolist(), "drawdown": dd.tolist(),
                  "benchmark": scaled.tolist(), "benchmark_symbol": "SPY",
                  "risk_mode": df["risk_mode"].tolist()})


def alerts(journal, limit: int = 50) -> list[dict]:
    return _records(pd.read_sql_query("SELECT * FROM alerts ORDER BY id DESC LIMIT ?", journal.conn, params=[limit]))


def controls(journal, limit: int = 50) -> list[dict]:
    return _records(pd.read_sql_query("SELECT * FROM controls ORDER BY id DESC LIMIT ?", journal.conn,
                                      params=[limit]))


def change_marker(journal) -> tuple:
    """Changes whenever anything the dashboard shows was written (by this connection or the bot's)."""
    version = journal.conn.execute("PRAGMA data_version").fetchone()[0]
    last = journal.conn.execute("SELECT (SELECT max(id) FROM decisions), (SELECT max(updated) FROM state), "
                                "(SELECT max(id) FROM alerts), (SELECT max(id) FROM controls)").fetchone()
    return (version, *last)
