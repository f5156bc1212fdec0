"""Which records become which alerts: rows produced by the real risk controller, planners and executor,
passed through the decision log's subscriber hook, then `event_for`; closed trades from the real ledger;
order outcomes from the journal the executor wrote. The catalogue and the README's table agree."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest

from ops.alert_events import EVENTS, RULES, event_for
from ops.alerts import LEVELS
from ops.strategy_alerts import StrategyAlerts
from tests.builders import NOW, Fixed, snapshot
from tests.conftest import ROOT
from tests.risk.helpers import T0, entry_decision, s, snap_at
from tests.test_executor import World, bracket, ok, refused
from trading.execution.resize import BrokerPosition
from trading.intents import Decision, Intent, IntentKind, Step
from trading.order_ids import OrderIds
from trading.records.decision_log import DecisionLog
from trading.records.journal import Journal
from trading.records.ledger import Fill, Ledger
from trading.risk.controller import COMMAND_KEY, RiskController
from trading.steps.entries import plan_entries
from trading.steps.planner import plan_iteration
from trading.steps.protection import plan_protection


class RecordingAlerter:
    """The alerter's interface, recording what it was asked to send (delivery is tests/ops/test_alerts.py's)."""

    enabled = True

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def emit(self, event, level, text, key=None, now=None, always=False, title=None) -> str:
        self.sent.append(dict(event=event, level=level, text=text, key=key, title=title, always=always))
        return "queued"

    def flush(self) -> None:
        pass

    def events(self) -> list[tuple[str, str]]:
        return [(a["event"], a["level"]) for a in self.sent]


def rows_of(decisions: list[Decision], now=T0) -> list[dict]:
    """The rows the decision log builds and hands its subscribers."""
    log, rows = DecisionLog(Journal()), []
    log.subscribe(rows.append)
    log.record_iteration(now, decisions, None)
    return rows


def events(rows: list[dict]) -> list[tuple[str, str, str]]:
    return [(e.event, e.level, e.key) for e in map(event_for, rows) if e is not None]


# ---------------------------------------------------------------------------------------------- risk states
def test_circuit_breaker_then_its_end_from_the_risk_controller():
    rc = RiskController(s())
    rc.observe(snap_at(T0 - timedelta(days=1), 100_000), [])
    rc.observe(snap_at(T0, 96_000), [])
    tripped = rows_of(rc.observe(snap_at(T0 + timedelta(hours=1), 94_000), []))
    assert events(tripped) == [("circuit_breaker", "critical", "circuit_breaker")]
    (ev,) = [event_for(r) for r in tripped if event_for(r)]
    assert ev.title == "Circuit breaker" and "until 2024-03-05 15:30" in ev.text and ev.text.startswith("2024-03-05")
    ended = rows_of(rc.observe(snap_at(T0 + timedelta(hours=5), 94_000), []))
    assert events(ended) == [("risk_resumed", "warning", "risk_resumed")]
    assert "circuit_breaker ended" in event_for(ended[0]).text


def test_daily_loss_is_reducing_with_the_rule_and_until_when():
    rc = RiskController(s(circuit_breaker_pct=0))
    rc.observe(snap_at(T0, 100_000), [])
    rows = rows_of(rc.observe(snap_at(T0 + timedelta(hours=1), 96_500), []))
    assert events(rows) == [("risk_reducing", "warning", "risk_reducing")]
    assert "daily_loss: down 3.5% today (limit 3%); until 2024-03-06 00:00" in event_for(rows[0]).text


def test_halt_command_kill_switch_and_resume(tmp_path):
    halt_file = tmp_path / "HALT"
    journal = Journal()
    rc = RiskController(s(kill_switch_file=str(halt_file)), journal)
    rc.observe(snap_at(T0, 100_000), [])
    journal.set_state(COMMAND_KEY, {"command": "halt", "id": "h1"})
    halted = rows_of(rc.observe(snap_at(T0 + timedelta(hours=1), 100_000), []))
    assert events(halted) == [("risk_halted", "critical", "risk_halted")]
    assert "manual: halted by the halt command; until resumed" in event_for(halted[0]).text
    journal.set_state(COMMAND_KEY, {"command": "resume", "id": "r1"})
    assert events(rows_of(rc.observe(snap_at(T0 + timedelta(hours=2), 100_000), []))) == \
        [("risk_resumed", "warning", "risk_resumed")]
    halt_file.write_text("stop")
    rows = rows_of(rc.observe(snap_at(T0 + timedelta(hours=3), 100_000), []))
    assert events(rows) == [("risk_halted", "critical", "risk_halted")] and "kill_switch" in rows[0]["reason"]


# ---------------------------------------------------------------------------------------------- protection
def test_an_unprotected_position_a_software_stop_and_a_position_that_cannot_be_protected():
    snap = snapshot(holdings=[("XOM", 100, 80.0), ("TSLA", 10, 200.0), ("AMD", 0.5, 100.0)],
                    prices={"XOM": 100.0, "TSLA": 180.0, "AMD": 101.0})
    rows = rows_of(plan_protection(snap, s(), OrderIds("combined", NOW)).decisions, NOW)
    assert events(rows) == [("protection_failed", "critical", "protection_failed:AMD"),
                            ("software_stop", "critical", "software_stop:TSLA"),
                            ("unprotected", "warning", "unprotected:XOM")]
    xom = event_for(rows[-1])
    assert xom.title == "Position unprotected: XOM" and "no server-side protection (+25.0%): OCO 100 sh" in xom.text


def protected_world(answer) -> tuple[World, RecordingAlerter, StrategyAlerts]:
    """Step 1 protects an unprotected AAPL through the executor, the broker answering `answer`."""
    w, alerter = World(), RecordingAlerter()
    alerts = StrategyAlerts(alerter, w.journal, lambda: NOW).attach(w.log, w.ledger)
    w.venue.answers = [answer]
    w.venue.hold("AAPL", BrokerPosition(10, 10))
    snap = snapshot(holdings=[("AAPL", 10, 100.0)], prices={"AAPL": 105.0})
    for d in plan_protection(snap, s(), OrderIds("combined", NOW)).decisions:
        w.log.record(NOW, d)
        if d.intent is not None:
            w.executor.execute(d.intent, snap)
    alerts.end_iteration(NOW)
    return w, alerter, alerts


def test_protection_placed_is_read_from_the_journal_once_the_oco_was_accepted():
    _, alerter, _ = protected_world(ok("b-1"))
    assert alerter.events() == [("unprotected", "warning"), ("protection_placed", "info")]
    assert re.search(r"AAPL: OCO 10 sh, stop 95\.0+, target 115\.0+", alerter.sent[1]["text"])


def test_protection_failed_carries_alpacas_message():
    _, alerter, alerts = protected_world(refused("rejected by Alpaca (403: insufficient qty available for order)"))
    assert ("protection_failed", "critical") in alerter.events()
    failed = next(a for a in alerter.sent if a["event"] == "protection_failed")
    assert "rejected by Alpaca (403: insufficient qty available for order)" in failed["text"]
    assert alerts.outcomes.pending == {}


def test_a_rejected_entry_is_order_rejected_with_alpacas_message():
    w, alerter = World(), RecordingAlerter()
    alerts = StrategyAlerts(alerter, w.journal, lambda: NOW).attach(w.log, w.ledger)
    w.venue.answers = [refused('rejected by Alpaca (422: asset "AAPL" is not tradable)')]
    d = Decision(Step.ENTRY, "AAPL", "enter", "RSI 22", Intent(IntentKind.ENTER, "AAPL", (bracket(),)))
    w.log.record(NOW, d)
    w.executor.execute(d.intent, snapshot(prices={"AAPL": 105.0}))
    alerts.end_iteration(NOW)
    assert alerter.events() == [("order_rejected", "warning")]
    assert alerter.sent[0]["title"] == "Order rejected: AAPL"
    assert 'enter order combined-AAPL-enter' in alerter.sent[0]["text"]
    assert alerter.sent[0]["text"].endswith('rejected by Alpaca (422: asset "AAPL" is not tradable)')


# ---------------------------------------------------------------------------------------------- data, model
def test_a_stale_feed_is_one_stale_data_alert_and_the_denied_entries_share_its_key():
    snap = snapshot(prices={"JPM": {"close": 150.0, "rsi": 20.0, "atr": 2.0}}, cash=100_000)
    stale = "the data feed's newest bar started 2024-03-05 08:00, 3.5 bar periods of session ago (STALE_BARS=2)"
    snap = dataclasses.replace(snap, notes=(stale,), feed_stale=stale)
    plan = plan_iteration(snap, s(universe="JPM", breadth_entry_gate=False), Fixed(0.9))
    reviewed = RiskController(s()).review(plan.decisions, snap)
    found = events(rows_of(reviewed, NOW))
    assert found == [("stale_data", "warning", "stale_data"), ("stale_data", "warning", "stale_data")]


class StaleModel(Fixed):
    def gate(self, now):
        return "the meta-model is 45 days old (> MAX_MODEL_AGE_DAYS=30)"


def test_a_stale_model_blocking_entries_and_a_failing_one_are_model_blocked():
    snap = snapshot(prices={"JPM": {"close": 150.0, "rsi": 20.0, "atr": 2.0}}, cash=100_000)
    ids = OrderIds("combined", NOW)
    stale = plan_entries(snap, s(universe="JPM"), StaleModel(0.9), 50_000, set(), ids)
    broken = plan_entries(snap, s(universe="JPM"), Fixed("not a number"), 50_000, set(), ids)
    assert events(rows_of(stale + broken, NOW)) == [("model_blocked", "warning", "model_blocked")] * 2


def test_entries_on_the_rule_score_while_the_model_has_decayed_are_an_alert():
    note = Decision(Step.ENTRY, None, "fallback", "the last 30 trades ... decayed: entries judged by the rule-based "
                    "score meanwhile (MODEL_DEGRADED_ACTION=fallback)", level="warning", data={"gate": "model"})
    assert events(rows_of([note], NOW)) == [("model_fallback", "warning", "model_fallback")]


# ---------------------------------------------------------------------------------------------- outage
def test_broker_outage_notes_carry_their_action_and_need_no_text_parsing():
    log, alerter = DecisionLog(Journal()), RecordingAlerter()
    StrategyAlerts(alerter, log.journal, lambda: NOW).attach(log, Ledger())
    log.note(NOW, "plan", "broker unreachable, skipping this iteration: 503", "warning", action="outage")
    log.note(NOW, "plan", "broker answering again after 2 skipped iteration(s)", action="outage_end")
    log.note(NOW, "plan", "broker unreachable mid-intent: just text, no action", "warning")
    assert alerter.events() == [("broker_outage", "critical"), ("broker_back", "warning")]
    assert [r["action"] for r in log.journal.frame("decisions").to_dict("records")] == ["outage", "outage_end", "note"]


def test_a_failing_subscriber_is_logged_and_the_decision_still_recorded(caplog):
    log = DecisionLog(Journal())
    log.subscribe(lambda row: 1 / 0)
    log.record(NOW, entry_decision())
    assert len(log.journal.frame("decisions")) == 1 and "decision subscriber" in caplog.text


# ---------------------------------------------------------------------------------------------- fills
@pytest.mark.parametrize("role, price, event, level, words", [
    ("stop", 95.0, "stop_filled", "warning", "stop filled, 10 sh 100.00 -> 95.00: P&L -$50.00 (-5.0%, -1.00R)"),
    ("target", 115.0, "take_profit_filled", "info",
     "take-profit filled, 10 sh 100.00 -> 115.00: P&L +$150.00 (+15.0%, +3.00R)"),
    ("trim", 110.0, None, None, None),
])
def test_stop_and_take_profit_fills_from_the_ledger_with_pnl_and_r(role, price, event, level, words):
    ledger, alerter = Ledger(journal=Journal()), RecordingAlerter()
    StrategyAlerts(alerter, ledger.journal, lambda: NOW).attach(DecisionLog(), ledger)
    ledger.pending_levels["AAPL"] = (95.0, 115.0)
    ledger.record_fill(Fill(NOW, "AAPL", "buy", 10, 100.0, "entry", "o1"))
    ledger.record_fill(Fill(NOW + timedelta(hours=3), "AAPL", "sell", 10, price, role, "o2"))
    if event is None:
        assert alerter.sent == []
        return
    (a,) = alerter.sent
    assert (a["event"], a["level"], a["title"]) == (event, level, f"{EVENTS[event].title}: AAPL")
    assert a["text"] == f"2024-03-05 13:30 AAPL: {words}"


# ---------------------------------------------------------------------------------------------- the catalogue
def test_every_rule_names_a_catalogued_event_and_every_event_has_a_level():
    assert {r.event for r in RULES} <= set(EVENTS)
    assert all(spec.level in LEVELS for spec in EVENTS.values())


def test_the_readme_lists_every_event_with_its_level():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Alerts", 1)[1].split("\n## ", 1)[0]
    table = dict(re.findall(r"^\| `(\w+)` \| (\w+)", section, re.M))
    assert table == {name: spec.level for name, spec in EVENTS.items()}

