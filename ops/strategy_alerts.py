"""The bot's alerts wired to its records: the strategy builds one and calls it at these moments.

- `started(...)` once initialised (live): "bot started", paper or LIVE, masked account, equity; the
  launcher calls `stopped(error)` when Lumibot's trader returns, which also closes the alert worker;
- built: subscribes to the decision log (each row through `event_for`), listens to the ledger's closed
  trades (stop and take-profit fills), and checks the meta-model's age once;
- `end_iteration(now)`: what became of the iteration's orders (rejected, protection placed or failed),
  read from the journal once they were sent; and what the alert worker delivered, journaled;
- `market_closed(now)`: the daily summary, once per trading day (remembered in the journal, so a restart
  in the evening does not send it twice), and the model's age again.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from alpaca.common.exceptions import APIError

from broker.errors import BrokerUnavailable
from broker.gateway import AlpacaGateway
from broker.launcher import banner
from ops.alert_events import (
    AlertEvent,
    OrderOutcomes,
    bot_started,
    bot_stopped,
    closed_trade_event,
    event_for,
    make,
    model_stale_event,
    model_watch_events,
)
from ops.daily_summary import daily_summary, last_sample_day
from trading.settings import Settings

logger = logging.getLogger("trader.alerts")
SUMMARY_STATE = "alerts.daily_summary"  # journal state: the last day summarised
SUMMARY_MAX_AGE = timedelta(days=4)  # a summary is about the session just closed (a weekend in between at most)


class StrategyAlerts:
    def __init__(self, alerter, journal, clock: Callable[[], datetime], scorer=None,
                 daily_summary_always: bool = True) -> None:
        self.alerter, self.journal, self.clock, self.scorer = alerter, journal, clock, scorer
        self.daily_summary_always = daily_summary_always
        self.outcomes = OrderOutcomes()
        self.about = ""  # the account line of the start alert, repeated in the stop alert

    @property
    def enabled(self) -> bool:
        return self.alerter.enabled

    def attach(self, decision_log, ledger) -> "StrategyAlerts":
        if self.enabled:  # alerts off: no subscriber, nothing looked at
            decision_log.subscribe(self.on_row)
            ledger.on_close = self.on_closed_trade
            self.check_model(self.clock())
        return self

    def send(self, ev: AlertEvent | None, now: datetime | None = None, always: bool = False) -> str | None:
        if ev is None:
            return None
        return self.alerter.emit(ev.event, ev.level, ev.text, key=ev.key, now=now or self.clock(), always=always,
                                 title=ev.title)

    # ------------------------------------------------------------------ hooks
    def on_row(self, row: dict) -> None:
        self.outcomes.watch(row)
        self.send(event_for(row), row.get("time"))

    def on_closed_trade(self, trade: dict) -> None:
        self.send(closed_trade_event(trade))

    def end_iteration(self, now: datetime) -> None:
        if self.enabled and self.outcomes.pending:
            for ev in self.outcomes.resolve(self.journal):
                self.send(ev, now)
        self.alerter.flush()  # what the worker sent since, into the journal's alerts table

    def check_model(self, now: datetime) -> None:
        for ev in (model_stale_event(self.scorer, now), *model_watch_events(self.scorer)):
            self.send(ev, now)

    def market_closed(self, now: datetime) -> str | None:
        """The daily summary of the session that just closed, once; returns what became of it (None: not due)."""
        if not self.enabled:
            return None
        self.check_model(now)
        day = last_sample_day(self.journal)
        state = self.journal.get_state(SUMMARY_STATE) or {}
        if day is None or state.get("day") == day.isoformat() or now.date() - day > SUMMARY_MAX_AGE:
            return None
        self.journal.set_state(SUMMARY_STATE, {"day": day.isoformat()}, now)
        ev = make("daily_summary", daily_summary(self.journal, day), key=f"daily_summary:{day}")
        return self.send(ev, now, always=self.daily_summary_always)

    # ------------------------------------------------------------------ start and stop
    def started(self, settings: Settings, gateway: AlpacaGateway, dry_run: bool) -> None:
        """"Bot started": the account is read once more for its line, and its number is masked in every alert."""
        if not self.enabled:
            return  # alerts off: not even the account read
        try:
            account = gateway.account()
        except (APIError, BrokerUnavailable):
            self.about = f"Alpaca {'PAPER' if settings.alpaca_paper else 'LIVE MONEY'} account (not read: no answer)"
        else:
            self.alerter.add_account(str(account.account_number))
            self.about = banner(settings, account, dry_run)
        self.send(bot_started(self.about, live=not settings.alpaca_paper))

    def stopped(self, error: Exception | None = None, timeout: float = 5.0) -> None:
        self.send(bot_stopped(self.about, error))
        self.close(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.alerter.close(timeout)
