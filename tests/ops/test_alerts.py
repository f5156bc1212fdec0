"""The Alerter through real apprise to a real HTTP receiver on loopback: what arrives, what is held back
(level, cooldown), what a dead or hanging channel costs the caller (nothing) and the worker (a few
attempts, one log line), a full queue, and that no secret or account number ever leaves."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from ops.alerts import Alerter, NullAlerter
from tests.ops.receiver import Receiver, dead_url
from trading.records.journal import Journal
from trading.settings import Settings, SettingsError

T0 = datetime(2024, 3, 5, 10, 30, tzinfo=UTC)
FAST = dict(connect_timeout=0.2, read_timeout=0.2, backoff_seconds=0.01)  # a dead channel fails in well under 1 s


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def alerter(urls: str, journal=None, level: str = "info", cooldown: float = 30.0, **kw) -> Alerter:
    settings = Settings.defaults(alert_urls=urls, alert_level=level, alert_cooldown_minutes=cooldown)
    a = Alerter.from_settings(settings, journal, **{**FAST, **kw})
    assert isinstance(a, Alerter)
    return a


def statuses(journal: Journal) -> list[tuple[str, str]]:
    return [(r.event, r.status) for r in journal.frame("alerts").itertuples()]


def finish(a: Alerter, timeout: float = 0.1) -> None:
    """close(timeout), then wait for the worker to let go of a slow channel, so no line of it leaks into the
    next test's log."""
    a.close(timeout)
    a._worker.join(5)
    assert not a._worker.is_alive()


def failures(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "trader.alerts"]


def test_each_level_arrives_with_its_title_body_and_apprise_type(receiver):
    journal = Journal()
    a = alerter(receiver.url, journal)
    assert a.emit("risk_halted", "critical", "manual: halted by the halt command; until resumed", title="HALTED",
                  now=T0) == "queued"
    a.emit("unprotected", "warning", "XOM: no server-side protection", key="unprotected:XOM", now=T0)
    a.emit("bot_started", "info", "bot started: Alpaca PAPER account", now=T0)
    assert receiver.wait(3)
    a.close(2)
    by_title = {m["title"]: m for m in receiver.messages}
    assert set(by_title) == {"[paper] HALTED", "[paper] unprotected", "[paper] bot started"}
    assert by_title["[paper] HALTED"]["message"] == "manual: halted by the halt command; until resumed"
    assert [by_title[t]["type"] for t in ("[paper] HALTED", "[paper] unprotected", "[paper] bot started")] == \
        ["failure", "warning", "info"]
    assert {m["path"] for m in receiver.messages} == {"/alerts"}
    assert statuses(journal) == [("risk_halted", "sent"), ("unprotected", "sent"), ("bot_started", "sent")]


def test_below_alert_level_nothing_is_sent_or_journaled_but_always_goes_through(receiver):
    journal = Journal()
    a = alerter(receiver.url, journal, level="warning")
    assert a.emit("protection_placed", "info", "XOM: OCO placed", now=T0) == "filtered"
    assert a.emit("stale_data", "warning", "feed behind", now=T0) == "queued"
    assert a.emit("daily_summary", "info", "Daily summary", now=T0, always=True) == "queued"
    a2 = alerter(receiver.url, level="critical")
    assert a2.emit("stale_data", "warning", "feed behind", now=T0) == "filtered"
    assert a2.emit("broker_outage", "critical", "Alpaca down", now=T0) == "queued"
    assert receiver.wait(3)
    a.close(2)
    a2.close(2)
    assert sorted(m["message"] for m in receiver.messages) == ["Alpaca down", "Daily summary", "feed behind"]
    assert statuses(journal) == [("stale_data", "sent"), ("daily_summary", "sent")]


