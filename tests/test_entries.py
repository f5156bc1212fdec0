"""Step 4: oversold candidates, one batched confidence call, the gate, sizing, ranking."""

from datetime import timedelta

import numpy as np
import pytest

from tests.builders import Fixed, snapshot
from trading.confidence import RuleConfidence
from trading.order_ids import OrderIds
from trading.orders import BracketOrder
from trading.snapshot import OpenOrder
from trading.steps.entries import plan_entries

IDS = OrderIds("combined", snapshot().now)


class Broken(Fixed):
    def score(self, rows):
        raise RuntimeError("model file corrupt")


def uni(**rows):
    return {sym: {"close": c, "rsi": r, "trend": t} for sym, (c, r, t) in rows.items()}


def test_all_candidates_are_scored_in_one_call_and_gated(settings):
    snap = snapshot(cash=100_000, prices=uni(AAPL=(100, 25, 90), MSFT=(300, 28, 310), XOM=(100, 50, 90)))
    model = Fixed(0.9)
    out = plan_entries(snap, settings, model, 99_000, set(), IDS)
    assert model.calls == [["AAPL", "MSFT"]], "one batched call for every candidate, oversold only"
    enters = [d for d in out if d.action == "enter"]
    assert {d.symbol for d in enters} == {"AAPL", "MSFT"}
    assert all(isinstance(d.intent.orders[0], BracketOrder) and "(fixed)" in d.reason for d in enters)
    low = plan_entries(snap, settings, Fixed(0.1), 99_000, set(), IDS)
    assert not [d for d in low if d.action == "enter"]
    assert all("0.10 < 0.60" in d.reason for d in low if d.action == "skip")


@pytest.mark.parametrize(("breadth", "gate_on", "entered"), [
    (0.6, True, False),  # exactly at BEARISH_THRESHOLD: the hedge is on, no new longs
    (0.59, True, True), (1.0, False, True), (float("nan"), True, True),  # no bellwether data: not bearish
])
def test_breadth_gate_blocks_new_longs_while_the_market_looks_overextended(settings, breadth, gate_on, entered):
    s = settings if gate_on else type(settings).defaults(breadth_entry_gate=False)
    snap = snapshot(cash=100_000, prices=uni(AAPL=(100, 25, 90)))
    out = plan_entries(snap, s, Fixed(0.9), 99_000, set(), IDS, breadth=breadth)
    assert [d.action for d in out] == (["enter"] if entered else ["skip"])
    if not entered:
        assert out[0].data["gate"] == "breadth" and "breadth 60% >= 60%" in out[0].reason


def test_confidence_exactly_at_threshold_passes(settings):
    snap = snapshot(cash=100_000, prices=uni(AAPL=(100, 25, 90)))
    assert [d.action for d in plan_entries(snap, settings, Fixed(0.6), 99_000, set(), IDS)] == ["enter"]


def test_failing_model_blocks_entries_and_says_why(settings):
    snap = snapshot(cash=100_000, prices=uni(AAPL=(100, 25, 90)))
    (d,) = plan_entries(snap, settings, Broken(0), 99_000, set(), IDS)
    assert d.action == "blocked" and "model file corrupt" in d.reason and d.intent is None


def test_sizing_uses_the_entry_limit_then_the_cash_left(settings):
    snap = snapshot(cash=20_000, portfolio_value=100_000,
                    prices=uni(AAPL=(100, 20, 90), MSFT=(100, 22, 90), GOOGL=(100, 24, 90)))
    out = plan_entries(snap, settings, Fixed(0.9), 19_000, set(), IDS)
    enters = [d for d in out if d.action == "enter"]
    qty = [d.intent.orders[0].qty for d in enters]
    # 10% of $100k; then the $19,000 less the first buy at the 4% market-buy collar ($10,400) = $8,600,
    # which buys 82 shares at $100 x 1.04
    assert qty == [100, 82]
    assert [d.symbol for d in enters] == ["AAPL", "MSFT"], "ranked by confidence, then lowest RSI"
    (skip,) = [d for d in out if d.symbol == "GOOGL"]
    assert skip.action == "skip" and "only $72.00 is available" in skip.reason


