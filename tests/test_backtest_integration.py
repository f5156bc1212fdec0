"""A short Lumibot backtest on the built-in market, checked from what it traded."""

import json
import socket
import webbrowser
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from backtest.report import render_table, summarize, write_report
from backtest.runner import BacktestConfig, run_backtest
from trading.orders import is_valid_increment
from trading.settings import Settings

KEY, SECRET = "PKTESTKEY0123456789", "s3cr3t-value-that-must-not-leak"


@pytest.fixture(scope="module")
def q1(tmp_path_factory):
    """Q1 2024 of the built-in market, with the legacy starting book; no network and no browser allowed."""
    out = tmp_path_factory.mktemp("q1")
    attempts = []
    mp = pytest.MonkeyPatch()

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket, "getaddrinfo", refuse)
    mp.setattr(webbrowser, "open", lambda *a, **k: attempts.append(("browser", a)))
    mp.chdir(out)
    try:
        settings = Settings.from_mapping({"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": SECRET})
        run = run_backtest(BacktestConfig(start=date(2024, 1, 2), end=date(2024, 3, 28), progress=False),
                           settings, out_dir=out / "report")
        summary = summarize(run)
        files = write_report(run, summary, render_table(summary))
    finally:
        mp.undo()
    return run, summary, files, attempts


def test_nothing_reached_the_network_or_a_browser(q1):
    *_, attempts = q1
    assert attempts == []


def test_every_behaviour_happened(q1):
    run, *_ = q1
    trades = run.strategy.ledger.trades_frame()
    fills = run.strategy.ledger.fills_frame()
    reasons = set(trades["exit_reason"])
    assert {"stop", "take_profit", "software_stop", "trim", "hedge_unwind"} <= reasons
    assert (fills["role"] == "entry").sum() >= 5, "bracket entries were placed and filled"
    inverse = set(run.settings.inverse_symbols)
    hedge_fills = fills[fills["symbol"].isin(inverse)]
    assert set(hedge_fills["role"]) >= {"hedge", "unhedge"}, "a hedge was opened and unwound"
    log = run.strategy.decision_log.frame()
    assert {"protect", "near-stop", "software-stop", "trim", "hedge", "unhedge", "enter"} <= set(log["action"])


def test_every_order_is_one_alpaca_accepts(q1):
    run, *_ = q1
    orders = run.strategy.get_orders()
    brackets = [o for o in orders if str(o.order_class).endswith("bracket") or o.order_class == "bracket"]
    assert brackets, "brackets were submitted"
    for o in orders:
        assert float(o.quantity) == int(float(o.quantity)), f"whole shares: {o}"
        for price in (o.limit_price, o.stop_price):
            if price is not None:
                assert is_valid_increment(Decimal(str(price))), f"sub-penny price {price} on {o}"
    for b in brackets:
        tp = next(c for c in b.child_orders if c.limit_price is not None)
        sl = next(c for c in b.child_orders if c.stop_price is not None)
        assert float(sl.stop_price) < float(tp.limit_price)
        assert str(getattr(b.time_in_force, "value", b.time_in_force)) == "gtc"


def test_no_position_ever_went_short(q1):
    run, *_ = q1
    held = {s: float(q) for s, q in run.book.quantities.items()}
    for f in run.strategy.ledger.fills_frame().itertuples():
        held[f.symbol] = held.get(f.symbol, 0.0) + (f.qty if f.side == "buy" else -f.qty)
        assert held[f.symbol] >= -1e-9, f"{f.symbol} went short at {f.time}"


def test_our_numbers_agree_with_lumibots(q1):
    _, summary, *_ = q1
    ours, lumi = summary["strategy"], summary["lumibot"]
    assert ours["total_return"] == pytest.approx(lumi["total_return"], abs=1e-6)
    assert -ours["max_drawdown"] == pytest.approx(lumi["max_drawdown"], abs=1e-3)


def test_report_files(q1):
    run, summary, files, _ = q1
    names = {f.name for f in files}
    assert {"summary.txt", "summary.json", "decisions.csv", "trades.csv", "fills.csv", "equity.csv", "equity.png",
            "tearsheet.html", "lumibot_trade_events.csv", "settings.json"} <= names
    data = json.loads((run.out_dir / "summary.json").read_text())
    assert data["strategy"]["entries"] == summary["strategy"]["entries"] > 0
    table = (run.out_dir / "summary.txt").read_text()
    assert "SPY buy & hold" in table and "Bracket exits: stop / take-profit" in table
    trades = pd.read_csv(run.out_dir / "trades.csv")
    assert set(trades.columns) >= {"symbol", "entry_price", "exit_price", "exit_reason", "pnl_usd"}


def test_secrets_reach_no_report_file(q1):
    run, *_ = q1
    for path in run.out_dir.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="ignore")
            assert KEY not in text and SECRET not in text, path.name


def test_moved_stops_fill_at_their_new_level_and_the_journal_matches(q1):
    run, *_ = q1
    from trading.records.journal import Journal

    closed = Journal(run.out_dir / "journal.sqlite").frame("closed_trades")
    assert len(closed) == len(run.strategy.ledger.trades)
    be = closed[closed["exit_reason"] == "breakeven"]
    assert len(be) >= 1, "the exit policy moved a stop to breakeven and it was hit"
    assert ((be["exit_price"] / be["entry_price"] - 1).round(4) >= 0.0).mean() >= 0.5, "at entry + 0.1%, gaps aside"
    reasons = set(closed["exit_reason"])
    assert {"time", "partial"} & reasons
