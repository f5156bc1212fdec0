"""A human command (halt, resume, flatten) is applied exactly once: never again on a later iteration, never again
after a restart, and a resume given last week lifts nothing the rules trip today."""

from datetime import timedelta

from tests.risk.helpers import T0, entry_decision, protect_decision, s, snap_at
from trading.records.journal import Journal
from trading.risk.controller import COMMAND_KEY, RiskController
from trading.risk.verdict import Mode

LAST_WEEK = T0 - timedelta(days=7)  # T0 is a Tuesday: the Tuesday before


def command(journal: Journal, name: str, when) -> None:
    """What `python live_trader.py halt|resume|flatten` writes."""
    journal.set_state(COMMAND_KEY, {"command": name, "id": when.isoformat(), "time": when.isoformat()}, when)


def resume_notes(notes) -> list[str]:
    return [n.reason for n in notes if n.action == "resume" and "resume command" in n.reason]


def entries_pass(rc: RiskController, when, equity: float) -> bool:
    out = rc.review([entry_decision(), protect_decision()], snap_at(when, equity))
    assert out[1].intent is not None, "protection always goes"
    return out[0].intent is not None


def trip_breaker_today(rc: RiskController) -> list:
    """Yesterday's high 100k, today opens at 96k (-4%), then 94k: 6% below the recent peak, 2.1% on the day, 6% on
    the week: only the circuit breaker trips."""
    rc.observe(snap_at(T0 - timedelta(days=1), 100_000), [])
    rc.observe(snap_at(T0, 96_000), [])
    return rc.observe(snap_at(T0 + timedelta(hours=1), 94_000), [])


def test_last_weeks_resume_does_not_lift_todays_circuit_breaker_on_later_iterations_or_after_a_restart(tmp_path):
    path = tmp_path / "journal.sqlite"
    rc = RiskController(s(), Journal(path))
    rc.journal.set_state(COMMAND_KEY, {"command": "halt", "id": "h0"})
    rc.observe(snap_at(LAST_WEEK, 100_000), [])
    assert rc.mode == Mode.HALTED
    command(rc.journal, "resume", LAST_WEEK + timedelta(hours=1))
    notes = rc.observe(snap_at(LAST_WEEK + timedelta(hours=1), 100_000), [])
    assert rc.mode == Mode.ACTIVE and resume_notes(notes) == ["resume command: lifted manual"]

    trip_breaker_today(rc)
    assert [h.gate for h in rc.holds] == ["circuit_breaker"] and rc.mode == Mode.REDUCING
    notes = rc.observe(snap_at(T0 + timedelta(hours=2), 94_000), [])
    assert resume_notes(notes) == [], "the resume was applied last week; it is not applied again"
    assert [h.gate for h in rc.holds] == ["circuit_breaker"] and not entries_pass(rc, T0 + timedelta(hours=2), 94_000)
    rc.journal.close()

    restarted = RiskController(s(), Journal(path))  # a new process on the same journal
    notes = restarted.observe(snap_at(T0 + timedelta(hours=3), 94_000), [])
    assert resume_notes(notes) == [], "nor after a restart"
    assert [h.gate for h in restarted.holds] == ["circuit_breaker"] and restarted.mode == Mode.REDUCING
    assert not entries_pass(restarted, T0 + timedelta(hours=3), 94_000)