def test_zero_cash_and_one_share_short(settings):
    snap = snapshot(cash=1_000, portfolio_value=100_000, prices=uni(AAPL=(150, 20, 90)))
    (d,) = plan_entries(snap, settings, Fixed(0.9), 149.99, set(), IDS)
    assert d.action == "skip" and "whole shares" in d.reason
    (d,) = plan_entries(snap, settings, Fixed(0.9), 0.0, set(), IDS)
    assert d.action == "skip" and "no cash" in d.reason


@pytest.mark.parametrize("why, kwargs", [
    ("already held", {"holdings": [("AAPL", 5, 100.0)]}),
    ("entry order is already open", {"orders": [OpenOrder("o1", "AAPL", "buy", "market", 5)]}),
])
def test_no_second_entry_in_a_symbol(settings, why, kwargs):
    snap = snapshot(cash=100_000, prices=uni(AAPL=(100, 20, 90)), **kwargs)
    (d,) = [d for d in plan_entries(snap, settings, Fixed(0.9), 99_000, set(), IDS) if d.symbol == "AAPL"]
    assert d.action == "skip" and why in d.reason


def test_nan_rsi_and_empty_market_make_no_candidates(settings):
    snap = snapshot(cash=100_000, prices=uni(AAPL=(100, float("nan"), 90)))
    assert [d.action for d in plan_entries(snap, settings, Fixed(0.9), 99_000, set(), IDS)] == ["none"]
    assert [d.action for d in plan_entries(snapshot(cash=100_000), settings, Fixed(0.9), 99_000, set(), IDS)] \
        == ["none"]


def test_rule_confidence_is_transparent():
    rule = RuleConfidence(rsi_oversold=30)
    rows = snapshot(prices=uni(A=(100, 30, 90), B=(100, 15, 110), C=(100, 22.5, 110), D=(100, 10, float("nan")))).market
    np.testing.assert_allclose(rule.score(rows), [0.7, 0.8, 0.65, 0.8])


def test_the_last_entry_of_an_iteration_fits_a_cash_account_at_the_market_buy_collar(settings):
    """Verify item: Alpaca checks a market buy at a collar above the last price; entries sized at the last price
    alone spend more than a cash account has and the last one is refused (insufficient buying power)."""
    from trading.orders import MARKET_BUY_COLLAR

    snap = snapshot(cash=30_000, portfolio_value=100_000,
                    prices=uni(AAPL=(100, 20, 90), MSFT=(50, 22, 45), GOOGL=(20, 24, 18)))
    cash = 30_000.0
    out = plan_entries(snap, settings, Fixed(0.9), cash, set(), IDS)
    buys = [d.intent.orders[0] for d in out if d.action == "enter"]
    assert len(buys) >= 2
    assert sum(o.notional * (1 + MARKET_BUY_COLLAR) for o in buys) <= cash


def _after_take_profit(days_ago: float, close: float = 110.0, trend: float = 100.0, rsi: float = 55.0, **kw):
    from dataclasses import replace as with_

    snap = snapshot(cash=100_000, prices=uni(AAPL=(close, rsi, trend), MSFT=(300, 50, 250)), **kw)
    return with_(snap, take_profits={"AAPL": snap.now - timedelta(days=days_ago)})


