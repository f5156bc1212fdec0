"""The risk controller as a trader sees it: which intents go through, shrink or are denied, by which gate with
which reason; the notes it logs; the holds it keeps until when; what it writes to the journal and restores after
a restart; the human commands; describe()."""

import dataclasses
from datetime import datetime, timedelta

import pandas as pd
import pytest

from tests.builders import snapshot
from tests.risk.helpers import NY, T0, entry_decision, protect_decision, s, snap_at
from trading.intents import Decision, Intent, IntentKind, Step
from trading.orders import build_bracket_for_budget
from trading.records.journal import Journal
from trading.risk.controller import COMMAND_KEY, HOUR, STATE_KEY, NullRiskController, RiskController, build_risk
from trading.risk.verdict import Mode
from trading.snapshot import OpenOrder

H1 = T0 + timedelta(hours=1)
HALT_REASON = "halted by the halt command"


class CountingJournal(Journal):
    """A journal that remembers every write of the risk state (what a restart would read)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.risk_writes: list[dict] = []

    def set_state(self, key, value, now=None):
        if key == STATE_KEY:
            self.risk_writes.append(value)
        super().set_state(key, value, now)


def command(journal: Journal, name: str, cid: str) -> None:
    journal.set_state(COMMAND_KEY, {"command": name, "id": cid})


def hedge_decision(symbol="SH", budget=10_000.0) -> Decision:
    order = build_bracket_for_budget(symbol, 100.0, budget, 0.05, 0.15, f"h-{symbol}")
    return Decision(Step.HEDGE, symbol, "hedge", "test", Intent(IntentKind.HEDGE, symbol, (order,)))


def kind_decision(kind: IntentKind, symbol="AAPL") -> Decision:
    return Decision(Step.PLAN, symbol, kind.value, "test", Intent(kind, symbol, ()))


def book(cash=100_000.0, holdings=(), orders=(), now=T0, **prices):
    rows = {"AAPL": 100.0, "MSFT": 100.0, "NVDA": 100.0, "AMD": 100.0, "SH": 100.0, "XOM": 100.0, **prices}
    return snapshot(cash=cash, holdings=holdings, orders=orders, prices=rows, now=now)


def halted(journal=None, **kw) -> RiskController:
    rc = RiskController(s(**kw), journal or Journal())
    command(rc.journal, "halt", "h1")
    rc.observe(snap_at(T0, 100_000), [])
    return rc


def reducing(**kw) -> RiskController:
    """Down 3.1% on the day: the daily loss limit, REDUCING until tomorrow."""
    rc = RiskController(s(**kw), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(H1, 96_900), [])
    assert rc.mode == Mode.REDUCING
    return rc


def trip_breaker(rc: RiskController) -> list[Decision]:
    """Yesterday's high 100k, today 96k (-4%), then 94k at T0+1h: only the circuit breaker trips, until T0+5h."""
    rc.observe(snap_at(T0 - timedelta(days=1), 100_000), [])
    rc.observe(snap_at(T0, 96_000), [])
    return rc.observe(snap_at(H1, 94_000), [])


# ---------------------------------------------------------------- describe and the Null controller
def test_describe_lists_every_hold_with_its_reason_and_end():
    rc = RiskController(s(), Journal())
    assert rc.describe() == "ACTIVE" and rc.mode == Mode.ACTIVE
    trip_breaker(rc)
    assert rc.describe() == ("REDUCING: circuit_breaker (down 6.0% from the recent peak 100,000 (limit 5%): "
                             "entries paused 4 h, until 2024-03-05 15:30)")
    command(rc.journal, "halt", "h1")
    rc.observe(snap_at(T0 + timedelta(hours=2), 94_000), [])
    assert rc.mode == Mode.HALTED
    assert rc.describe() == ("HALTED: circuit_breaker (down 6.0% from the recent peak 100,000 (limit 5%): "
                             "entries paused 4 h, until 2024-03-05 15:30); manual (halted by the halt command, "
                             "until resumed)")


