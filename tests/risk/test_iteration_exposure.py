"""Gross exposure is counted across every entry of one iteration, not per entry against the book alone."""

from tests.builders import snapshot
from tests.risk.helpers import T0, entry_decision, s
from trading.records.journal import Journal
from trading.risk.controller import RiskController


def test_entries_of_one_iteration_are_summed_against_the_gross_exposure_cap():
    # $70,000 of a $100,000 account already long (70%); three planned $10,000 entries (10% each) under an 80% cap:
    # only the first fits, the other two would take the book to 90% and 100%
    snap = snapshot(cash=30_000, holdings=[("XOM", 700, 100.0)], now=T0,
                    prices={"XOM": 100.0, "AAPL": 100.0, "MSFT": 100.0, "NVDA": 100.0})
    assert snap.portfolio_value == 100_000
    rc = RiskController(s(max_gross_exposure_pct=0.80), Journal())
    rc.observe(snap, [])
    entries = [entry_decision(sym, budget=10_000.0) for sym in ("AAPL", "MSFT", "NVDA")]
    assert [d.intent.orders[0].notional for d in entries] == [10_000.0] * 3

    out = rc.review(entries, snap)

    allowed = [d for d in out if d.intent is not None]
    denied = [d for d in out if d.intent is None]
    assert [d.symbol for d in allowed] == ["AAPL"] and allowed[0].intent.orders[0].qty == 100, "the first fits whole"
    assert [d.symbol for d in denied] == ["MSFT", "NVDA"]
    assert all(d.action == "denied" and d.data["gate"] == "exposure" for d in denied)
    assert all("at the 80% cap" in d.reason for d in denied)
    new_long = sum(d.intent.orders[0].notional for d in allowed)
    assert (70_000 + new_long) / snap.portfolio_value <= 0.80 + 1e-9, "the iteration never takes the book past the cap"


def test_an_entry_that_only_partly_fits_after_earlier_ones_is_shrunk_to_the_room_left():
    # 75% held: the first $10,000 entry is cut to the $5,000 left, the next finds no room at all
    snap = snapshot(cash=25_000, holdings=[("XOM", 750, 100.0)], now=T0,
                    prices={"XOM": 100.0, "AAPL": 100.0, "MSFT": 100.0})
    rc = RiskController(s(max_gross_exposure_pct=0.80), Journal())
    rc.observe(snap, [])
    first, second = rc.review([entry_decision("AAPL"), entry_decision("MSFT")], snap)
    assert first.intent is not None and first.intent.orders[0].qty == 50 and first.data["verdict"] == "resize"
    assert second.intent is None and second.data["gate"] == "exposure"
