"""Edges of the risk layer: an equity move of exactly EQUITY_JUMP_PCT, the iteration time stamped on the saved
risk state, and a review before the first observe."""

from datetime import timedelta

import pytest

from tests.risk.helpers import T0, entry_decision, s, snap_at
from trading.records.journal import Journal
from trading.risk.controller import COMMAND_KEY, STATE_KEY, RiskController
from trading.risk.equity import EquityTracker
from trading.risk.verdict import Mode

JUMP = 0.25  # a share whose ratios are exact in binary floats: 125k / 100k - 1 is exactly 0.25


@pytest.mark.parametrize("reading, used", [(125_000, True), (75_000, True), (125_001, False), (74_999, False)])
def test_a_move_of_exactly_equity_jump_pct_is_used_and_one_dollar_more_is_held_back(reading, used):
    eq = EquityTracker()
    eq.observe(T0, 100_000, JUMP, 5)
    note = eq.observe(T0 + timedelta(hours=1), reading, JUMP, 5)
    assert (note is None) is used
    assert eq.confirmed == (reading if used else 100_000)


@pytest.mark.parametrize("second, confirms", [(62_500, True), (37_500, True), (62_501, False), (37_499, False)])
def test_a_jump_is_confirmed_by_a_reading_exactly_equity_jump_pct_from_it(second, confirms):
    eq = EquityTracker()
    eq.observe(T0, 100_000, JUMP, 5)
    eq.observe(T0 + timedelta(hours=1), 50_000, JUMP, 5)  # -50%: held back
    note = eq.observe(T0 + timedelta(hours=2), second, JUMP, 5)  # far from 100k; is it within 25% of 50k?
    if confirms:
        assert note == f"equity {second:,.2f} confirms the jump from 100,000.00" and eq.confirmed == second
    else:
        assert "not used until the next reading confirms it" in note and eq.confirmed == 100_000
        assert eq.pending == second


def _state_updated(journal: Journal) -> str:
    return journal.conn.execute("SELECT updated FROM state WHERE key=?", (STATE_KEY,)).fetchone()[0]


def test_the_saved_risk_state_is_stamped_with_the_iteration_time_not_the_wall_clock():
    # a backtest replays 2024: the journal must say when, in market time, the state changed
    journal = Journal()
    rc = RiskController(s(), journal)
    rc.observe(snap_at(T0, 100_000), [])
    assert _state_updated(journal) == T0.isoformat()
    journal.set_state(COMMAND_KEY, {"command": "flatten", "id": "f1"}, T0)
    later = T0 + timedelta(hours=3)
    rc.observe(snap_at(later, 100_000), [])
    assert _state_updated(journal) == later.isoformat() and rc.flatten_pending
    done = T0 + timedelta(hours=4)
    rc.flatten_done(done)
    assert _state_updated(journal) == done.isoformat()


def test_a_review_before_the_first_observe_applies_no_size_factors():
    rc = RiskController(s(), Journal())
    assert rc.mode == Mode.ACTIVE and rc.factors == []
    (d,) = rc.review([entry_decision()], snap_at(T0, 100_000))
    assert d == entry_decision()


@pytest.mark.parametrize("confirmed, reading", [(100_000, 110_000), (80_000, 88_000)])
def test_a_rise_of_exactly_the_default_ten_percent_is_used(confirmed, reading):
    eq = EquityTracker()
    eq.observe(T0, confirmed, 0.10, 5)
    assert eq.observe(T0 + timedelta(hours=1), reading, 0.10, 5) is None and eq.confirmed == reading
