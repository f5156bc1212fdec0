"""Performance tables from the journal: per step and per exit reason, and what each gate blocked."""

import math
from datetime import datetime, timedelta

import pytest

from trading.records.journal import Journal
from trading.records.performance import blocked_by_gate, render, tables

T0 = datetime(2024, 1, 2, 10, 30)


def trade(symbol, kind, pnl, r, reason, opened_h, closed_h):
    return {"symbol": symbol, "kind": kind, "qty": 10, "entry_time": T0 + timedelta(hours=opened_h),
            "entry_price": 100.0, "exit_time": T0 + timedelta(hours=closed_h), "exit_price": 100 + pnl / 10,
            "exit_reason": reason, "pnl_usd": pnl, "return_pct": pnl / 1000, "r_multiple": r}


@pytest.fixture
def journal():
    j = Journal(":memory:")
    # 100 hourly equity samples over ~4 days (24 a day, to keep the arithmetic plain)
    for h in range(100):
        j.record_iteration(T0 + timedelta(hours=h), [], {"time": T0 + timedelta(hours=h),
                                                         "portfolio_value": 100_000.0, "cash": 50_000.0,
                                                         "long_value": 50_000.0, "inverse_value": 0.0,
                                                         "positions": 1, "risk_mode": "ACTIVE"})
    closed = [trade("A", "entry", 300.0, 3.0, "take_profit", 0, 10),   # day 1, open 10 of 100 samples
              trade("B", "entry", -100.0, -1.0, "stop", 24, 49),      # day 2 (exit on day 3), open 25
              trade("C", "entry", -100.0, -1.0, "stop", 50, 60),      # day 3, open 10
              trade("SH", "hedge", 50.0, None, "hedge_unwind", 70, 75)]  # day 3 (opened 80h ... ), open 5
    j.record_fill(T0, "x", "A", "sell", 10, 130.0, "target", closed, {})
    return j


def test_per_step_and_per_exit_reason_tables(journal):
    t = tables(journal)
    e = t["per_step"]["entries"]
    assert (e["trades"], e["win_rate"], e["profit_factor"], e["avg_r"]) == (3, pytest.approx(1 / 3), 1.5, 1 / 3)
    assert e["expectancy_usd"] == pytest.approx(100 / 3) and e["pnl_usd"] == 100.0
    assert e["time_in_market"] == pytest.approx(0.45)  # 10 + 25 + 10 of 100 samples with an entry trade open
    assert e["max_drawdown"] == pytest.approx(-200 / 100_300)  # +300 on day 1, then -100 and -100
    h = t["per_step"]["hedges"]
    assert (h["trades"], h["win_rate"], h["profit_factor"], h["time_in_market"]) == (1, 1.0, math.inf, 0.05)
    assert list(t["per_exit_reason"]) == ["take_profit", "stop", "hedge_unwind"]
    stop = t["per_exit_reason"]["stop"]
    assert (stop["trades"], stop["win_rate"], stop["pnl_usd"]) == (2, 0.0, -200.0)
    assert stop["max_drawdown"] == pytest.approx(-0.002) and stop["time_in_market"] == pytest.approx(0.35)
    assert t["overall"]["time_in_market"] == 1.0 and t["overall"]["trades"] == 4
    text = render(t)
    assert "Sharpe" in text and "max DD" in text and "in mkt" in text
    stop_row = next(line for line in text.splitlines() if line.startswith("stop "))
    assert stop_row.split()[1:4] == ["2", "0%", "0.00"] and "-0.2%" in stop_row and "35%" in stop_row
    assert "inf" in next(line for line in text.splitlines() if line.startswith("hedges"))


def test_blocked_by_gate_lists_the_main_gates_even_at_zero(journal):
    journal.record_iteration(T0, [{"step": "entry", "symbol": "A", "action": "skip", "gate": "confidence"},
                                  {"step": "entry", "symbol": "B", "action": "skip", "gate": "confidence"},
                                  {"step": "entry", "symbol": "C", "action": "denied", "gate": "exposure"},
                                  {"step": "entry", "symbol": "D", "action": "enter", "gate": "recovery"},
                                  {"step": "entry", "symbol": "E", "action": "enter"}], None)
    counts = blocked_by_gate(journal.frame("decisions"))
    assert counts == {"confidence": 2, "breadth": 0, "exposure": 1, "concurrency": 0, "circuit_breaker": 0,
                      "stale_data": 0, "recovery": 1}
    assert "breadth 0" in render(tables(journal))