def test_null_controller_is_always_active_and_says_so():
    null = NullRiskController()
    assert null.mode == Mode.ACTIVE and null.flatten_pending is False and null.holds == []
    assert null.observe(snap_at(T0, 1), [-1.0] * 10) == [] and null.flatten_done(T0) is None
    assert null.describe() == "risk controller off (RISK_ENABLED=false)"


def test_build_risk_honours_risk_enabled_the_journal_and_the_bar_period(tmp_path):
    assert isinstance(build_risk(s(risk_enabled=False)), NullRiskController)
    journal = Journal(tmp_path / "j.sqlite")
    halted(journal)
    rc = build_risk(s(), journal, pd.Timedelta(minutes=15))
    assert isinstance(rc, RiskController) and rc.mode == Mode.HALTED, "the journal's halt is restored"
    assert rc.bar_period == pd.Timedelta(minutes=15) and RiskController(s()).bar_period == HOUR == pd.Timedelta("1h")
    assert build_risk(s()).bar_period == pd.Timedelta(hours=1) and build_risk(s()).journal is None


@pytest.mark.parametrize("bar_period, lag, allowed", [
    (pd.Timedelta(minutes=15), pd.Timedelta(minutes=15), True),
    (pd.Timedelta(minutes=15), pd.Timedelta(minutes=30), False),
    (None, pd.Timedelta(hours=1), True), (None, pd.Timedelta(hours=2), False)])
def test_stale_data_is_counted_in_the_controllers_bar_period(bar_period, lag, allowed):
    fresh = pd.Timestamp(T0) - pd.Timedelta(hours=1)
    snap = snapshot(cash=100_000, now=T0, prices={"AAPL": {"close": 100.0, "bar_time": fresh - lag},
                                                  "MSFT": {"close": 100.0, "bar_time": fresh}})
    rc = RiskController(s()) if bar_period is None else build_risk(s(), None, bar_period)
    rc.observe(snap, [])
    (d,) = rc.review([entry_decision("AAPL")], snap)
    assert (d.intent is not None) is allowed
    if not allowed:
        assert d.data["gate"] == "stale_data" and "2 bars behind the market (STALE_BARS=2)" in d.reason


