"""The journal survives a crash at any point: transactions, WAL, and a writer killed mid-stream."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import ROOT
from trading.records.journal import Journal

WRITER = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from datetime import datetime, timedelta
from trading.records.journal import Journal
j = Journal(sys.argv[1])
t = datetime(2024, 1, 2, 9, 30)
for k in range(100000):
    closed = [{"symbol": "A", "kind": "entry", "qty": 1, "entry_time": t, "entry_price": 10.0, "exit_time": t,
               "exit_price": 11.0, "exit_reason": "take_profit", "pnl_usd": 1.0, "return_pct": 0.1}]
    j.record_fill(t, f"o{k}", "A", "sell", 1, 11.0, "target", closed, {"A": {"n": k}})
    j.record_iteration(t, [{"step": "entry", "action": "enter", "reason": "x"}] * 3, None)
    if k == 50:
        print("ready", flush=True)
"""


def test_a_failed_transaction_leaves_nothing():
    j = Journal()
    with pytest.raises(ZeroDivisionError), j._tx():
        j.conn.execute("INSERT INTO fills (symbol) VALUES ('A')")
        1 / 0  # noqa: B018
    assert j.frame("fills").empty
    assert j.conn.execute("PRAGMA journal_mode").fetchone()[0] == "memory"
    disk = Journal(":memory:")
    assert disk.frame("orders").empty


def test_wal_mode_on_disk(tmp_path):
    assert Journal(tmp_path / "j.sqlite").conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("delay", [0.05, 0.13, 0.31])
def test_killed_writer_leaves_a_consistent_journal(tmp_path, delay):
    path = tmp_path / "j.sqlite"
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(ROOT)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    fills = conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    closed = conn.execute("SELECT COUNT(*) FROM closed_trades").fetchone()[0]
    assert fills > 50 and fills == closed, "a fill and the trade it closed are written together or not at all"
    last_state = Journal(path).open_trades()["A"]["n"]
    assert last_state == fills - 1, "the open-trade state matches the last fill"
    decisions = conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    assert decisions % 3 == 0, "an iteration's decisions are all there or none"


def test_state_and_orders_round_trip(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.record_order(datetime(2024, 1, 2), client_order_id="cid-1", symbol="A", side="buy", order_type="market",
                   order_class="bracket", qty=10, intent="enter", role="entry", request={"qty": 10})
    j.update_order("cid-1", broker_order_id="b-1", status="new")
    j.set_state("risk", {"holds": [1]})
    j.close()
    j = Journal(tmp_path / "j.sqlite")
    assert j.order_by_client_id("cid-1")["broker_order_id"] == "b-1"
    assert j.get_state("risk") == {"holds": [1]}


def test_a_live_decision_log_keeps_only_recent_lines_in_memory_and_all_in_the_journal():
    """The soak (bench/bench_soak.py) showed memory growing with every decision line of a long-running bot."""
    from datetime import datetime

    from trading.records.decision_log import DecisionLog

    j = Journal(":memory:")
    live = DecisionLog(j, keep=3)
    for i in range(5):
        live.note(datetime(2024, 3, 5, 10, i), "plan", f"line {i}")
    assert [r["reason"] for r in live.records] == ["line 2", "line 3", "line 4"]
    assert list(j.frame("decisions")["reason"]) == [f"line {i}" for i in range(5)]
    backtest = DecisionLog(None)
    for i in range(5):
        backtest.note(datetime(2024, 3, 5, 10, i), "plan", f"line {i}")
    assert len(backtest.frame()) == 5, "a backtest's report writes every line"


def test_the_closed_entry_results_sizing_the_streak_and_the_model_watch_read():
    """Kelly reads the newest R first, the losing streak the last P&L oldest first, the model watch the R of
    trades entered since a time; hedges are none of them; a trade closing later is seen without a re-read."""
    from datetime import timedelta

    t0 = datetime(2024, 3, 4, 15, tzinfo=UTC)

    def closed(k: int, r, kind="entry"):
        return {"symbol": "JPM", "kind": kind, "qty": 1, "entry_time": t0 + timedelta(days=k), "entry_price": 100.0,
                "exit_time": t0 + timedelta(days=k + 1), "exit_price": 100.0, "exit_reason": "stop",
                "pnl_usd": 10.0 * k, "return_pct": 0.0, "r_multiple": r, "mfe_r": 0.0, "mae_r": 0.0, "hedged": False}

    j = Journal()
    j.record_fill(t0, "f1", "JPM", "sell", 1, 100.0, "stop",
                  [closed(0, 1.0), closed(1, None), closed(2, 3.0, kind="hedge"), closed(3, -1.0)])
    assert j.r_multiples() == [-1.0, 1.0] and j.r_multiples(limit=1) == [-1.0]
    assert j.recent_results(2) == [10.0, 30.0] and j.recent_results(0) == []
    assert j.entry_r_since(t0 + timedelta(days=1)) == [-1.0]
    j.record_fill(t0, "f2", "JPM", "sell", 1, 100.0, "target", [closed(4, 2.0), closed(5, 9.0, kind="hedge")])
    assert j.r_multiples()[0] == 2.0 and j.recent_results(1) == [40.0] and j.entry_r_since(t0)[-1] == 2.0
