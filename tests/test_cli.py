"""live_trader.py as a user runs it: exit codes, messages, no tracebacks, offline backtests."""

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from marketdata.builtin import generate
from tests.conftest import ROOT, run_cli

SCRIPT = str(ROOT / "live_trader.py")


def test_live_without_keys_says_how_to_add_them(tmp_path):
    r = run_cli("--strategy", "combined", cwd=tmp_path)
    assert r.returncode == 2
    assert ".env.example" in r.stderr and "ALPACA_API_KEY" in r.stderr and "--backtest" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_unknown_strategy_lists_the_known_ones(tmp_path):
    r = run_cli("--strategy", "momentum", "--backtest", cwd=tmp_path)
    assert r.returncode == 2 and "known strategies: combined" in r.stderr and "Traceback" not in r.stderr


def test_bad_setting_stops_start_up_with_exit_2(tmp_path):
    (tmp_path / ".env").write_text("TAKE_PROFIT_PCT=-0.1\n")
    r = run_cli("--backtest", cwd=tmp_path)
    assert r.returncode == 2
    assert "TAKE_PROFIT_PCT='-0.1' is out of range. Allowed: 0 < x <= 5." in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_csv_is_rejected_naming_file_and_row(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "AAPL.csv").write_text("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1,1\n2024-01-03,1,2,0.5,0,1\n")
    r = run_cli("--backtest", "--data", f"csv:{data}", cwd=tmp_path)
    assert r.returncode == 2 and "AAPL.csv, row 3: close = 0 is not a positive price" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir()), "nothing half-written"


def test_every_registered_strategy_resolves_to_a_lumibot_strategy():
    from lumibot.strategies import Strategy

    from strategies import STRATEGIES, strategy_class

    assert STRATEGIES and all(issubclass(strategy_class(name), Strategy) for name in STRATEGIES)


def test_daily_csv_backtest_iterates_once_a_day_and_reports_missing_symbols(tmp_path):
    m = generate(["AAPL", "MSFT", "NVDA", "JPM", "XOM", "SPY"], {}, "2023-06-01", "2024-03-28")
    data = tmp_path / "daily"
    data.mkdir()
    for sym, df in m.bars.items():
        days = df.groupby(df.index.date).agg({"open": "first", "high": "max", "low": "min", "close": "last",
                                              "volume": "sum"})
        days.index = pd.to_datetime(days.index).rename("Date")
        days.to_csv(data / f"{sym}.csv")
    r = run_cli("--backtest", "--data", f"csv:{data}", "--start", "2023-10-02", "--end", "2024-03-28",
                "--no-progress", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "daily bars: the strategy iterates once a day" in out
    assert "step 3 (hedging) is disabled" in out, "no inverse ETF files: the hedge step says it is off"
    assert "no data for bellwether(s) GOOGL, TSLA" in out
    m_iter = re.search(r"\|\s+(\d+) iterations", out)
    assert m_iter and 100 <= int(m_iter.group(1)) <= 130, "one iteration per trading day"
    folder = Path(re.search(r"Report folder: (.+)", out).group(1).strip())
    assert folder.parent == tmp_path / "out" and (folder / "summary.txt").exists()


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_backtest_makes_no_network_connections_at_the_syscall_level(tmp_path):
    """A Python-level socket patch would miss libcurl (yfinance), so count connect() calls with strace."""
    trace = tmp_path / "trace.txt"
    r = run_cli("--backtest", "--start", "2024-01-02", "--end", "2024-01-19", "--no-progress", "--out",
                str(tmp_path / "out"), cwd=tmp_path, prefix=("strace", "-f", "-e", "trace=connect", "-o", str(trace)))
    assert r.returncode == 0, r.stderr[-2000:]
    inet = [line for line in trace.read_text().splitlines() if "AF_INET" in line]
    assert inet == []
    assert "Report folder:" in r.stdout


def test_untrusted_model_file_stops_the_backtest(tmp_path):
    (tmp_path / "m.joblib").write_bytes(b"not what was trained")
    (tmp_path / "m.json").write_text('{"format": 1, "sha256": "0000"}')
    r = run_cli("--backtest", cwd=tmp_path, env={"MODEL_PATH": str(tmp_path / "m.joblib")})
    assert r.returncode == 2 and "is not loaded" in r.stderr and "the file changed since training" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "reports").exists()


def test_model_stops_without_a_model_stop_the_backtest_saying_what_to_do(tmp_path):
    r = run_cli("--backtest", cwd=tmp_path, env={"STOP_MODE": "model", "MODEL_PATH": str(tmp_path / "m.joblib")})
    assert r.returncode == 2 and "STOP_MODE=model" in r.stderr and "python -m models.train" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "reports").exists()