def test_one_alert_per_key_per_cooldown_and_the_suppressed_are_journaled(receiver):
    journal = Journal()
    a = alerter(receiver.url, journal, cooldown=30)
    outcomes = [a.emit("broker_outage", "critical", f"down #{i}", now=T0 + timedelta(minutes=m))
                for i, m in enumerate((0, 10, 29.9, 30, 45))]
    assert outcomes == ["queued", "suppressed", "suppressed", "queued", "suppressed"]
    assert a.emit("unprotected", "warning", "XOM", key="unprotected:XOM", now=T0) == "queued"
    assert a.emit("unprotected", "warning", "MSFT", key="unprotected:MSFT", now=T0) == "queued", "another key"
    assert receiver.wait(4)
    a.close(2)
    assert sorted(m["message"] for m in receiver.messages) == ["MSFT", "XOM", "down #0", "down #3"]
    assert [s for e, s in statuses(journal) if e == "broker_outage"] == \
        ["sent", "suppressed", "suppressed", "sent", "suppressed"]


def timed_emits(a: Alerter, n: int = 20) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        a.emit("broker_outage", "critical", f"#{i}", key=f"k{i}", now=T0)
        out.append(time.perf_counter() - t)
    return out


def test_a_dead_channel_costs_the_caller_nothing_and_is_dropped_after_its_attempts_with_one_line(caplog):
    caplog.set_level(logging.WARNING, logger="trader.alerts")
    journal = Journal()
    a = alerter(dead_url(), journal, attempts=3)
    t = time.perf_counter()
    a.emit("broker_outage", "critical", "Alpaca down", now=T0)
    first = time.perf_counter() - t
    a.close(5)
    assert first < 0.005, f"emit took {first * 1e3:.2f} ms"
    assert failures(caplog) == ["alert broker_outage not delivered to ALERT_URLS #1 (json://) after 3 attempt(s): "
                                "dropped"]
    assert statuses(journal) == [("broker_outage", "failed")]


def test_a_hanging_channel_is_given_up_at_the_read_timeout_and_never_slows_emit(caplog):
    caplog.set_level(logging.WARNING, logger="trader.alerts")
    slow = Receiver(delay_s=1.5).start()
    try:
        a = alerter(slow.url, attempts=2, queue_size=50)
        costs = timed_emits(a, 20)  # the worker is stuck on the first one meanwhile
        assert statistics.median(costs) < 0.001 and max(costs) < 0.02, [f"{c * 1e3:.2f} ms" for c in costs]
        assert slow.wait(2, timeout=3, hits=True)  # two attempts at the first alert, each cut at 0.2 s
        t = time.perf_counter()
        while not failures(caplog) and time.perf_counter() - t < 3:
            time.sleep(0.01)
        assert failures(caplog)[:1] == ["alert broker_outage not delivered to ALERT_URLS #1 (json://) after 2 "
                                        "attempt(s): dropped"]
        assert slow.messages == []  # it never answered in time
        finish(a)
    finally:
        slow.stop()


def test_a_full_queue_drops_with_one_line_and_never_blocks(caplog):
    caplog.set_level(logging.WARNING, logger="trader.alerts")
    slow = Receiver(delay_s=1.0).start()
    try:
        journal = Journal()
        a = alerter(slow.url, journal, queue_size=1, attempts=1, read_timeout=0.5)
        a.emit("e", "critical", "first", key="1", now=T0)
        assert slow.wait(1, hits=True)  # the worker holds the first: the queue is empty again
        assert a.emit("e", "critical", "second", key="2", now=T0) == "queued"  # fills the queue
        t = time.perf_counter()
        assert a.emit("e", "critical", "third", key="3", now=T0) == "dropped"
        assert time.perf_counter() - t < 0.005
        assert failures(caplog) == ["alert queue full (1 waiting): e alert dropped"]
        assert [s for _, s in statuses(journal)][2] == "dropped"
        finish(a)
    finally:
        slow.stop()