@pytest.mark.parametrize("reentry_days, days_ago, close, entered", [
    (10, 3, 110.0, True),  # within the window, above its trend line: bought again without an RSI dip
    (10, 10, 110.0, True),  # the window's last day counts
    (10, 10.5, 110.0, False),  # past the window
    (10, 3, 99.0, False),  # below its trend line: the trend that paid is over
    (10, 3, 100.0, False),  # on it is not above it
    (0, 3, 110.0, False),  # REENTRY_DAYS=0: the old behaviour, RSI dips only
])
def test_reentry_after_a_take_profit(settings, reentry_days, days_ago, close, entered):
    from dataclasses import replace as with_

    s = with_(settings, reentry_days=reentry_days)
    model = Fixed(0.9)
    out = plan_entries(_after_take_profit(days_ago, close), s, model, 99_000, set(), IDS)
    enters = [d for d in out if d.action == "enter"]
    assert [d.symbol for d in enters] == (["AAPL"] if entered else [])
    if entered:
        assert model.calls == [["AAPL"]], "scored and gated like any candidate; MSFT had no take-profit"
        assert "re-entry after a take-profit" in enters[0].reason and enters[0].data["reentry"]


def test_reentry_still_passes_the_gates_and_never_adds_to_a_holding(settings):
    from dataclasses import replace as with_

    s = with_(settings, reentry_days=10)
    low = plan_entries(_after_take_profit(3), s, Fixed(0.1), 99_000, set(), IDS)
    assert not [d for d in low if d.action == "enter"], "the confidence gate applies"
    held = plan_entries(_after_take_profit(3, holdings=[("AAPL", 5, 100.0)]), s, Fixed(0.9), 99_000, set(), IDS)
    (d,) = [d for d in held if d.symbol == "AAPL"]
    assert d.action == "skip" and "already held" in d.reason


def test_the_ledger_remembers_only_a_last_trade_that_ended_at_its_take_profit():
    from trading.records.ledger import Fill, Ledger

    t0 = snapshot().now
    ledger = Ledger()
    for sym in ("AAPL", "MSFT", "SH"):
        ledger.record_fill(Fill(t0, sym, "buy", 10, 100.0, "hedge" if sym == "SH" else "entry", f"b-{sym}"))
    ledger.record_fill(Fill(t0 + timedelta(days=1), "AAPL", "sell", 10, 115.0, "target", "s1"))
    ledger.record_fill(Fill(t0 + timedelta(days=1), "MSFT", "sell", 10, 95.0, "stop", "s2"))
    ledger.record_fill(Fill(t0 + timedelta(days=1), "SH", "sell", 10, 115.0, "target", "s3"))
    assert ledger.take_profits() == {"AAPL": t0 + timedelta(days=1)}, "entries only; a stop or a hedge is not one"
    ledger.record_fill(Fill(t0 + timedelta(days=2), "AAPL", "buy", 10, 116.0, "entry", "b2"))
    ledger.record_fill(Fill(t0 + timedelta(days=3), "AAPL", "sell", 10, 110.0, "stop", "s4"))
    assert ledger.take_profits() == {}, "the last trade decides: stopped out after re-entering, no more re-entry"


def test_a_restart_remembers_the_last_take_profits_from_the_journal(tmp_path):
    """REENTRY_DAYS must not forget a take-profit because the bot was restarted in between."""
    from trading.records.journal import Journal
    from trading.records.ledger import Fill, Ledger

    t0 = snapshot().now
    journal = Journal(tmp_path / "journal.sqlite")
    ledger = Ledger(journal)
    for sym in ("AAPL", "MSFT"):
        ledger.record_fill(Fill(t0, sym, "buy", 10, 100.0, "entry", f"b-{sym}"))
    ledger.record_fill(Fill(t0 + timedelta(days=1), "AAPL", "sell", 10, 115.0, "target", "s1"))
    ledger.record_fill(Fill(t0 + timedelta(days=1), "MSFT", "sell", 10, 115.0, "target", "s2"))
    ledger.record_fill(Fill(t0 + timedelta(days=2), "MSFT", "buy", 10, 116.0, "entry", "b2"))
    ledger.record_fill(Fill(t0 + timedelta(days=3), "MSFT", "sell", 10, 110.0, "stop", "s3"))
    journal.close()

    restarted = Ledger(Journal(tmp_path / "journal.sqlite"))
    restarted.restore()
    assert restarted.take_profits() == {"AAPL": t0 + timedelta(days=1)}, "MSFT's last trade was stopped out"