# ---------------------------------------------------------------- the notes observe logs
def test_a_rule_tripping_logs_one_warning_with_gate_reason_and_end():
    rc = RiskController(s(), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    notes = rc.observe(snap_at(H1, 96_900), [])
    assert notes == [Decision(Step.RISK, None, "reducing", "daily_loss: down 3.1% today (limit 3%); until 2024-03-06 "
                              "00:00", level="warning", data={"gate": "daily_loss"})]
    assert rc.observe(snap_at(H1 + timedelta(minutes=5), 96_800), []) == [], "logged once, not every iteration"
    assert [h.gate for h in rc.holds] == ["daily_loss"]


def test_a_halt_command_logs_halted_until_resumed_and_a_second_halt_adds_nothing():
    rc = RiskController(s(), Journal())
    command(rc.journal, "halt", "h1")
    notes = rc.observe(snap_at(T0, 100_000), [])
    assert notes == [Decision(Step.RISK, None, "halted", "manual: halted by the halt command; until resumed",
                              level="warning", data={"gate": "manual"})]
    command(rc.journal, "flatten", "f1")
    assert rc.observe(snap_at(H1, 100_000), []) == []
    assert rc.holds == [rc.holds[0]] and rc.holds[0].reason == HALT_REASON
    assert rc.flatten_pending, "the flatten still closes everything although the bot was already halted"


def test_a_held_back_equity_reading_is_logged_as_a_warning():
    rc = RiskController(s())
    rc.observe(snap_at(T0, 100_000), [])
    notes = rc.observe(snap_at(H1, 50_000), [])
    assert notes == [Decision(Step.RISK, None, "equity", "equity reading 50,000.00 is -50.0% from 100,000.00: not "
                              "used until the next reading confirms it", level="warning")]
    notes = rc.observe(snap_at(H1 + timedelta(hours=1), 50_100), [])
    assert notes[0] == Decision(Step.RISK, None, "equity", "equity 50,100.00 confirms the jump from 100,000.00",
                                level="warning")
    assert [n.data.get("gate") for n in notes[1:]] == ["daily_loss", "weekly_loss", "circuit_breaker"]


def test_a_hold_ends_exactly_at_its_until_and_says_so():
    rc = RiskController(s(), Journal())
    trip_breaker(rc)
    until = T0 + timedelta(hours=5)
    assert rc.holds[0].until == until
    assert rc.observe(snap_at(until - timedelta(minutes=1), 94_000), []) == [] and rc.mode == Mode.REDUCING
    notes = rc.observe(snap_at(until, 94_000), [])
    assert notes == [Decision(Step.RISK, None, "resume", "circuit_breaker ended (down 6.0% from the recent peak "
                              "100,000 (limit 5%): entries paused 4 h)")]
    assert rc.holds == [] and rc.mode == Mode.ACTIVE and rc.describe() == "ACTIVE"


@pytest.mark.parametrize("stored_until, now, ended", [
    ("2024-03-05T14:30:00", datetime(2024, 3, 5, 14, 29, tzinfo=NY), False),  # a naive time is New York time
    ("2024-03-05T14:30:00", datetime(2024, 3, 5, 14, 30, tzinfo=NY), True),
    ("2024-03-05T14:30:00", datetime(2024, 3, 5, 18, 31, tzinfo=NY), True),
    ("2024-03-05T19:30:00+00:00", datetime(2024, 3, 5, 14, 29, tzinfo=NY), False),
    ("2024-03-05T19:30:00+00:00", datetime(2024, 3, 5, 14, 30), True),  # a naive clock is New York time too
    ("2024-03-05T19:30:00+00:00", datetime(2024, 3, 5, 14, 29), False),
])
def test_hold_ends_compare_naive_times_as_new_york_time(stored_until, now, ended):
    journal = Journal()
    journal.set_state(STATE_KEY, {"equity": {}, "holds": [{"mode": 1, "gate": "circuit_breaker", "reason": "r",
                                                           "until": stored_until}], "command_id": None})
    rc = RiskController(s(), journal)
    assert rc.mode == Mode.REDUCING and rc.flatten_pending is False
    rc.observe(snap_at(now, 100_000), [])
    assert (rc.mode == Mode.ACTIVE) is ended


# ---------------------------------------------------------------- rules inside the controller
def test_circuit_breaker_peak_is_reset_once_so_a_further_five_percent_drop_trips_it_again():
    rc = RiskController(s(daily_loss_limit_pct=0, weekly_loss_limit_pct=0), Journal())
    trip_breaker(rc)  # tripped at 94k: the next drop is measured from 94k
    rc.observe(snap_at(T0 + timedelta(hours=2), 90_000), [])  # still paused; not a new reference
    assert [h.gate for h in rc.holds] == ["circuit_breaker"]
    notes = rc.observe(snap_at(T0 + timedelta(hours=5), 89_000), [])  # pause over: 5.3% below 94k
    assert [n.action for n in notes] == ["resume", "reducing"] and rc.mode == Mode.REDUCING
    assert "down 5.3% from the recent peak 94,000" in rc.holds[0].reason


@pytest.mark.parametrize("flatten_on_halt, final, pending", [
    (True, 89_000, True),  # the weekly limit halts: flatten
    (False, 89_000, False),
    (True, 96_900, False),  # the daily limit only reduces: no flatten
])
def test_flatten_on_halt_flattens_only_on_a_loss_halt(flatten_on_halt, final, pending):
    rc = RiskController(s(flatten_on_halt=flatten_on_halt, circuit_breaker_pct=0, equity_jump_pct=0.5), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(H1, final), [])
    assert rc.flatten_pending is pending


def test_a_loss_halt_flattens_once_not_again_while_the_halt_lasts():
    rc = RiskController(s(flatten_on_halt=True, equity_jump_pct=0.5), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(H1, 89_000), [])
    assert rc.flatten_pending and rc.mode == Mode.HALTED
    rc.flatten_done(H1)
    rc.observe(snap_at(H1 + timedelta(hours=1), 88_000), [])
    assert not rc.flatten_pending, "the weekly halt is already in force: nothing new to flatten"


def test_kill_switch_and_halt_command_do_not_flatten_on_their_own(tmp_path):
    halt = tmp_path / "HALT"
    halt.write_text("")
    rc = RiskController(s(flatten_on_halt=True, kill_switch_file=str(halt)), Journal())
    notes = rc.observe(snap_at(T0, 100_000), [])
    assert notes == [Decision(Step.RISK, None, "halted", f"kill_switch: kill-switch file {halt} exists; until resumed",
                              level="warning", data={"gate": "kill_switch"})]
    assert rc.mode == Mode.HALTED and not rc.flatten_pending


def test_the_controllers_settings_reach_the_rules():
    rc = RiskController(s(daily_loss_limit_pct=0.01, weekly_loss_limit_pct=0.5, circuit_breaker_pct=0.5,
                          circuit_breaker_hours=2, recovery_drawdown_pct=0.5), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(H1, 98_900), [])
    assert [h.gate for h in rc.holds] == ["daily_loss"] and "limit 1%" in rc.holds[0].reason
    rc = RiskController(s(circuit_breaker_pct=0.02, circuit_breaker_hours=2, daily_loss_limit_pct=0), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(H1, 97_900), [])
    assert [(h.gate, h.until) for h in rc.holds] == [("circuit_breaker", H1 + timedelta(hours=2))]


def test_recent_peak_days_setting_limits_how_far_back_the_breaker_looks():
    rc = RiskController(s(recent_peak_days=2, daily_loss_limit_pct=0, weekly_loss_limit_pct=0), Journal())
    for days_ago, value in ((3, 110_000), (2, 100_000), (1, 100_000)):
        rc.observe(snap_at(T0 - timedelta(days=days_ago), value), [])
    rc.observe(snap_at(T0, 99_000), [])  # 10% below 3 days ago, 1% below the last 2 days
    assert rc.mode == Mode.ACTIVE
    assert rc.equity.daily_highs == [["2024-03-04", 100_000], ["2024-03-05", 99_000]]


def test_equity_jump_pct_setting_decides_what_is_held_back():
    rc = RiskController(s(equity_jump_pct=0.02, daily_loss_limit_pct=0, circuit_breaker_pct=0), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    notes = rc.observe(snap_at(H1, 97_000), [])
    assert [n.action for n in notes] == ["equity"] and rc.equity.confirmed == 100_000


def test_losing_streak_and_recovery_settings_reach_the_factors():
    rc = RiskController(s(losing_streak=2, recovery_drawdown_pct=0.01), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(H1, 99_000), [1.0, -1.0, -1.0])  # exactly 1% down: not recovery yet; 2 losses: a streak
    (d,) = rc.review([entry_decision()], snap_at(H1, 99_000))
    assert d.intent.orders[0].qty == 50 and "losing_streak: 2 losing trades in a row" in d.reason
    assert "recovery" not in d.reason
    rc.observe(snap_at(H1, 98_900), [1.0])
    (d,) = rc.review([entry_decision()], snap_at(H1, 98_900))
    assert d.intent.orders[0].qty == 50 and "recovery: 1.1% below the peak (recovery mode above 1%)" in d.reason
    rc.observe(snap_at(H1, 100_000), [1.0])
    (d,) = rc.review([entry_decision()], snap_at(H1, 100_000))
    assert d.intent.orders[0].qty == 100 and d.reason == "test"


# ---------------------------------------------------------------- the journal: what is saved, what a restart sees
def test_the_state_on_file_holds_everything_a_restart_needs(tmp_path):
    path = tmp_path / "j.sqlite"
    rc = RiskController(s(), Journal(path))
    trip_breaker(rc)
    command(rc.journal, "flatten", "f1")
    rc.observe(snap_at(T0 + timedelta(hours=2), 94_000), [])
    assert rc.journal.get_state(STATE_KEY) == {
        "equity": {"confirmed": 94_000, "pending": None, "day": "2024-03-05", "day_start": 96_000,
                   "week": "2024-W10", "week_start": 100_000, "peak": 100_000,
                   "daily_highs": [["2024-03-04", 94_000], ["2024-03-05", 94_000]]},
        "holds": [{"mode": 1, "gate": "circuit_breaker", "reason": "down 6.0% from the recent peak 100,000 (limit 5%): "
                   "entries paused 4 h", "until": "2024-03-05T15:30:00-05:00"},
                  {"mode": 2, "gate": "manual", "reason": "flattened and halted by the flatten command",
                   "until": None}],
        "command_id": "f1", "flatten_pending": True}
    rc.journal.close()
    restarted = RiskController(s(), Journal(path))
    assert restarted.holds == rc.holds and restarted.equity == rc.equity
    assert restarted.command_id == "f1" and restarted.flatten_pending is True, "an unfinished flatten goes on"
    assert restarted.mode == Mode.HALTED
    restarted.flatten_done(T0 + timedelta(hours=3))
    assert restarted.journal.get_state(STATE_KEY)["flatten_pending"] is False
    assert RiskController(s(), restarted.journal).flatten_pending is False


def test_a_state_without_flatten_or_command_fields_restores_as_not_flattening():
    journal = Journal()
    journal.set_state(STATE_KEY, {"equity": {"confirmed": 100_000.0}, "holds": []})
    rc = RiskController(s(), journal)
    assert rc.flatten_pending is False and rc.command_id is None and rc.equity.confirmed == 100_000
    assert rc.mode == Mode.ACTIVE and rc.describe() == "ACTIVE"


def test_the_state_is_written_only_when_it_changed_and_equity_after_a_half_percent_move():
    journal = CountingJournal()
    rc = RiskController(s(), journal)
    steps = [(0, 100_000, True),  # first reading
             (1, 100_000, False),  # nothing changed
             (2, 99_600, False),  # -0.4%: not worth a write
             (3, 99_400, True),  # -0.6% from the copy on file
             (4, 99_000, False),  # -0.4% from 99,400
             (5, 98_000, True)]  # -1.4%
    on_file = None
    for hours, value, written in steps:
        before = len(journal.risk_writes)
        rc.observe(snap_at(T0 + timedelta(hours=hours), value), [])
        assert (len(journal.risk_writes) > before) is written, (hours, value)
        on_file = value if written else on_file
        assert journal.get_state(STATE_KEY)["equity"]["confirmed"] == on_file
    rc.observe(snap_at(T0 + timedelta(hours=6), 98_000), [])
    command(journal, "halt", "h1")
    before = len(journal.risk_writes)
    rc.observe(snap_at(T0 + timedelta(hours=7), 98_000), [])
    assert len(journal.risk_writes) == before + 1, "a new hold is written at once"
    assert journal.get_state(STATE_KEY)["holds"][0]["gate"] == "manual"


def test_a_rise_to_a_new_high_is_written_even_when_small():
    journal = CountingJournal()
    rc = RiskController(s(), journal)
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(H1, 100_100), [])  # +0.1%, but a new daily high and peak
    assert len(journal.risk_writes) == 2 and journal.risk_writes[-1]["equity"]["peak"] == 100_100


def test_a_restart_writes_its_first_state_again():
    journal = CountingJournal()
    RiskController(s(), journal).observe(snap_at(T0, 100_000), [])
    restarted = RiskController(s(), journal)
    restarted.observe(snap_at(H1, 100_000), [])
    assert len(journal.risk_writes) == 2


def test_without_a_journal_nothing_is_saved_and_nothing_breaks():
    rc = RiskController(s())
    command_free = rc.observe(snap_at(T0, 100_000), [])
    rc.flatten_done(T0)
    assert command_free == [] and rc.mode == Mode.ACTIVE and rc.command_id is None


# ---------------------------------------------------------------- human commands
def test_resume_lifts_every_hold_and_a_pending_flatten_and_names_them():
    rc = RiskController(s(), Journal())
    trip_breaker(rc)
    command(rc.journal, "flatten", "f1")
    rc.observe(snap_at(T0 + timedelta(hours=2), 94_000), [])
    assert rc.flatten_pending
    command(rc.journal, "resume", "r1")
    notes = rc.observe(snap_at(T0 + timedelta(hours=3), 94_000), [])
    assert notes == [Decision(Step.RISK, None, "resume", "resume command: lifted circuit_breaker, manual")]
    assert rc.holds == [] and not rc.flatten_pending and rc.mode == Mode.ACTIVE
    assert rc.journal.get_state(STATE_KEY)["holds"] == [] and rc.journal.get_state(STATE_KEY)["command_id"] == "r1"
    command(rc.journal, "resume", "r2")
    notes = rc.observe(snap_at(T0 + timedelta(hours=4), 94_000), [])
    assert notes == [Decision(Step.RISK, None, "resume", "resume command: lifted nothing")]


def test_resume_with_the_kill_switch_file_still_there_warns_that_it_halts_again(tmp_path):
    halt = tmp_path / "HALT"
    halt.write_text("")
    rc = RiskController(s(kill_switch_file=str(halt)), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    command(rc.journal, "resume", "r1")
    notes = rc.observe(snap_at(H1, 100_000), [])
    assert notes[0] == Decision(Step.RISK, None, "resume", "resume command: lifted kill_switch; the kill-switch file "
                                "still exists, so the bot halts again")
    assert notes[1].action == "halted" and rc.mode == Mode.HALTED


@pytest.mark.parametrize("name", ["bogus", "", "RESUME"])
def test_an_unknown_command_is_recorded_and_changes_nothing(name):
    rc = halted()
    command(rc.journal, name, "x1")
    assert rc.observe(snap_at(H1, 100_000), []) == []
    assert rc.mode == Mode.HALTED and rc.command_id == "x1" and not rc.flatten_pending


def test_halt_does_not_flatten_and_flatten_does():
    rc = halted()
    assert rc.flatten_pending is False and rc.command_id == "h1"
    rc = RiskController(s(), Journal())
    command(rc.journal, "flatten", "f1")
    notes = rc.observe(snap_at(T0, 100_000), [])
    assert rc.flatten_pending is True and notes[0].reason == ("manual: flattened and halted by the flatten command; "
                                                              "until resumed")


# ---------------------------------------------------------------- review: the graded states
def test_halted_denies_with_the_gate_and_reason_and_keeps_the_decision_readable():
    rc = halted()
    skip = Decision(Step.ENTRY, "NVDA", "skip", "no signal")
    out = rc.review([entry_decision(), skip, kind_decision(IntentKind.TRIM), protect_decision()], book())
    assert out[0] == Decision(Step.ENTRY, "AAPL", "denied", "test | risk: denied by manual: HALTED: protective orders "
                              "only", None, "warning", {"gate": "manual", "verdict": "deny", "intent": "enter"})
    assert out[1] is skip, "decisions without an intent are passed on as they are"
    assert out[2].action == "denied" and out[2].data == {"gate": "manual", "verdict": "deny", "intent": "trim"}
    assert out[3] == protect_decision()


def test_the_gate_named_is_the_one_behind_the_strictest_hold():
    rc = RiskController(s(), Journal())
    trip_breaker(rc)  # REDUCING first ...
    command(rc.journal, "halt", "h1")  # ... then HALTED: the halt is what blocks
    rc.observe(snap_at(T0 + timedelta(hours=2), 94_000), [])
    (d,) = rc.review([entry_decision()], book())
    assert d.data["gate"] == "manual" and d.reason.endswith("denied by manual: HALTED: protective orders only")


def test_reducing_denies_entries_and_hedges_but_not_exits():
    rc = reducing()
    out = rc.review([entry_decision(), hedge_decision(), kind_decision(IntentKind.TRIM),
                     kind_decision(IntentKind.EXIT)], book())
    assert [d.data.get("gate") for d in out[:2]] == ["daily_loss", "daily_loss"]
    assert out[0].reason == "test | risk: denied by daily_loss: REDUCING: no new entries or hedges"
    assert out[1].data == {"gate": "daily_loss", "verdict": "deny", "intent": "hedge"}
    assert out[2:] == [kind_decision(IntentKind.TRIM), kind_decision(IntentKind.EXIT)]


def test_a_stale_feed_denies_new_exposure_only():
    rc = RiskController(s(), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    snap = dataclasses.replace(book(), feed_stale="no bar for 3 hours")
    out = rc.review([entry_decision(), hedge_decision(), kind_decision(IntentKind.TRIM), protect_decision()], snap)
    assert [d.action for d in out] == ["denied", "denied", "trim", "protect"]
    assert out[0].reason == "test | risk: denied by stale_data: the whole data feed is behind the clock"
    assert out[1].data["gate"] == "stale_data"


def test_active_passes_non_entries_untouched_and_allowed_entries_as_they_are():
    rc = RiskController(s(), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    decisions = [kind_decision(k) for k in IntentKind if k not in (IntentKind.ENTER, IntentKind.HEDGE)]
    decisions += [entry_decision(), hedge_decision()]
    out = rc.review(decisions, book())
    assert out == decisions and all(a is b for a, b in zip(out, decisions, strict=True))


# ---------------------------------------------------------------- review: limits on what one iteration adds
def test_orders_per_iteration_counts_entries_and_hedges_that_went_through():
    rc = RiskController(s(max_orders_per_iteration=2), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    stale_row = {"close": 100.0, "bar_time": pd.Timestamp(T0) - pd.Timedelta(hours=5)}
    snap = book(NVDA=stale_row)
    out = rc.review([entry_decision("NVDA"), hedge_decision(), entry_decision("AAPL"), entry_decision("MSFT")], snap)
    assert [d.data.get("gate") for d in out] == ["stale_data", None, None, "orders_per_iteration"]
    assert out[3].reason == ("test | risk: denied by orders_per_iteration: 2 new orders already this iteration "
                             "(MAX_ORDERS_PER_ITERATION=2)")


def test_stale_data_is_checked_before_the_other_limits():
    rc = RiskController(s(max_positions=1), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    stale_row = {"close": 100.0, "bar_time": pd.Timestamp(T0) - pd.Timedelta(hours=5)}
    snap = book(holdings=[("XOM", 10, 100.0)], AAPL=stale_row)
    (d,) = rc.review([entry_decision("AAPL")], snap)
    assert d.data["gate"] == "stale_data"


def test_concurrency_counts_held_and_approved_entries_but_not_hedges_or_inverse_etfs():
    rc = RiskController(s(max_positions=3), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    snap = book(cash=50_000, holdings=[("XOM", 10, 100.0), ("SH", 10, 100.0)])  # SH is an inverse ETF
    out = rc.review([hedge_decision(), entry_decision("AAPL"), entry_decision("MSFT"), entry_decision("NVDA")], snap)
    assert [d.intent is not None for d in out] == [True, True, True, False]
    assert out[3].data["gate"] == "concurrency"
    assert out[3].reason == "test | risk: denied by concurrency: 3 positions already (MAX_POSITIONS=3)"


def test_concurrency_counts_each_approved_entry():
    rc = RiskController(s(max_positions=2, max_gross_exposure_pct=0), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    out = rc.review([entry_decision(sym) for sym in ("AAPL", "MSFT", "NVDA", "AMD")], book())
    assert [d.data.get("gate") for d in out] == [None, None, "concurrency", "concurrency"]
    assert "2 positions already" in out[2].reason


def test_hedges_skip_concurrency_exposure_and_the_size_factors():
    rc = RiskController(s(max_positions=1), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    rc.observe(snap_at(H1, 97_500), [-1.0, -1.0, -1.0])
    snap = book(cash=10_000, holdings=[("XOM", 900, 100.0)], now=H1)  # 90% long: over the cap, at the limit
    entry, hedge = rc.review([entry_decision(), hedge_decision()], snap)
    assert entry.data["gate"] == "concurrency" and hedge == hedge_decision()


def test_gross_exposure_counts_open_buy_orders_but_not_inverse_etfs():
    rc = RiskController(s(max_gross_exposure_pct=0.80), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    pending_buy = OpenOrder("e1", "NVDA", "buy", "market", 100, order_class="bracket")  # $10,000 promised
    snap = book(cash=30_000, holdings=[("XOM", 600, 100.0), ("SH", 100, 100.0)], orders=(pending_buy,))
    assert snap.portfolio_value == 100_000
    (d,) = rc.review([entry_decision("AAPL", budget=15_000)], snap)  # 60k + 10k held/promised: 10k room
    assert d.intent.orders[0].qty == 100 and d.data["verdict"] == "resize" and d.data["gate"] == "exposure"
    assert d.reason == "test | risk: 150 -> 100 sh (exposure: only $10,000 left under the 80% exposure cap)"


def test_resized_entries_count_their_new_size_toward_the_cap():
    # 60% held, 80% cap, a losing streak halves everything: 10k entries go through as 5k until the room is gone
    rc = RiskController(s(max_gross_exposure_pct=0.80), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    snap = book(cash=40_000, holdings=[("XOM", 600, 100.0)])
    rc.observe(snap, [-1.0, -2.0, -3.0])
    out = rc.review([entry_decision(sym) for sym in ("AAPL", "MSFT", "NVDA", "AMD")], snap)
    assert [d.intent.orders[0].qty if d.intent else None for d in out] == [50, 50, 50, 25]
    assert out[3].data["gate"] == "exposure"
    assert out[3].reason == ("test | risk: 100 -> 25 sh (exposure: only $5,000 left under the 80% exposure cap; "
                             "losing_streak: 3 losing trades in a row)")


def test_a_resize_keeps_the_order_and_records_the_new_size():
    rc = RiskController(s(), Journal())
    rc.observe(snap_at(T0, 100_000), [-1.0, -1.0, -1.0])
    original = dataclasses.replace(entry_decision(), intent=dataclasses.replace(
        entry_decision().intent, cancel_order_ids=("old",), trade_update={"note": "x"}), data={"score": 0.7})
    (d,) = rc.review([original], book())
    order = original.intent.orders[0]
    assert d.intent == Intent(IntentKind.ENTER, "AAPL", (dataclasses.replace(order, qty=50),), ("old",),
                              {"note": "x"})
    assert d.action == "enter" and d.level == "info" and d.step == Step.ENTRY and d.symbol == "AAPL"
    assert d.reason == "test | risk: 100 -> 50 sh (losing_streak: 3 losing trades in a row)"
    assert d.data == {"score": 0.7, "gate": "losing_streak", "verdict": "resize", "qty": 50, "notional": 5000.0}


def test_a_denial_keeps_the_planners_data():
    rc = halted()
    original = dataclasses.replace(entry_decision(), data={"score": 0.7})
    (d,) = rc.review([original], book())
    assert d.data == {"score": 0.7, "gate": "manual", "verdict": "deny", "intent": "enter"}


@pytest.mark.parametrize("budget, results, qty", [
    (100.0, [-1.0, -1.0, -1.0], None),  # 1 share halved: below one share
    (200.0, [-1.0, -1.0, -1.0], 1),
    (300.0, [-1.0, -1.0, -1.0], 1),  # 1.5 rounds down
])
def test_a_resize_below_one_share_is_a_denial(budget, results, qty):
    rc = RiskController(s(), Journal())
    rc.observe(snap_at(T0, 100_000), results)
    (d,) = rc.review([entry_decision(budget=budget)], book())
    if qty is None:
        assert d.intent is None and d.data["gate"] == "losing_streak"
        assert d.reason == ("test | risk: denied by losing_streak: resized below one share (losing_streak: 3 losing "
                            "trades in a row)")
    else:
        assert d.intent.orders[0].qty == qty


def test_resizing_rounds_down_but_tolerates_float_noise():
    # room $2,900 for a $10,000 entry: 100 x 0.29 is 28.999999999999996 in floats and must stay 29 shares
    rc = RiskController(s(max_gross_exposure_pct=0.80), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    snap = book(cash=22_900, holdings=[("XOM", 771, 100.0)])
    assert snap.portfolio_value == 100_000
    (d,) = rc.review([entry_decision()], snap)
    assert d.intent.orders[0].qty == 29 and d.data["qty"] == 29 and d.data["notional"] == 2_900.0
