"""The trade journal: every decision, order, fill, open trade and closed trade, in SQLite.

WAL mode, and every write is one transaction (`with self.conn:`), so a crash at any point leaves the
file consistent: a decision batch, an order with its response, or a trade's close is either all
there or not there. The journal is the source for performance reports (trading/records/performance.py), for
the risk controller's state across restarts, and (live) for matching broker orders to decisions by
client order id. `:memory:` gives a throwaway journal for tests.
"""

import bisect
import json
import math
import sqlite3
import threading
from collections.abc import Iterable
from datetime import datetime
from itertools import islice
from pathlib import Path

import pandas as pd

# the meta-model's expected R in an entry decision's reason (trading/steps/entries.py, _judge: "expected R +0.23 ...")
# a fill's time (the broker's clock) may read a little before the decision that sent its order (ours)
_CLOCK_SKEW = pd.Timedelta(seconds=60)
SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY, time TEXT, step TEXT, symbol TEXT, action TEXT, level TEXT, reason TEXT,
    confidence REAL, source TEXT, gate TEXT, verdict TEXT, order_ids TEXT, expected_r REAL);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY, time TEXT, client_order_id TEXT UNIQUE, broker_order_id TEXT, symbol TEXT,
    side TEXT, order_type TEXT, order_class TEXT, qty REAL, limit_price REAL, stop_price REAL, intent TEXT,
    role TEXT, request TEXT, response TEXT, status TEXT);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY, time TEXT, broker_order_id TEXT, symbol TEXT, side TEXT, qty REAL, price REAL,
    role TEXT);
CREATE TABLE IF NOT EXISTS open_trades (
    symbol TEXT PRIMARY KEY, state TEXT);
CREATE TABLE IF NOT EXISTS closed_trades (
    id INTEGER PRIMARY KEY, symbol TEXT, kind TEXT, qty REAL, entry_time TEXT, entry_price REAL,
    exit_time TEXT, exit_price REAL, exit_reason TEXT, pnl_usd REAL, return_pct REAL, r_multiple REAL,
    mfe_r REAL, mae_r REAL, hedged INTEGER);
CREATE TABLE IF NOT EXISTS equity (
    time TEXT PRIMARY KEY, portfolio_value REAL, cash REAL, long_value REAL, inverse_value REAL,
    positions INTEGER, risk_mode TEXT, benchmark REAL);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY, value TEXT, updated TEXT);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, time TEXT, event TEXT, level TEXT, key TEXT, text TEXT, status TEXT);
CREATE TABLE IF NOT EXISTS controls (
    id INTEGER PRIMARY KEY, time TEXT, source TEXT, action TEXT, detail TEXT, result TEXT);
