"""The controller's graded states, rules switched off, and the Null controller."""

from datetime import timedelta

import pytest

from tests.risk.helpers import T0, entry_decision, protect_decision, s, snap_at, tracker
from trading.intents import Decision, Intent, IntentKind, Step
from trading.records.journal import Journal
from trading.risk.circuit_breaker import circuit_breaker
from trading.risk.controller import COMMAND_KEY, NullRiskController, RiskController
from trading.risk.loss_limits import daily_loss, weekly_loss
from trading.risk.sizing_factors import losing_streak, recovery
from trading.risk.verdict import Action


def test_rules_switched_off_with_zero():
    eq = tracker(100_000, 50_000)
    assert daily_loss(T0, eq, 0) is None and weekly_loss(T0, eq, 0) is None and circuit_breaker(T0, eq, 0, 4) is None
    assert recovery(eq, 0).action == Action.ALLOW and losing_streak([-1, -1, -1], 0).action == Action.ALLOW


def test_null_controller_lets_everything_through():
    decisions = [entry_decision(), protect_decision()]
    assert NullRiskController().review(decisions, snap_at(T0, 1)) == decisions


def _decision(kind: IntentKind, symbol: str = "AAPL") -> Decision:
    return Decision(Step.PLAN, symbol, kind.value, "test", Intent(kind, symbol, ()))


@pytest.mark.parametrize(("mode", "allowed"), [
    ("REDUCING", {IntentKind.PROTECT, IntentKind.EXIT, IntentKind.MOVE_STOP, IntentKind.TRIM, IntentKind.UNHEDGE,
                  IntentKind.PARTIAL, IntentKind.TIME_EXIT, IntentKind.MODEL_EXIT, IntentKind.FLATTEN,
                  IntentKind.CANCEL}),
    ("HALTED", {IntentKind.PROTECT, IntentKind.EXIT, IntentKind.MOVE_STOP, IntentKind.TIME_EXIT, IntentKind.MODEL_EXIT,
                IntentKind.FLATTEN, IntentKind.CANCEL}),
])
def test_graded_states_let_through_only_what_they_allow(mode, allowed):
    rc = RiskController(s(), Journal())
    rc.observe(snap_at(T0, 100_000), [])
    if mode == "REDUCING":
        rc.observe(snap_at(T0 + timedelta(hours=1), 96_900), [])  # -3.1% on the day: the daily limit
    else:
        rc.journal.set_state(COMMAND_KEY, {"command": "halt", "id": "h"})
        rc.observe(snap_at(T0 + timedelta(hours=1), 100_000), [])
    assert rc.mode.name == mode
    kinds = [k for k in IntentKind if k not in (IntentKind.ENTER, IntentKind.HEDGE)]
    decisions = [entry_decision(), *(_decision(k) for k in kinds),
                 Decision(Step.HEDGE, "SH", "hedge", "test", Intent(IntentKind.HEDGE, "SH", ()))]
    out = rc.review(decisions, snap_at(T0 + timedelta(hours=1), 96_900))
    passed = {d.intent.kind for d in out if d.intent is not None}
    assert passed == allowed  # never an entry or a hedge; HALTED also stops trims, partials and unwinds
    assert all(d.action == "denied" for d in out if d.intent is None)
