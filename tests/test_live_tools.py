"""The command-line tools with keys, run as a user runs them (separate processes, settings from the environment),
against the fake Alpaca server: live_trader.py (money gates, banner, shutdown), test_iteration.py and
check_positions_now.py. The tools read the wall clock, so the fake starts at now with bars up to now and says
the market is open."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import env_for_subprocess, order_rejections, unprotected_positions, wallclock_market


@pytest.fixture
def srv():
    bars, now = wallclock_market()
    s = FakeAlpaca(bars, now=now).start()
    s.market_is_open = True
    s.add_position("XOM", 30, 90.0)  # bought by hand, never protected
    s.add_position("AAPL", 10, 170.0)
    px = s.price("AAPL")
    s.engine.submit({"symbol": "AAPL", "qty": "10", "side": "sell", "type": "limit", "time_in_force": "gtc",
                     "order_class": "oco", "take_profit": {"limit_price": f"{px * 1.15:.2f}"},
                     "stop_loss": {"stop_price": f"{px * 0.95:.2f}"}, "client_order_id": "by-hand-oco"})
    yield s
    s.stop()


def run(script: str, *args: str, env: dict, cwd, stdin: str | None = None, timeout: float = 240):
    return subprocess.run([sys.executable, str(ROOT / script), *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def writes(srv: FakeAlpaca) -> list[dict]:
    return [r for r in srv.requests if r["method"] in ("POST", "PATCH", "DELETE")]


def test_check_positions_shows_each_position_with_its_protection_and_flags_the_unprotected(srv, tmp_path):
    env = env_for_subprocess(srv, tmp_path)
    r = run("check_positions_now.py", env=env, cwd=tmp_path)
    assert r.returncode == 1, r.stderr[-2000:]  # XOM is unprotected: cron and alerting see exit code 1
    out = r.stdout
    assert "Alpaca paper account ..." in out and "SIMULATED" not in out
    xom = next(line for line in out.splitlines() if line.startswith("XOM"))
    aapl = next(line for line in out.splitlines() if line.startswith("AAPL"))
    assert "UNPROTECTED" in xom and "UNPROTECTED" not in aapl
    assert "equity $" in out
    j = run("check_positions_now.py", "--json", env=env, cwd=tmp_path)
    data = json.loads(j.stdout)
    assert j.returncode == 1 and data["simulated"] is False
    assert {p["symbol"]: p["protected"] for p in data["positions"]} == {"AAPL": True, "XOM": False}
    assert data["totals"]["unprotected"] == ["XOM"]
    assert writes(srv) == []  # it only looks
    assert srv.key not in out + r.stderr and srv.secret not in out + r.stderr


def test_test_iteration_with_keys_is_a_dry_run_unless_submit(srv, tmp_path):
    env = env_for_subprocess(srv, tmp_path)
    r = run("test_iteration.py", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    for section in ("POSITIONS CHECK", "PORTFOLIO VALUE", "MARKET SENTIMENT AND HEDGE", "POSITION SIZES",
                    "NEW OPPORTUNITIES", "SUMMARY", "ITERATION COMPLETE"):
        assert section in out
    assert "Alpaca paper account; DRY RUN: nothing sent" in out
    assert "XOM   protect: no server-side protection" in out and "-> dry-run" in out
    assert writes(srv) == [] and not (tmp_path / "journal.sqlite").exists()

    r = run("test_iteration.py", "--submit", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "orders SENT" in r.stdout
    assert [w["body"]["symbol"] for w in writes(srv) if w["method"] == "POST"][:1] == ["XOM"]
    assert order_rejections(srv) == [] and unprotected_positions(srv) == []
    again = run("check_positions_now.py", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "UNPROTECTED" not in again.stdout


def test_live_money_needs_the_flag_the_setting_and_a_typed_confirmation(srv, tmp_path):
    paper_flag = run("live_trader.py", "--live", env=env_for_subprocess(srv, tmp_path), cwd=tmp_path)
    assert paper_flag.returncode == 2 and "ALPACA_PAPER=true" in paper_flag.stderr
    live_env = env_for_subprocess(srv, tmp_path, ALPACA_PAPER="false")
    no_flag = run("live_trader.py", env=live_env, cwd=tmp_path)
    assert no_flag.returncode == 2 and "add --live" in no_flag.stderr
    declined = run("live_trader.py", "--live", env=live_env, cwd=tmp_path, stdin="yes please\n")
    assert declined.returncode == 2 and "not confirmed: nothing was started" in declined.stderr
    banner = declined.stdout.splitlines()[0]
    account = srv.account()["account_number"]
    assert banner.startswith("Alpaca LIVE MONEY account ") and account[-4:] in banner and account not in banner
    assert "equity $" in banner
    assert writes(srv) == []
    assert "Traceback" not in paper_flag.stderr + no_flag.stderr + declined.stderr


def test_sigterm_finishes_safely_and_leaves_every_position_protected(srv, tmp_path):
    env = env_for_subprocess(srv, tmp_path, SLEEPTIME="30S")
    proc = subprocess.Popen([sys.executable, str(ROOT / "live_trader.py"), "--strategy", "combined"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the first iteration to start
            line = proc.stdout.readline()
            seen.append(line)
            if "PROTECT" in line or proc.poll() is not None:
                break
        assert proc.poll() is None, "".join(seen)[-3000:]
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(seen) + rest
    assert proc.returncode == 0, out[-3000:]
    assert out.startswith("Alpaca PAPER account ")
    assert "stopped; every position was checked for protection" in out
    assert "PROTECT -     check         2 positions" in "".join(seen)  # Lumibot's loop ran an iteration
    assert "Traceback" not in out and "raised an exception" not in out
    assert unprotected_positions(srv) == []
    assert order_rejections(srv) == []
    assert srv.key not in out and srv.secret not in out
    log = (tmp_path / "logs" / "trader.log").read_text()
    assert "XOM" in log and srv.secret not in log