"""


def _when(x) -> pd.Timestamp | None:
    """A stored time as an aware Timestamp (naive ones are UTC), None when absent."""
    if x is None:
        return None
    t = pd.Timestamp(x)
    return t.tz_localize("UTC") if t.tzinfo is None else t


def _t(x) -> str | None:
    if x is None:
        return None
    return x.isoformat() if hasattr(x, "isoformat") else str(x)


class Journal:
    def __init__(self, path: str | Path = ":memory:", in_memory_until_saved: bool = False):
        """`in_memory_until_saved` (backtests): work in memory and write the file once, at save(); a live
        journal is written through, every transaction on disk."""
        self.path = str(path)
        self._save_to = self.path if in_memory_until_saved and self.path != ":memory:" else None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        where = ":memory:" if self._save_to else self.path
        self.conn = sqlite3.connect(where, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.executescript(SCHEMA)
        self._migrate()
        self._lock = threading.RLock()  # live fills arrive on Lumibot's callback thread
        self._depth = 0  # open transactions (nested ones join the outermost)
        # closed entry trades as (P&L, R, entry time), oldest first: read once, then kept current
        self._entries: list[tuple[float, float | None, pd.Timestamp | None]] | None = None
        # entry decisions' expected R per symbol and the (expected, realised) pairs linked so far (calibration)
        self._predicted: dict = {"decision_id": 0, "trade_id": 0, "entries": {}, "pairs": []}

    def _migrate(self) -> None:
        """Journals written before a column existed gain it (a restart must read its own old journal)."""
        cols = {row[1] for row in self.conn.execute("PRAGMA table_info(equity)")}
        if "benchmark" not in cols:
            self.conn.execute("ALTER TABLE equity ADD COLUMN benchmark REAL")
        if "expected_r" not in {row[1] for row in self.conn.execute("PRAGMA table_info(decisions)")}:
            self.conn.execute("ALTER TABLE decisions ADD COLUMN expected_r REAL")

    def close(self) -> None:
        self.conn.close()

    def save(self) -> Path | None:
        """Write an in-memory journal to its file (one consistent copy); a no-op for a written-through one."""
        if not self._save_to:
            return None
        target = sqlite3.connect(self._save_to)
        try:
            with self._lock:
                self.conn.backup(target)
            target.execute("PRAGMA journal_mode=WAL")
        finally:
            target.close()
        return Path(self._save_to)

    def batch(self):
        """A transaction (BEGIN ... COMMIT, ROLLBACK on error). Nested in another one, it joins it: wrap
        several writes (an iteration's bookkeeping) in one batch and they land all together or not at all."""
        return _Transaction(self)

    _tx = batch

    # ------------------------------------------------------------------ writes
    def record_iteration(self, now: datetime, decisions: Iterable[dict], sample: dict | None) -> None:
        with self._tx():
            self.conn.executemany(
                "INSERT INTO decisions (time, step, symbol, action, level, reason, confidence, source, gate, verdict,"
                " order_ids, expected_r) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [(_t(now), d.get("step"), d.get("symbol"), d.get("action"), d.get("level"), d.get("reason"),
                  d.get("confidence"), d.get("source"), d.get("gate"), d.get("verdict"), d.get("order_ids"),
                  d.get("expected_r")) for d in decisions])
            if sample is not None:
                self.conn.execute(
                    "INSERT OR REPLACE INTO equity (time, portfolio_value, cash, long_value, inverse_value, positions, "
                    "risk_mode, benchmark) VALUES (?,?,?,?,?,?,?,?)",
                    (_t(sample["time"]), sample["portfolio_value"], sample["cash"], sample["long_value"],
                     sample["inverse_value"], sample["positions"], sample.get("risk_mode"), sample.get("benchmark")))

    def record_order(self, now: datetime, *, client_order_id: str, symbol: str, side: str, order_type: str,
                     order_class: str, qty: float, intent: str, role: str, limit_price: float | None = None,
                     stop_price: float | None = None, request: dict | None = None, broker_order_id: str | None = None,
                     response: object = None, status: str = "submitted") -> None:
        with self._tx():
            self.conn.execute(
                "INSERT INTO orders (time, client_order_id, broker_order_id, symbol, side, order_type, order_class, "
                "qty, limit_price, stop_price, intent, role, request, response, status) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(client_order_id) DO UPDATE SET "
                "broker_order_id=excluded.broker_order_id, response=excluded.response, status=excluded.status",
                (_t(now), client_order_id, broker_order_id, symbol, side, order_type, order_class, qty, limit_price,
                 stop_price, intent, role, json.dumps(request, default=str) if request is not None else None,
                 json.dumps(response, default=str) if response is not None else None, status))

    def update_order(self, client_order_id: str, **fields) -> None:
        if not fields:
            return
        cols = ", ".join(f"{k}=?" for k in fields)
        values = [json.dumps(v, default=str) if k in ("response", "request") and v is not None else v
                  for k, v in fields.items()]
        with self._tx():
            self.conn.execute(f"UPDATE orders SET {cols} WHERE client_order_id=?", (*values, client_order_id))

    def record_fill(self, now: datetime, broker_order_id: str, symbol: str, side: str, qty: float, price: float,
                    role: str, closed: Iterable[dict] = (), open_trades: dict[str, dict] | None = None) -> None:
        """A fill, the trades it closed and the open-trade states it changed, in one transaction."""
        with self._tx():
            self.conn.execute("INSERT INTO fills (time, broker_order_id, symbol, side, qty, price, role) "
                              "VALUES (?,?,?,?,?,?,?)", (_t(now), broker_order_id, symbol, side, qty, price, role))
            self._write_closed(closed)
            self._write_open(open_trades or {})

    def save_open_trades(self, open_trades: dict[str, dict | None]) -> None:
        with self._tx():
            self._write_open(open_trades)

    def _write_closed(self, closed: Iterable[dict]) -> None:
        closed = list(closed)
        if closed and self._entries is not None:  # keep the cache current rather than re-reading the table
            self._entries.extend((c["pnl_usd"], c.get("r_multiple"), _when(c["entry_time"])) for c in closed
                                 if c["kind"] != "hedge")
        self.conn.executemany(
            "INSERT INTO closed_trades (symbol, kind, qty, entry_time, entry_price, exit_time, exit_price, "
            "exit_reason, pnl_usd, return_pct, r_multiple, mfe_r, mae_r, hedged) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(c["symbol"], c["kind"], c["qty"], _t(c["entry_time"]), c["entry_price"], _t(c["exit_time"]),
              c["exit_price"], c["exit_reason"], c["pnl_usd"], c["return_pct"], c.get("r_multiple"),
              c.get("mfe_r"), c.get("mae_r"), int(bool(c.get("hedged")))) for c in closed])

    def _write_open(self, open_trades: dict[str, dict | None]) -> None:
        gone = [(sym,) for sym, state in open_trades.items() if state is None]
        if gone:
            self.conn.executemany("DELETE FROM open_trades WHERE symbol=?", gone)
        self.conn.executemany("INSERT OR REPLACE INTO open_trades VALUES (?,?)",
                              [(sym, json.dumps(state, default=_t)) for sym, state in open_trades.items()
                               if state is not None])

    def set_state(self, key: str, value: dict, now: datetime | None = None) -> None:
        with self._tx():
            self.conn.execute("INSERT OR REPLACE INTO state VALUES (?,?,?)",
                              (key, json.dumps(value, default=_t), _t(now or datetime.now())))

    def record_alert(self, now: datetime, event: str, level: str, key: str, text: str, status: str) -> int:
        """An alert queued, sent, suppressed or dropped (status); returns its row id for later status updates."""
        with self._tx():
            cur = self.conn.execute("INSERT INTO alerts (time, event, level, key, text, status) VALUES (?,?,?,?,?,?)",
                                    (_t(now), event, level, key, text, status))
            return int(cur.lastrowid)

    def update_alert(self, alert_id: int, status: str) -> None:
        with self._tx():
            self.conn.execute("UPDATE alerts SET status=? WHERE id=?", (status, alert_id))

    def record_control(self, now: datetime, source: str, action: str, detail: str, result: str) -> None:
        """A control call (API or CLI): who asked what, and what came of it."""
        with self._tx():
            self.conn.execute("INSERT INTO controls (time, source, action, detail, result) VALUES (?,?,?,?,?)",
                              (_t(now), source, action, detail, result))

    # ------------------------------------------------------------------ reads
    def get_state(self, key: str) -> dict | None:
        row = self.conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def open_trades(self) -> dict[str, dict]:
        return {sym: json.loads(state) for sym, state in self.conn.execute("SELECT symbol, state FROM open_trades")}

    def order_by_client_id(self, client_order_id: str) -> dict | None:
        cur = self.conn.execute("SELECT * FROM orders WHERE client_order_id=?", (client_order_id,))
        row = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], row, strict=True)) if row else None

    def frame(self, table: str) -> pd.DataFrame:
        if table not in ("decisions", "orders", "fills", "closed_trades", "equity", "alerts", "controls"):
            raise ValueError(table)
        return pd.read_sql_query(f"SELECT * FROM {table} ORDER BY rowid", self.conn)

    def _entry_results(self) -> list[tuple[float, float | None, pd.Timestamp | None]]:
        """(P&L, R, entry time) of the closed entry trades (hedges excluded), oldest first: read from the file once,
        then kept current as trades close (sizing, the streak check and the model watch ask every iteration)."""
        if self._entries is None:
            rows = self.conn.execute("SELECT pnl_usd, r_multiple, entry_time FROM closed_trades WHERE kind != "
                                     "'hedge' ORDER BY id").fetchall()
            self._entries = [(p, r, _when(t)) for p, r, t in rows]
        return self._entries

    def entry_r_since(self, since: datetime) -> list[float]:
        """R multiples of the closed entry trades entered at or after `since` (aware), oldest first."""
        since = pd.Timestamp(since)
        return [r for _, r, when in self._entry_results() if r is not None and when is not None and when >= since]

    def entry_predictions_since(self, since: datetime) -> list[tuple[float, float]]:
        """(expected R at entry, realised R) of the closed entry trades entered at or after `since` (aware), in the
        order they closed (as entry_r_since): each trade linked to its entry decision - the latest `enter` decision
        in its symbol at or before its entry time (give or take _CLOCK_SKEW) - whose expected_r the meta-model set.
        Trades without one (entered by the rule-based score, adopted, or before decisions were kept) are left out,
        as are hedges and trades without an R.

        Incremental (the model watch asks every iteration): only decisions and trades written since the last call
        are read (by rowid), and each trade is linked once, when first read. Decisions are read before trades, and
        an entry's decision is always written before its trade closes."""
        with self._lock:
            p = self._predicted
            top = self.conn.execute("SELECT max(id) FROM decisions").fetchone()[0] or 0
            rows = self.conn.execute("SELECT time, symbol, expected_r FROM decisions WHERE id > ? AND id <= ? AND "
                                     "action = 'enter' AND expected_r IS NOT NULL ORDER BY id",
                                     (p["decision_id"], top)).fetchall()
            p["decision_id"] = top
            for t, sym, e in rows:
                when = _when(t)
                if when is None or not math.isfinite(e):
                    continue
                times, values = p["entries"].setdefault(sym, ([], []))
                k = bisect.bisect_right(times, when)
                times.insert(k, when)
                values.insert(k, e)
            top = self.conn.execute("SELECT max(id) FROM closed_trades").fetchone()[0] or 0
            rows = self.conn.execute("SELECT symbol, entry_time, r_multiple FROM closed_trades WHERE id > ? AND id <= ?"
                                     " AND kind = 'entry' ORDER BY id", (p["trade_id"], top)).fetchall()
            p["trade_id"] = top
            for sym, t, r in rows:
                when = _when(t)
                if r is None or not math.isfinite(r) or when is None or sym not in p["entries"]:
                    continue
                times, values = p["entries"][sym]
                k = bisect.bisect_right(times, when + _CLOCK_SKEW)
                if k:
                    p["pairs"].append((when, values[k - 1], float(r)))
            since = pd.Timestamp(since)
            return [(e, r) for when, e, r in p["pairs"] if when >= since]

    def last_exits(self) -> dict[str, tuple[str, pd.Timestamp]]:
        """{symbol: (exit reason, exit time)} of each symbol's last closed entry trade (REENTRY_DAYS across a
        restart)."""
        rows = self.conn.execute("SELECT symbol, exit_reason, exit_time FROM closed_trades WHERE kind = 'entry' "
                                 "ORDER BY id").fetchall()
        return {sym: (reason, when) for sym, reason, t in rows if (when := _when(t)) is not None}

    def r_multiples(self, limit: int = 200) -> list[float]:
        """R multiples of the most recent closed entry trades (hedges excluded), for the Kelly estimate."""
        return list(islice((r for _, r, _ in reversed(self._entry_results()) if r is not None), limit))

    def recent_results(self, n: int) -> list[float]:
        """P&L of the last `n` closed trades, oldest first (entries only; hedges do not make a streak)."""
        return [p for p, _, _ in self._entry_results()[-n:]] if n > 0 else []


class _Transaction:
    """BEGIN ... COMMIT, ROLLBACK on error; nested ones join the outermost (one commit for a batch)."""

    def __init__(self, journal: "Journal"):
        self.journal = journal

    def __enter__(self):
        j = self.journal
        j._lock.acquire()
        if j._depth == 0:
            j.conn.execute("BEGIN")
        j._depth += 1
        return j.conn

    def __exit__(self, exc_type, exc, tb):
        j = self.journal
        try:
            j._depth -= 1
            if j._depth == 0:
                j.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            j._lock.release()
        return False
