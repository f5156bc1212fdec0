"""The whole story of issue 12 as a user runs it: `live_trader.py --strategy combined --api` with ALERT_URLS and
API_TOKEN set (the keys pointing at the fake Alpaca server): the start alert arrives, the API shows the positions
protected, a halt sent through the API is obeyed at the next iteration and alerted, and SIGTERM sends the stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT
from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import env_for_subprocess, unprotected_positions, wallclock_market
from tests.ops.conftest import TOKEN, free_port
from tests.ops.receiver import Receiver


@pytest.fixture
def srv():
    bars, now = wallclock_market()
    s = FakeAlpaca(bars, now=now).start()
    s.market_is_open = True
    s.add_position("XOM", 30, 90.0)  # bought by hand, never protected
    yield s
    s.stop()


def poll(check, timeout: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the bot exited while waiting for {what}"
        try:
            value = check()
            if value:
                return value
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_bot_with_api_and_alerts_is_watched_and_halted_from_outside(srv, tmp_path):
    receiver = Receiver().start()
    port = free_port()
    env = env_for_subprocess(srv, tmp_path, SLEEPTIME="20S", API_TOKEN=TOKEN, API_PORT=str(port),
                             ALERT_URLS=receiver.url, ALERT_LEVEL="info")
    proc = subprocess.Popen([sys.executable, str(ROOT / "live_trader.py"), "--strategy", "combined", "--api"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    try:
        status = poll(lambda: (s := api.get("/api/status").json())["has_status"] and s, 120, "the first iteration",
                      proc)
        assert status["mode"] == "paper" and status["account"].endswith(srv.account()["account_number"][-4:])
        assert srv.account()["account_number"] not in str(status)  # masked
        (xom,) = [p for p in api.get("/api/positions").json()["positions"] if p["symbol"] == "XOM"]
        assert xom["protected"] and unprotected_positions(srv) == []
        assert api.post("/api/halt").status_code == 200
        poll(lambda: api.get("/api/status").json()["risk"]["mode"] == "HALTED", 90, "HALTED", proc)
        assert receiver.wait(2, timeout=20)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        api.close()
        if proc.poll() is None:
            proc.kill()
        receiver.stop()
    assert proc.returncode == 0, out[-3000:]
    titles = receiver.titles()
    assert any("started" in t.lower() for t in titles), titles
    assert any("halt" in t.lower() for t in titles), titles
    assert any("stopped" in t.lower() for t in titles), titles
    everything = out + str(receiver.messages)
    assert TOKEN not in everything and srv.secret not in everything and srv.key not in everything
    assert "Traceback" not in out
