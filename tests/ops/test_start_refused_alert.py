"""A bot that refuses to start says so on the phone: `live_trader.py` run as a user (or systemd) runs it, keys
pointing at the fake Alpaca server, ALERT_URLS at a receiver on loopback. A model file that cannot be trusted
keys Alpaca refuses, and a live-money start with nobody at a terminal to confirm it (systemd, cron) each exit 2
with the reason and no traceback, send one critical "Bot did not start" alert with that reason, and place no
order."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import env_for_subprocess, wallclock_market
from tests.ops.receiver import Receiver


@pytest.fixture
def srv():
    bars, now = wallclock_market()
    s = FakeAlpaca(bars, now=now).start()
    yield s
    s.stop()


@pytest.mark.parametrize("cause", ["model", "keys", "unattended_live"])
def test_a_refused_start_exits_2_and_alerts_why(srv, tmp_path, cause):
    receiver = Receiver().start()
    extra = {"ALERT_URLS": receiver.url}
    if cause == "model":
        (tmp_path / "model.joblib").write_bytes(b"not a model")  # e.g. a copy cut short
        (tmp_path / "model.joblib.json").write_text("{not json")
        extra["MODEL_PATH"] = str(tmp_path / "model.joblib")
    env = env_for_subprocess(srv, tmp_path, **extra)
    if cause == "keys":
        env["ALPACA_API_SECRET"] = "wrong-secret-0123456789"
    if cause == "unattended_live":
        env["ALPACA_PAPER"] = "false"
    live = ["--live"] if cause == "unattended_live" else []
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "live_trader.py"), "--strategy", "combined", *live],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        assert receiver.wait(1, timeout=10)
    finally:
        receiver.stop()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ")
    (msg,) = receiver.messages
    tag = "[LIVE]" if cause == "unattended_live" else "[paper]"
    assert msg["title"] == f"{tag} Bot did not start" and msg["type"] == "failure"
    assert error.removeprefix("error: ") in msg["message"], (error, msg)
    why = {"model": "model", "keys": "refused the keys", "unattended_live": "there is no terminal; add --yes"}
    assert why[cause] in msg["message"]
    assert srv.secret not in msg["message"] and "wrong-secret" not in msg["message"] + proc.stderr
    assert [r for r in srv.requests if r["method"] == "POST"] == [], "nothing was ordered"
