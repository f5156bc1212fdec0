"""Alerts out through apprise, without ever making trading wait.

`emit` only filters by level, deduplicates (one alert per key per ALERT_COOLDOWN_MINUTES), scrubs the
text and puts it on a bounded queue (put_nowait: a full queue drops the alert with one log line). A
daemon worker sends each alert to every channel, one apprise object per URL so that a retry never
repeats a channel that already has the message; a failing or slow channel is tried a few times with a
short backoff, then the alert is given up for it with one log line. Socket timeouts are short (apprise's
own defaults are 4 s each way and 60 s per service), so a dead receiver holds only the worker, and only
briefly. Every alert is journaled (queued, suppressed, dropped, then sent, partial or failed) so the
dashboard can show what went out. The journal is written on the caller's thread only: the worker hands
back each outcome, which the next emit() or flush() records (the bench measured emit() waiting up to
8 ms for the journal's lock while the worker held it; now it never waits for the worker).
No ALERT_URLS: `NullAlerter`, which does nothing.
"""

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trading.settings import Settings, SettingsError
from utils.redact import Redactor, url_secrets

logger = logging.getLogger("trader.alerts")
LEVELS = {"info": 0, "warning": 1, "critical": 2}
NOTIFY_TYPE = {"info": "info", "warning": "warning", "critical": "failure"}  # apprise's names for them


@dataclass(frozen=True)
class Outgoing:
    alert_id: int | None
    event: str
    level: str
    title: str
    body: str


class Channel:
    """One apprise URL, with short socket timeouts unless the URL sets its own (cto=, rto=)."""

    def __init__(self, url: str, index: int, connect_timeout: float, read_timeout: float) -> None:
        import apprise  # here, not at import: backtests never load it

        # apprise logs each failed attempt (and may name the host); the worker logs one line per alert instead
        apprise_log = logging.getLogger("apprise")
        apprise_log.propagate = False
        if not apprise_log.handlers:
            apprise_log.addHandler(logging.NullHandler())
        self.name = f"ALERT_URLS #{index} ({url.split('://', 1)[0]}://)"  # never the URL: it carries tokens
        asset = apprise.AppriseAsset(async_mode=False, storage_mode="memory",
                                     service_timeout=connect_timeout + read_timeout + 1.0)
        plugin = apprise.Apprise.instantiate(url, asset=asset)
        if plugin is None:
            raise SettingsError(f"{self.name} is not a URL apprise can send to; check it with: apprise -vv -b test "
                                "'URL' (apprise's URL list: https://github.com/caronc/apprise/wiki)")
        if "cto=" not in url:
            plugin.socket_connect_timeout = connect_timeout
        if "rto=" not in url:
            plugin.socket_read_timeout = read_timeout
        if "retry=" not in url:
            plugin.retry = 0  # the worker retries, with its own backoff and one log line
        self._apprise = apprise.Apprise(asset=asset)
        self._apprise.add(plugin)

    def send(self, title: str, body: str, level: str) -> bool:
        return bool(self._apprise.notify(title=title, body=body, notify_type=NOTIFY_TYPE[level]))


def alert_urls(settings: Settings) -> list[str]:
    return [u.strip() for u in settings.alert_urls.reveal().split(",") if u.strip()]


def check_alert_urls(settings: Settings) -> None:
    """SettingsError (exit code 2) for an ALERT_URLS entry apprise cannot send to, before the bot starts
    (the alerter itself is built inside Lumibot's thread, where an error would not stop start-up)."""
    for i, url in enumerate(alert_urls(settings)):
        Channel(url, i + 1, 2.0, 3.0)


class NullAlerter:
    """Alerts off (no ALERT_URLS): every call does nothing."""

    enabled = False

    def emit(self, event: str, level: str, text: str, key: str | None = None, now: datetime | None = None,
             always: bool = False, title: str | None = None) -> str:
        return "off"

    def add_account(self, number: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self, timeout: float = 5.0) -> None:
        pass


