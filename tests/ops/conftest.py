"""Fixtures of the API tests: a journal written by a short backtest, and the API on a loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import httpx
import pytest

from ops.api.context import ApiContext
from ops.api.server import ApiThread
from tests.conftest import ROOT
from trading.settings import Settings

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def backtest_journal(tmp_path_factory):
    """The journal of a three-week backtest on the built-in market (positions, trades, gates, equity)."""
    out = tmp_path_factory.mktemp("bt")
    # its own process: a backtest prepares Lumibot's environment for backtesting, which live tests must not see
    r = subprocess.run([sys.executable, str(ROOT / "live_trader.py"), "--backtest", "--start", "2024-01-02", "--end",
                        "2024-01-24", "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path_factory.mktemp("cwd"))
    assert r.returncode == 0, r.stderr
    (journal,) = out.glob("*/journal.sqlite")
    return journal


@pytest.fixture
def journal_copy(backtest_journal, tmp_path):
    """A copy a test may write to (controls, settings changes)."""
    path = tmp_path / "journal.sqlite"
    shutil.copy(backtest_journal, path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(journal, bot=None, **overrides) -> ApiThread:
    settings = Settings.defaults(api_token=TOKEN, **overrides)
    return ApiThread(ApiContext.build(journal, settings, bot), "127.0.0.1", 0).start()


@pytest.fixture
def api(journal_copy):
    """The API over a backtest journal, and an httpx client that sends the token."""
    server = start_api(journal_copy)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
        client.server = server
        client.journal = journal_copy
        yield client
    server.stop()
