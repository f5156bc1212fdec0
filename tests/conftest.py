"""Test set-up. The environment switches must be in place before anything imports Lumibot."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils import lumibot_env  # noqa: E402

lumibot_env.prepare(backtesting=True)

import os  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402

from trading.settings import Settings  # noqa: E402


def run_cli(*args, cwd, env=None, timeout=300, prefix=()) -> subprocess.CompletedProcess:
    """`python live_trader.py ARGS` as a user runs it, without this machine's Alpaca keys, profile or backtest
    switches leaking in from the environment; `env` adds the test's own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "STOP_", "IS_BACKTESTING", "PROFILE"))}
    base.update(env or {})
    return subprocess.run([*prefix, sys.executable, str(ROOT / "live_trader.py"), *args], cwd=cwd, env=base,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def settings() -> Settings:
    return Settings.defaults()


@pytest.fixture
def close_bots():
    """Live tests: close every bot a test built (their HTTP sessions and journals), as a process exit would."""
    from tests.live_harness import RUNNING

    yield
    while RUNNING:
        RUNNING.pop().close()


@pytest.fixture(scope="module")
def day_bars():
    """The scripted trading day of tests/live_harness.py (built once per module)."""
    from tests.live_harness import scripted_market

    return scripted_market()