def test_no_secret_and_no_full_account_number_reaches_the_receiver_or_the_journal(receiver):
    token_url = f"{receiver.url}?token=chan-secret-4242abcd"
    settings = Settings.defaults(alert_urls=token_url, alert_level="info", alpaca_api_key="PKTESTKEY123456789",
                                 alpaca_api_secret="sEcReT/with+chars0123456789",
                                 api_token="api-token-0123456789abcdef")
    journal = Journal()
    a = Alerter.from_settings(settings, journal, **FAST)
    a.add_account("123456789012")
    text = ("boom: APIError for key PKTESTKEY123456789 secret sEcReT/with+chars0123456789, token "
            "api-token-0123456789abcdef, account 123456789012 and paper account PA3ABCDEFGH1, url " + token_url)
    a.emit("bot_stopped", "critical", text, now=T0, title="account 123456789012 stopped")
    assert receiver.wait(1)
    a.close(2)
    sent = receiver.messages[0]["title"] + " " + receiver.messages[0]["message"]
    stored = " ".join(journal.frame("alerts")["text"])
    for leaked in ("PKTESTKEY123456789", "sEcReT/with+chars0123456789", "api-token-0123456789abcdef", "123456789012",
                   "PA3ABCDEFGH1", "chan-secret-4242abcd", "127.0.0.1:"):
        assert leaked not in sent and leaked not in stored, leaked
    assert "********9012" in sent and "********GH1" not in sent and "********FGH1" in sent
    assert receiver.messages[0]["title"] == "[paper] account ********9012 stopped"


def test_no_alert_urls_is_the_null_alerter_with_no_thread():
    before = threading.active_count()
    a = Alerter.from_settings(Settings.defaults(), Journal())
    assert isinstance(a, NullAlerter) and not a.enabled
    assert a.emit("risk_halted", "critical", "x") == "off"
    a.close()
    assert threading.active_count() == before


def test_a_url_apprise_cannot_use_is_a_settings_error_that_does_not_echo_it():
    with pytest.raises(SettingsError) as err:
        Alerter.from_settings(Settings.defaults(alert_urls="json://127.0.0.1:1/ok, nosuch://tok3n-s3cret-value/x"))
    assert "ALERT_URLS #2 (nosuch://)" in str(err.value) and "tok3n" not in str(err.value)


def test_close_sends_what_is_queued_then_stops_the_worker(receiver):
    a = alerter(receiver.url)
    for i in range(5):
        a.emit("e", "warning", f"#{i}", key=str(i), now=T0)
    a.close(3)
    assert sorted(m["message"] for m in receiver.messages) == [f"#{i}" for i in range(5)]
    assert not a._worker.is_alive()


def test_close_with_a_channel_still_hanging_drops_what_is_queued_with_one_line(caplog):
    caplog.set_level(logging.WARNING, logger="trader.alerts")
    slow = Receiver(delay_s=2.0).start()
    try:
        journal = Journal()
        a = alerter(slow.url, journal, attempts=1, read_timeout=1.5)
        for i in range(3):
            a.emit("e", "critical", f"#{i}", key=str(i), now=T0)
        assert slow.wait(1, hits=True)
        t = time.perf_counter()
        a.close(0.3)
        assert time.perf_counter() - t < 0.6
        assert failures(caplog) == ["alerts: 2 alert(s) not sent at shutdown (a channel did not answer in time)"]
        assert [s for _, s in statuses(journal)] == ["queued", "dropped", "dropped"]  # the first is still in flight
        a._worker.join(3)
        assert not a._worker.is_alive(), "the worker ends once its channel lets go"
    finally:
        slow.stop()


def test_a_bad_url_stops_the_live_bot_before_it_is_built(monkeypatch):
    from broker import launcher

    monkeypatch.setattr(launcher, "lumibot_broker", lambda *a: pytest.fail("built despite a bad ALERT_URLS"))
    with pytest.raises(SettingsError, match=r"ALERT_URLS #1 \(nosuch://\)"):
        launcher.build_strategy(Settings.defaults(alert_urls="nosuch://x"), None, None, False)
