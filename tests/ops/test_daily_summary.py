"""The daily summary from a journal (equity, trades, positions, gates), sent once per trading day after the
close; the model's age; and the launcher's start and stop alerts with a masked account."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from broker.errors import BrokerUnavailable
from ops.alerts import Alerter
from ops.daily_summary import daily_summary, last_sample_day
from ops.strategy_alerts import StrategyAlerts
from tests.ops.receiver import Receiver
from tests.ops.test_alert_events import RecordingAlerter
from trading.intents import Decision, Step
from trading.records.decision_log import DecisionLog
from trading.records.journal import Journal
from trading.records.ledger import Fill, Ledger
from trading.settings import Settings

NY = ZoneInfo("America/New_York")


def at(day: int, hour: int, minute: int = 30) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=NY)


def sample(t: datetime, pv: float, cash: float, mode: str = "ACTIVE") -> dict:
    return dict(time=t, portfolio_value=pv, cash=cash, long_value=pv - cash, inverse_value=0.0, positions=2,
                risk_mode=mode)


def trade(ledger: Ledger, sym: str, qty: float, entry: float, levels: tuple, opened: datetime,
          exit_price: float | None = None, role: str = "stop", closed: datetime | None = None) -> None:
    ledger.pending_levels[sym] = levels
    ledger.record_fill(Fill(opened, sym, "buy", qty, entry, "entry", f"{sym}-in"))
    if exit_price is not None:
        ledger.record_fill(Fill(closed, sym, "sell", qty, exit_price, role, f"{sym}-out"))


@pytest.fixture
def journal() -> Journal:
    """Monday 4 and Tuesday 5 March 2024: the summary is about Tuesday."""
    j = Journal()
    log, ledger = DecisionLog(j), Ledger(journal=j)
    log.record_iteration(at(4, 15), [Decision(Step.ENTRY, "NVDA", "skip", "RSI 20, confidence 0.4 < 0.6",
                                              data={"gate": "confidence"})], sample(at(4, 15), 100_000, 50_000))
    trade(ledger, "AAPL", 10, 100.0, (95.0, 115.0), at(4, 10), 95.0, "stop", at(4, 14))  # Monday's: not in it
    log.record_iteration(at(5, 9), [
        Decision(Step.ENTRY, "NVDA", "skip", "RSI 20, confidence 0.4 < 0.6", data={"gate": "confidence"}),
        Decision(Step.ENTRY, "AMD", "skip", "RSI 25, confidence 0.5 < 0.6", data={"gate": "confidence"}),
    ], sample(at(5, 9), 100_500, 50_000))
    log.record_iteration(at(5, 12), [
        Decision(Step.ENTRY, "JPM", "denied", "buy 20 | risk: denied by stale_data: no bars",
                 data={"gate": "stale_data", "verdict": "deny"}),
        Decision(Step.ENTRY, None, "blocked", "3 candidate(s) but the meta-model is 45 days old", level="warning"),
    ], sample(at(5, 12), 100_900, 55_000))
    trade(ledger, "MSFT", 10, 100.0, (95.0, 115.0), at(5, 9), 115.0, "target", at(5, 11))
    trade(ledger, "JPM", 20, 50.0, (47.5, 57.5), at(5, 9), 47.5, "stop", at(5, 13))
    trade(ledger, "XOM", 100, 80.0, (76.0, 92.0), at(5, 10))
    ledger.open_lot("AMD", 5, 100.0, at(5, 10), "legacy")
    ledger.update("AMD")  # written to the journal: a position with no stop on record
    log.record_iteration(at(5, 15), [], sample(at(5, 15), 101_250.5, 60_000.25, "REDUCING"))
    return j


def test_the_summary_of_a_day_from_the_journal(journal):
    assert last_sample_day(journal).isoformat() == "2024-03-05"
    assert daily_summary(journal, last_sample_day(journal)) == "\n".join([
        "Daily summary Tue 2024-03-05",
        "Equity $101,250.50, day P&L +$1,250.50 (+1.25%) vs the previous close $100,000.00; cash $60,000.25; "
        "risk REDUCING",
        "Trades closed: 2 (1 won), P&L +$100.00",
        "  MSFT take_profit: 10 sh 100.00 -> 115.00, +$150.00, +3.00R",
        "  JPM stop: 20 sh 50.00 -> 47.50, -$50.00, -1.00R",
        "Open positions: 2",
        "  AMD 5 sh @ 100.00 (legacy): NO STOP on record",
        "  XOM 100 sh @ 80.00 (entry): stop 76.00, target 92.00",
        "Entries blocked or shrunk, per gate: confidence 2, stale_data 1, model (whole iteration) 1",
    ])


def test_a_first_day_compares_with_its_first_sample_and_an_empty_day_says_so():
    j = Journal()
    log = DecisionLog(j)
    log.record_iteration(at(5, 9), [], sample(at(5, 9), 100_000, 100_000))
    log.record_iteration(at(5, 15), [], sample(at(5, 15), 99_000, 100_000))
    text = daily_summary(j, last_sample_day(j))
    assert "day P&L -$1,000.00 (-1.00%) vs the day's first sample $100,000.00" in text
    assert text.endswith("Trades closed: none\nOpen positions: none\nEntries blocked: none")
    assert "no equity sample that day" in daily_summary(j, at(6, 9).date())


def test_the_summary_is_sent_once_per_trading_day_even_across_a_restart(journal):
    first = RecordingAlerter()
    alerts = StrategyAlerts(first, journal, lambda: at(5, 16, 5))
    assert alerts.market_closed(at(5, 16, 5)) == "queued"
    assert alerts.market_closed(at(5, 20)) is None
    restarted = RecordingAlerter()
    assert StrategyAlerts(restarted, journal, lambda: at(5, 21)).market_closed(at(5, 21)) is None
    (sent,) = first.sent
    assert (sent["event"], sent["level"], sent["always"], sent["key"]) == \
        ("daily_summary", "info", True, "daily_summary:2024-03-05")
    assert sent["text"].startswith("Daily summary Tue 2024-03-05") and restarted.sent == []


def test_no_summary_of_a_session_long_past():
    j = Journal()
    DecisionLog(j).record_iteration(at(5, 15), [], sample(at(5, 15), 100_000, 100_000))
    assert StrategyAlerts(RecordingAlerter(), j, lambda: at(12, 20)).market_closed(at(12, 20)) is None


def test_a_stale_model_is_announced_at_start_and_after_each_close(journal):
    model = SimpleNamespace(name="model:meta_model.joblib", created=datetime(2024, 1, 1, tzinfo=NY),
                            max_age_days=30.0, block_when_stale=False)
    alerter = RecordingAlerter()
    alerts = StrategyAlerts(alerter, journal, lambda: at(5, 9), scorer=model).attach(DecisionLog(journal), Ledger())
    alerts.market_closed(at(5, 16, 5))
    stale = [a for a in alerter.sent if a["event"] == "model_stale"]
    assert len(stale) == 2 and stale[0]["text"] == ("model:meta_model.joblib is 64 days old (MAX_MODEL_AGE_DAYS=30); "
                                                    "entries still use it. Retrain with: python -m models.train")
    fresh = SimpleNamespace(name="m", created=at(1, 9), max_age_days=30.0)
    quiet = RecordingAlerter()
    StrategyAlerts(quiet, journal, lambda: at(5, 9), scorer=fresh).attach(DecisionLog(journal), Ledger())
    assert quiet.sent == []


class Gateway:
    def __init__(self, account=None):
        self._account = account

    def account(self):
        if self._account is None:
            raise BrokerUnavailable("account: no answer")
        return self._account


def test_start_and_stop_carry_paper_or_live_and_a_masked_account():
    receiver = Receiver().start()
    try:
        settings = Settings.defaults(alert_urls=receiver.url, alpaca_paper=False)  # LIVE: start is a warning
        alerter = Alerter.from_settings(settings, Journal(), connect_timeout=0.5, read_timeout=0.5)
        alerts = StrategyAlerts(alerter, Journal(), lambda: at(5, 9))
        account = SimpleNamespace(account_number="987654321098", equity="100000", cash="40000.5", status="ACTIVE")
        alerts.started(settings, Gateway(account), dry_run=False)
        alerter.emit("risk_halted", "critical", "halted; account 987654321098 is flagged")  # masked afterwards too
        alerts.stopped(RuntimeError("lost the clock"), timeout=3)
        by = {m["title"]: m for m in receiver.messages}
        assert set(by) == {"[LIVE] Bot started", "[LIVE] Bot stopped", "[LIVE] risk halted"}
        assert by["[LIVE] Bot started"]["message"] == ("bot started: Alpaca LIVE MONEY account ********1098 | equity "
                                                       "$100,000.00 | cash $40,000.50 | status ACTIVE")
        assert by["[LIVE] Bot started"]["type"] == "warning" and by["[LIVE] Bot stopped"]["type"] == "failure"
        assert by["[LIVE] Bot stopped"]["message"] == ("bot stopped by an error (RuntimeError: lost the clock); "
                                                       "Alpaca LIVE MONEY account ********1098 | equity $100,000.00 | "
                                                       "cash $40,000.50 | status ACTIVE")
        assert "987654321098" not in " ".join(m["message"] for m in receiver.messages)
        assert not alerter._worker.is_alive(), "stopped() closes the worker"
    finally:
        receiver.stop()


def test_start_without_an_answer_from_the_broker_still_announces_itself():
    alerter = RecordingAlerter()
    alerts = StrategyAlerts(alerter, Journal(), lambda: at(5, 9))
    alerts.started(Settings.defaults(), Gateway(None), dry_run=True)
    assert alerter.sent[0]["text"] == "bot started: Alpaca PAPER account (not read: no answer)"
    assert alerter.sent[0]["level"] == "info"


@pytest.mark.parametrize("fails", [False, True])
def test_the_launcher_announces_the_stop_when_lumibots_trader_returns_or_fails(monkeypatch, fails):
    import lumibot.traders

    from broker import launcher

    stopped: list = []
    instance = SimpleNamespace(alerts=SimpleNamespace(stopped=stopped.append))

    class Trader:
        def add_strategy(self, strategy):
            assert strategy is instance

        def run_all(self):
            if fails:
                raise RuntimeError("crashed")

    monkeypatch.setattr(lumibot.traders, "Trader", Trader)
    monkeypatch.setattr(launcher, "build_strategy", lambda *a, **kw: instance)
    monkeypatch.setattr(launcher.signal, "signal", lambda *a: None)
    if fails:
        with pytest.raises(RuntimeError):
            launcher.run(Settings.defaults(), None, None, False)
        assert [str(e) for e in stopped] == ["crashed"]
    else:
        assert launcher.run(Settings.defaults(), None, None, False) == 0
        assert stopped == [None]


def test_a_drifted_or_decayed_model_is_announced_after_each_close(journal, tmp_path):
    import numpy as np
    import pandas as pd

    from models.drift import reference
    from models.features import FEATURE_NAMES
    from models.meta_model import load_meta_model
    from tests.test_meta_model import PARAMS, constant_model

    rng = np.random.default_rng(3)
    train_x = pd.DataFrame(rng.normal(0, 1, (1_000, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    path = constant_model(tmp_path, (0.5, 0.5, 0.5), created=at(1, 9), drift_reference=reference(train_x),
                          live_expectation={"mean": 0.2, "sd": 1.2, "n": 1_000})
    model = load_meta_model(path, PARAMS, max_age_days=30)
    model.watch.action = "stop"
    alerter = RecordingAlerter()
    alerts = StrategyAlerts(alerter, journal, lambda: at(5, 9), scorer=model).attach(DecisionLog(journal), Ledger())
    assert alerter.sent == [], "a healthy model: nothing to say"
    model.assess(train_x.iloc[:300] + 2.0)  # every feature two standard deviations off
    model.observe_results([-0.6] * 30)
    alerts.market_closed(at(5, 16, 5))
    sent = {a["event"]: a for a in alerter.sent}
    assert set(sent) >= {"model_drift", "model_decayed"}
    assert "features drifted" in sent["model_drift"]["text"]
    assert "new entries are blocked (MODEL_DEGRADED_ACTION=stop)" in sent["model_decayed"]["text"]
