"""Starting the API from the command line: refusals before anything starts, and `serve` over a journal."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx

from tests.conftest import ROOT
from tests.ops.conftest import TOKEN, free_port


def run(args: list[str], env: dict[str, str], cwd, timeout: float = 60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "API_", "ALERT_"))}
    return subprocess.run([sys.executable, str(ROOT / "live_trader.py"), *args], env={**base, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_api_without_a_token_refuses_to_start_and_says_how_to_make_one(backtest_journal, tmp_path):
    for args in (["serve", "--journal", str(backtest_journal)], ["--strategy", "combined", "--api"]):
        # the live run has keys pointing at nothing: the API check must stop it before any connection is tried
        r = run(args, {"ALPACA_API_KEY": "PKTEST", "ALPACA_API_SECRET": "secret",
                       "ALPACA_API_URL": "http://127.0.0.1:9"}, tmp_path)
        assert r.returncode == 2, r.stderr
        assert "API_TOKEN is not set" in r.stderr and "secrets.token_urlsafe(32)" in r.stderr
        assert "Traceback" not in r.stderr and "cannot reach Alpaca" not in r.stderr


def test_public_address_needs_api_public_and_a_short_token_is_refused_unseen(backtest_journal, tmp_path):
    r = run(["serve", "--journal", str(backtest_journal)], {"API_TOKEN": TOKEN, "API_HOST": "0.0.0.0"}, tmp_path)
    assert r.returncode == 2 and "--api-public" in r.stderr and "Traceback" not in r.stderr
    r = run(["serve", "--journal", str(backtest_journal)], {"API_TOKEN": "short-secret"}, tmp_path)
    assert r.returncode == 2 and "API_TOKEN=(hidden)" in r.stderr and "short-secret" not in r.stderr


def test_serve_refuses_a_missing_journal_and_a_busy_port(backtest_journal, tmp_path):
    r = run(["serve", "--journal", str(tmp_path / "nope.sqlite")], {"API_TOKEN": TOKEN}, tmp_path)
    assert r.returncode == 2 and "no journal at" in r.stderr and not (tmp_path / "nope.sqlite").exists()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run(["serve", "--journal", str(backtest_journal)], {"API_TOKEN": TOKEN, "API_PORT": str(port)}, tmp_path)
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_serve_browses_a_backtest_journal(backtest_journal, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "API_", "ALERT_"))}
    proc = subprocess.Popen([sys.executable, str(ROOT / "live_trader.py"), "serve", "--journal", str(backtest_journal)],
                            env={**env, "API_TOKEN": TOKEN, "API_PORT": str(port)}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(url + "/api/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["mode"] == "backtest"
        assert httpx.get(url + "/api/status", timeout=2).status_code == 401
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert TOKEN not in out + err
    assert f"Serving {backtest_journal}" in err