def test_last_weeks_resume_does_not_lift_todays_weekly_loss_halt(tmp_path):
    path = tmp_path / "journal.sqlite"
    rc = RiskController(s(), Journal(path))
    command(rc.journal, "resume", LAST_WEEK)
    rc.observe(snap_at(LAST_WEEK, 100_000), [])
    monday = T0 - timedelta(days=1)
    rc.observe(snap_at(monday, 100_000), [])  # start of this week
    rc.observe(snap_at(T0, 95_000), [])
    rc.observe(snap_at(T0 + timedelta(hours=1), 89_000), [])  # -11% on the week: HALTED until next Monday
    assert rc.mode == Mode.HALTED and "weekly_loss" in [h.gate for h in rc.holds]
    for hours in (2, 3):
        notes = rc.observe(snap_at(T0 + timedelta(hours=hours), 89_000), [])
        assert resume_notes(notes) == [] and rc.mode == Mode.HALTED
    rc.journal.close()
    restarted = RiskController(s(), Journal(path))
    restarted.observe(snap_at(T0 + timedelta(hours=4), 89_000), [])
    assert restarted.mode == Mode.HALTED and "weekly_loss" in [h.gate for h in restarted.holds]
    assert not entries_pass(restarted, T0 + timedelta(hours=4), 89_000)


def test_a_resume_waiting_since_last_week_is_applied_before_todays_rules_so_it_cannot_lift_what_they_trip(tmp_path):
    path = tmp_path / "journal.sqlite"
    rc = RiskController(s(), Journal(path))
    command(rc.journal, "halt", LAST_WEEK)
    rc.observe(snap_at(LAST_WEEK, 100_000), [])
    rc.observe(snap_at(T0 - timedelta(days=1), 100_000), [])
    assert rc.mode == Mode.HALTED
    rc.journal.close()
    # the bot is stopped; the human types resume; the bot starts again today at 6% below yesterday's high
    journal = Journal(path)
    command(journal, "resume", T0 - timedelta(hours=12))
    restarted = RiskController(s(), journal)
    assert restarted.mode == Mode.HALTED
    notes = restarted.observe(snap_at(T0, 94_000), [])
    assert resume_notes(notes) == ["resume command: lifted manual"], "the human's halt is lifted"
    assert [h.gate for h in restarted.holds] == ["circuit_breaker"], "today's breaker, tripped after it, stays"
    assert restarted.mode == Mode.REDUCING and not entries_pass(restarted, T0, 94_000)


def test_flatten_is_done_once_not_again_on_the_next_iteration_or_after_a_restart(tmp_path):
    path = tmp_path / "journal.sqlite"
    rc = RiskController(s(), Journal(path))
    rc.observe(snap_at(T0, 100_000), [])
    command(rc.journal, "flatten", T0)
    rc.observe(snap_at(T0 + timedelta(hours=1), 100_000), [])
    assert rc.flatten_pending and rc.mode == Mode.HALTED
    rc.flatten_done(T0 + timedelta(hours=1))  # the strategy saw no positions and no orders left
    for hours in (2, 3):
        rc.observe(snap_at(T0 + timedelta(hours=hours), 100_000), [])
        assert not rc.flatten_pending, "a flatten already done is not done again (it would sell new positions)"
    rc.journal.close()
    restarted = RiskController(s(), Journal(path))
    restarted.observe(snap_at(T0 + timedelta(hours=4), 100_000), [])
    assert not restarted.flatten_pending and restarted.mode == Mode.HALTED, "still halted, not flattening again"


def test_a_halt_lifted_by_resume_is_not_applied_again_and_a_new_halt_is(tmp_path):
    path = tmp_path / "journal.sqlite"
    rc = RiskController(s(), Journal(path))
    command(rc.journal, "halt", T0)
    rc.observe(snap_at(T0, 100_000), [])
    command(rc.journal, "resume", T0 + timedelta(hours=1))
    rc.observe(snap_at(T0 + timedelta(hours=1), 100_000), [])
    assert rc.mode == Mode.ACTIVE
    rc.observe(snap_at(T0 + timedelta(hours=2), 100_000), [])
    assert rc.mode == Mode.ACTIVE and entries_pass(rc, T0 + timedelta(hours=2), 100_000)
    command(rc.journal, "halt", T0 + timedelta(hours=3))  # a second halt is a new command
    rc.observe(snap_at(T0 + timedelta(hours=3), 100_000), [])
    assert rc.mode == Mode.HALTED