class Alerter:
    enabled = True

    def __init__(self, channels: list, journal=None, level: str = "warning", cooldown_minutes: float = 30.0,
                 redact: Redactor | None = None, tag: str = "", queue_size: int = 100, attempts: int = 3,
                 backoff_seconds: float = 0.5, clock: Callable[[], datetime] | None = None) -> None:
        self.channels, self.journal, self.level = channels, journal, level
        self.cooldown = timedelta(minutes=cooldown_minutes)
        self.redact = redact or Redactor()
        self.tag, self.attempts, self.backoff_seconds = tag, attempts, backoff_seconds
        self.clock = clock or (lambda: datetime.now(UTC))
        self._last: dict[str, datetime] = {}  # key -> when its last alert was queued
        self._lock = threading.Lock()  # emit is called from the strategy's thread and the launcher's
        self._queue: queue.Queue[Outgoing | None] = queue.Queue(maxsize=queue_size)
        self._outcomes: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()  # worker -> journal, via flush
        self._give_up_at: float | None = None  # set by close(): past it, what is left is not sent
        self._worker = threading.Thread(target=self._work, name="alerts", daemon=True)
        self._worker.start()

    @classmethod
    def from_settings(cls, settings: Settings, journal=None, **kw) -> "Alerter | NullAlerter":
        """The alerter ALERT_URLS asks for (NullAlerter when it is empty); SettingsError for a URL apprise
        cannot use. `kw`: timeouts (connect_timeout, read_timeout) and the Alerter's own knobs, for tests."""
        urls = alert_urls(settings)
        if not urls:
            return NullAlerter()
        connect, read = kw.pop("connect_timeout", 2.0), kw.pop("read_timeout", 3.0)
        channels = [Channel(u, i + 1, connect, read) for i, u in enumerate(urls)]
        secrets = [s.reveal() for s in (settings.alpaca_api_key, settings.alpaca_api_secret, settings.api_token)]
        redact = Redactor([*secrets, *(part for u in urls for part in url_secrets(u))])
        return cls(channels, journal, settings.alert_level, settings.alert_cooldown_minutes, redact,
                   "paper" if settings.alpaca_paper else "LIVE", **kw)

    def add_account(self, number: str) -> None:
        """An account number that is masked to its last four characters wherever it appears."""
        self.redact.add_account(number)

    # ------------------------------------------------------------------ the caller's side: never blocks
    def emit(self, event: str, level: str, text: str, key: str | None = None, now: datetime | None = None,
             always: bool = False, title: str | None = None) -> str:
        """Queue an alert; returns what became of it: filtered, suppressed, dropped or queued. `always`
        skips the level filter (the daily summary)."""
        if not always and LEVELS[level] < LEVELS[self.level]:
            return "filtered"
        self.flush()
        now = now or self.clock()
        key = key or event
        body = self.redact(text)
        head = self.redact(title or event.replace("_", " "))
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.cooldown:
                self._record(now, event, level, key, body, "suppressed")
                return "suppressed"
            self._last[key] = now
        alert_id = self._record(now, event, level, key, body, "queued")
        try:
            self._queue.put_nowait(Outgoing(alert_id, event, level, f"[{self.tag}] {head}" if self.tag else head,
                                            body))
        except queue.Full:
            logger.warning("alert queue full (%d waiting): %s alert dropped", self._queue.maxsize, event)
            self._update(alert_id, "dropped")
            return "dropped"
        return "queued"

    def close(self, timeout: float = 5.0) -> None:
        """Give the worker up to `timeout` seconds to send what is queued, then stop it."""
        self._give_up_at = time.monotonic() + timeout
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass  # the worker stops at the deadline anyway
        self._worker.join(max(self._give_up_at - time.monotonic(), 0.0))
        left = []
        while self._worker.is_alive():  # stuck on a channel past the deadline: what is still queued is lost
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                left.append(item)
                self._done(item, "dropped")
        if self._worker.is_alive():
            with contextlib.suppress(queue.Full):  # the worker ends once its channel lets go (the drain took the first)
                self._queue.put_nowait(None)
        if left:
            logger.warning("alerts: %d alert(s) not sent at shutdown (a channel did not answer in time)", len(left))
        self.flush()

    def flush(self) -> None:
        """Journal what the worker did with the alerts it took (sent, partial, failed, dropped)."""
        while not self._outcomes.empty():
            self._update(*self._outcomes.get_nowait())

    # ------------------------------------------------------------------ the worker's side
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._give_up_at is not None and time.monotonic() > self._give_up_at:
                logger.warning("alerts: shutting down, %s alert not sent", item.event)
                self._done(item, "dropped")
                continue
            delivered = [self._deliver(ch, item) for ch in self.channels]
            self._done(item, "sent" if all(delivered) else "partial" if any(delivered) else "failed")

    def _done(self, item: Outgoing, status: str) -> None:
        if item.alert_id is not None:
            self._outcomes.put((item.alert_id, status))

    def _deliver(self, channel: Channel, item: Outgoing) -> bool:
        tried = 0
        while tried < self.attempts:
            if tried and not self._sleep(self.backoff_seconds * 2 ** (tried - 1)):
                break
            tried += 1
            try:
                if channel.send(item.title, item.body, item.level):
                    return True
            except Exception:  # noqa: BLE001 - a plugin crash is a failed attempt; the worker must keep going
                pass
        logger.warning("alert %s not delivered to %s after %d attempt(s): dropped", item.event, channel.name, tried)
        return False

    def _sleep(self, seconds: float) -> bool:
        """Back off, unless shutting down leaves no time for it (then False: stop retrying)."""
        if self._give_up_at is not None and time.monotonic() + seconds > self._give_up_at:
            return False
        time.sleep(seconds)
        return True

    # ------------------------------------------------------------------ the journal's alerts table
    def _record(self, now: datetime, event: str, level: str, key: str, text: str, status: str) -> int | None:
        if self.journal is None:
            return None
        return self.journal.record_alert(now, event, level, key, text, status)

    def _update(self, alert_id: int | None, status: str) -> None:
        if self.journal is None or alert_id is None:
            return
        try:
            self.journal.update_alert(alert_id, status)
        except Exception as exc:  # noqa: BLE001 - a journal already closed at shutdown: the status is only lost
            logger.debug("alert %s status %s not journaled: %s", alert_id, status, exc)


def send_now(settings: Settings, event, timeout: float = 5.0) -> str:
    """Send one alert (an ops.alert_events.AlertEvent) outside a running bot, waiting up to `timeout` seconds for
    it to go out: for a start that fails before the bot (and its alerter) exists. Never raises; returns whether
    it was queued (emit's answer; the journal-less alerter logs a channel that failed)."""
    try:
        alerter = Alerter.from_settings(settings)
    except SettingsError as exc:  # a URL apprise cannot use: the start's own error is the one to show
        logger.warning("alert not sent: %s", exc)
        return "failed"
    outcome = alerter.emit(event.event, event.level, event.text, key=event.key, title=event.title)
    alerter.close(timeout)
    return outcome

