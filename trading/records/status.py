"""The bot's status record: what the running bot looks like right now, written to the journal's state table.

Written by the bot after each iteration (and by a backtest at its end), read by the status API and the
dashboard. Everything a reader needs is in the journal, so the API can run in the bot's process or in another
one over the same file (`python live_trader.py serve --journal PATH`), and a backtest's journal browses like a
live one. Values are plain JSON (NaN -> None).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from trading.records.positions_view import position_rows
from trading.settings import Settings
from trading.snapshot import OpenOrder, Snapshot
from trading.steps.hedging import measure_breadth

STATUS_KEY = "status"


def clean(x):
    """JSON-safe: NaN and infinities become None, recursively."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    return x


def order_rows(orders: Iterable[OpenOrder]) -> list[dict]:
    """Open orders, each bracket or OCO parent with its legs nested under it (a leg whose parent is not open
    itself, as after a bracket's entry filled, is listed on its own with its parent's id)."""
    orders = list(orders)
    ids = {o.order_id for o in orders}

    def row(o: OpenOrder) -> dict:
        role = ("stop" if o.is_protective_stop else "take_profit" if o.is_take_profit
                else "entry" if o.is_entry else "exit" if o.side == "sell" else "buy")
        return {"id": o.order_id, "client_order_id": o.client_order_id, "symbol": o.symbol, "side": o.side,
                "type": o.order_type, "class": o.order_class, "qty": o.qty, "limit": o.limit_price,
                "stop": o.stop_price, "role": role, "parent_id": o.parent_id, "legs": []}

    rows = {o.order_id: row(o) for o in orders}
    top = []
    for o in orders:
        if o.parent_id and o.parent_id in ids:
            rows[o.parent_id]["legs"].append(rows[o.order_id])
        else:
            top.append(rows[o.order_id])
    return sorted(top, key=lambda r: (r["symbol"], r["role"]))


def hedge_view(snap: Snapshot, s: Settings) -> dict:
    """Bellwether breadth against the thresholds, and the inverse ETF held (for the dashboard's gauge)."""
    b = measure_breadth(snap.rsi_values, s.bellwethers, s.rsi_overbought)
    held = [x for x in s.inverse_symbols if x in snap.holdings]
    return {"breadth": b.ratio, "overbought": sorted(b.overbought), "measured": len(b.measured),
            "missing": list(b.missing), "enter_at": s.bearish_threshold, "exit_below": s.bearish_exit_threshold,
            "leveraged_at": s.hedge_leveraged_breadth, "held": held, "describe": b.describe()}


def build_status(snap: Snapshot, s: Settings, *, mode: str, strategy: str, risk_mode: str, risk_why: str,
                 iterations: int, next_at: datetime | None, model: str, model_created: datetime | None,
                 broker_reachable: bool = True, outage_iterations: int = 0, session: str | None = "regular",
                 started: datetime | None = None, account: str = "", streams: dict | None = None,
                 model_watch: dict | None = None) -> dict:
    rows, totals = position_rows(snap, s)
    for r in rows:
        r["short"] = (r.get("qty") or 0) < 0
    return clean({
        "time": snap.now.isoformat(), "next_iteration": next_at.isoformat() if next_at else None,
        "mode": mode, "strategy": strategy, "account": account, "iterations": iterations,
        "started": started.isoformat() if started else None, "session": session,
        "risk": {"mode": risk_mode, "why": risk_why},
        "broker": {"reachable": broker_reachable, "outage_iterations": outage_iterations},
        "model": {"describe": model, "created": model_created.isoformat() if model_created else None,
                  "watch": model_watch},
        "account_values": {"equity": snap.portfolio_value, "cash": snap.cash},
        "positions": rows, "totals": totals, "orders": order_rows(snap.open_orders), "hedge": hedge_view(snap, s),
        "streams": streams,
    })


def write_status(journal, status: dict, now: datetime) -> None:
    journal.set_state(STATUS_KEY, status, now)


def mark_outage(journal, now: datetime, outage_iterations: int) -> None:
    """The broker did not answer this iteration: the last status stays, flagged unreachable."""
    status = journal.get_state(STATUS_KEY)
    if status is None:
        return
    status["broker"] = {"reachable": False, "outage_iterations": outage_iterations, "since_checked": now.isoformat()}
    journal.set_state(STATUS_KEY, status, now)


def read_status(journal_path) -> dict | None:
    """The status a bot wrote, read-only (a tool must not create or change the journal it only looks at)."""
    import json
    import sqlite3
    from pathlib import Path

    if not Path(journal_path).is_file():
        return None
    con = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM state WHERE key=?", (STATUS_KEY,)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return json.loads(row[0]) if row else None


def model_watch_line(status: dict | None) -> str | None:
    """One line on the installed model's drift, edge and (once enough trades closed) calibration
    (models/model_watch.py), None without a model's watch."""
    watch = ((status or {}).get("model") or {}).get("watch")
    if not watch:
        return None
    drift, edge, cal = watch.get("drift"), watch.get("edge"), watch.get("calibration")
    parts = [drift["describe"] if drift else "inputs: too few candidates scored yet to judge drift",
             edge["describe"] if edge else "edge: too few trades since training to judge it"]
    if cal:
        parts.append(cal["describe"])
    return f"model watch (MODEL_DEGRADED_ACTION={watch.get('action')}): " + "; ".join(parts)


def streams_line(status: dict | None) -> str:
    """One line on the bot's streams, for check_positions_now.py."""
    if status is None:
        return "bot: no status in the journal (the bot has not run an iteration with it)"
    head = f"bot: last iteration {str(status.get('time'))[:19]}, risk {(status.get('risk') or {}).get('mode')}"
    streams = status.get("streams")
    if not streams:
        return f"{head}; streams off"
    parts = []
    for key, name in (("trade_updates", "trade updates"), ("prices", "prices")):
        s = streams.get(key) or {}
        state = "connected" if s.get("connected") else "NOT connected" if s.get("started") else "not started"
        symbols = f" ({', '.join(s['symbols'])})" if s.get("symbols") else ""
        parts.append(f"{name} {state}{symbols}, last message {str(s.get('last_message') or 'never')[:19]}")
    return f"{head}; streams: " + "; ".join(parts)
