"""The command-line tools a user runs offline: test_iteration, check_positions_now, halt/resume/report."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from trading.orders import LimitOrder, MarketOrder, Refusal, build_market
from trading.records.journal import Journal
from trading.risk.controller import COMMAND_KEY


def run(script, *args, cwd, env=None, timeout=300):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "IS_BACKTESTING"))}
    base.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=base, capture_output=True,
                          text=True, timeout=timeout)


def test_offline_dry_iteration_prints_every_section_and_sends_nothing(tmp_path):
    r = run("test_iteration.py", "--offline", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    for section in ("POSITIONS CHECK", "PORTFOLIO VALUE", "MARKET SENTIMENT AND HEDGE", "POSITION SIZES",
                    "NEW OPPORTUNITIES", "SUMMARY", "ITERATION COMPLETE"):
        assert section in out
    assert "nothing is sent anywhere" in out and "built-in simulated market" in out
    assert "10 positions: 6 protected server-side, 4 need attention" in out
    assert "near-stop" in out and "trim:" in out and "hedge:" in out
    assert "cash $1,450.00" in out
    assert not any(tmp_path.iterdir()), "a dry iteration writes no file"


def test_check_positions_offline_shows_the_last_backtest_as_simulated(tmp_path):
    reports = tmp_path / "reports"
    env = {"REPORTS_DIR": str(reports)}
    r = run("check_positions_now.py", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "run a backtest first" in r.stderr
    b = run("live_trader.py", "--backtest", "--start", "2024-01-02", "--end", "2024-01-31", "--no-progress",
            cwd=tmp_path, env=env)
    assert b.returncode == 0, b.stderr[-2000:]
    r = run("check_positions_now.py", cwd=tmp_path, env=env)
    assert r.returncode in (0, 1)
    assert r.stdout.startswith("SIMULATED") and "Not a real account" in r.stdout and "equity $" in r.stdout
    j = run("check_positions_now.py", "--json", cwd=tmp_path, env=env)
    data = json.loads(j.stdout)
    assert data["simulated"] is True and data["totals"]["positions"] == len(data["positions"])
    assert (j.returncode == 1) == bool(data["totals"]["unprotected"] or data["totals"]["near_stop"])
    h = run("check_positions_now.py", "--history", cwd=tmp_path, env=env)
    assert h.returncode == 0 and "exit reason" in h.stdout


def test_check_positions_exit_code_flags_unprotected_positions(tmp_path):
    folder = tmp_path / "reports" / "run1"
    folder.mkdir(parents=True)
    row = {"symbol": "TSLA", "qty": 10, "entry": 100.0, "last": 96.0, "pnl_pct": -0.04, "stop": None, "target": None,
           "stop_dist_pct": None, "target_dist_pct": None, "share_pct": 0.01, "hedge": False, "protected": False,
           "near_stop": True, "oversized": False}
    totals = {"equity": 100_000.0, "cash": 99_040.0, "long_exposure": 960.0, "long_exposure_pct": 0.0096,
              "inverse_allocation_pct": 0.0, "positions": 1, "unprotected": ["TSLA"], "near_stop": ["TSLA"],
              "oversized": [], "time": "2024-01-31"}
    (folder / "final_state.json").write_text(json.dumps({"source": "test", "simulated": True, "totals": totals,
                                                         "positions": [row]}))
    r = run("check_positions_now.py", cwd=tmp_path, env={"REPORTS_DIR": str(tmp_path / "reports")})
    assert r.returncode == 1 and "UNPROTECTED" in r.stdout and "NEAR" in r.stdout


@pytest.mark.parametrize("command", ["halt", "flatten", "resume"])
def test_control_commands_are_written_for_the_running_bot(tmp_path, command):
    journal = tmp_path / "j.sqlite"
    r = run("live_trader.py", command, "--journal", str(journal), cwd=tmp_path)
    assert r.returncode == 2 and "no journal at" in r.stderr and not journal.exists()  # a typo starts nothing
    Journal(journal).close()  # the running bot's journal
    off = {"risk": {"mode": "ACTIVE", "why": "risk controller off (RISK_ENABLED=false)"}}  # as such a bot writes it
    Journal(journal).set_state("status", off)
    r = run("live_trader.py", command, "--journal", str(journal), cwd=tmp_path)
    assert r.returncode == 2 and "RISK_ENABLED=false: the bot ignores" in r.stderr  # it would do nothing: said
    assert Journal(journal).get_state(COMMAND_KEY) is None
    Journal(journal).set_state("status", {"risk": {"mode": "ACTIVE", "why": "ACTIVE"}})
    (tmp_path / ".env").write_text("STOP_LOSS_PCT=oops\n")  # a broken settings file does not block a halt
    r = run("live_trader.py", command, "--journal", str(journal), cwd=tmp_path)
    assert r.returncode == 0 and command in r.stdout
    assert Journal(journal).get_state(COMMAND_KEY)["command"] == command
    (row,) = Journal(journal).frame("controls").to_dict("records")
    assert (row["source"], row["action"]) == ("cli", command) and row["result"].startswith("ok")


def test_report_without_a_journal_says_where_to_look(tmp_path):
    r = run("live_trader.py", "report", "--journal", str(tmp_path / "none.sqlite"), cwd=tmp_path)
    assert r.returncode == 2 and "no journal" in r.stderr and "Traceback" not in r.stderr


def test_outside_the_session_exits_are_day_limit_orders_flagged_extended():
    o = build_market("AAPL", 10.5, "sell", "c", session="extended", price=150.0)
    assert isinstance(o, LimitOrder) and o.extended_hours and o.time_in_force == "day"
    assert o.qty == 10 and str(o.limit_price) == "149.25"
    assert isinstance(build_market("AAPL", 10, "sell", "c", session="extended", price=None), Refusal)
    assert isinstance(build_market("AAPL", 0.5, "sell", "c", session="extended", price=10.0), Refusal)
    assert isinstance(build_market("AAPL", 10.5, "sell", "c"), MarketOrder)


HOLDER = r"""
import socket, sys, time
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
clients = [socket.create_connection(server.getsockname()) for _ in range(3)]
accepted = [server.accept()[0] for _ in clients]
print("ready", flush=True)
time.sleep(60)
"""


def test_monitor_sockets_counts_a_process_sockets_and_warns_above_the_threshold(tmp_path):
    script = str(ROOT / "utils" / "monitor_sockets.sh")
    r = subprocess.run(["bash", script, "--pattern", "no-such-trader-xyz"], capture_output=True, text=True)
    assert r.returncode == 0 and "not running" in r.stdout
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"  # three connections, both ends in this one process
        pid = str(holder.pid)
        r = subprocess.run(["bash", script, "--pid", pid, "--threshold", "100"], capture_output=True, text=True)
        assert r.returncode == 0 and "ESTABLISHED 6  CLOSE_WAIT 0" in r.stdout, r.stdout
        r = subprocess.run(["bash", script, "--pid", pid, "--threshold", "5"], capture_output=True, text=True)
        assert r.returncode == 1 and "WARNING: 6 sockets" in r.stdout
    finally:
        holder.kill()
        holder.wait()
    r = subprocess.run(["bash", script, "--pid", pid], capture_output=True, text=True)
    assert r.returncode == 0 and "is not running" in r.stdout
    r = subprocess.run(["bash", script, "--watch", "soon"], capture_output=True, text=True)
    assert r.returncode == 2 and "whole numbers" in r.stderr
