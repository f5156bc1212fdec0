"""Real time between the hours: the bot's side of the two streams (broker/streams). A mixin of CombinedStrategy.

Trade updates reach the journal, the ledger (open trades, R, MFE/MAE), the decision log and the alerts within
seconds, through the same FillWatcher bookkeeping as the hourly REST reconciliation, so a message seen twice, or
seen by both, is recorded once, and a missed one is caught within the hour. Prices of the symbols held drive
the checks that cannot wait an hour (trading/steps/between_bars.py), reviewed by the risk controller and carried
out by the executor: the one order path. Everything here runs under the iteration lock: a stream message never
acts in the middle of an iteration, it waits for it.
"""

from __future__ import annotations

import math
import time

import pandas as pd

from broker.errors import BrokerUnavailable
from trading.execution.venue import enum_value
from trading.intents import IntentKind
from trading.order_ids import OrderIds, floor_time
from trading.steps.between_bars import plan_between_bars, with_price

FILL_EVENTS = ("fill", "partial_fill")
RETRY_S = 5.0  # a stream action on a symbol (a refused OCO, a software stop) is not retried faster than this
MAX_PRICE_AGE_S = 120.0  # a print older than this (a delayed feed, a backlog) acts on nothing
END_EVENTS = ("canceled", "expired", "rejected", "replaced", "done_for_day")


class StreamingBot:
    streams = None
    stopping = False  # CombinedStrategy sets it on shutdown
    _stream_base = None  # what the broker held after the last iteration (or stream action): prices are checked on it
    _stream_base_stale = False  # a fill or cancel arrived since: positions and orders re-read before the next check

    # ---------------------------------------------------------------- life cycle
    def _start_streams(self) -> None:
        s = self.settings
        if not (self.venue.live and s.streams_enabled):
            return
        if s.alpaca_api_url and not (s.alpaca_stream_url and s.alpaca_data_stream_url):
            # REST goes somewhere else (a proxy, a test server): the streams must not go to Alpaca behind its back
            self.decision_log.note(self.now(), "plan", "streams off: ALPACA_API_URL is overridden but "
                                   "ALPACA_STREAM_URL and ALPACA_DATA_STREAM_URL are not; set both to stream",
                                   "warning")
            return
        from broker.streams.hub import Streams

        self.streams = Streams(s, self.on_stream_update, self.on_stream_price, self.on_stream_state,
                               market_now=self.now, latest_trades=self.venue.gw.latest_trade_times).start()
        self._last_move: dict[str, float] = {}
        self._last_warn: dict[str, float] = {}
        self._last_try: dict[str, float] = {}
        self.decision_log.note(self.now(), "plan", "streams on: trade updates for the account, prices for the "
                               f"symbols held (stop moves at most once per {s.stream_min_interval_seconds:g} s "
                               "per symbol between iterations)")

    def stop_streams(self) -> None:
        if self.streams is not None:
            streams, self.streams = self.streams, None
            streams.stop()

    def _follow_held(self, snap) -> None:
        self._stream_base = snap  # stale stays as it is: a fill during the iteration may postdate this read
        streams = self.streams  # read once: shutdown may clear it from another thread
        if streams is not None:
            self._follow(streams, (sym for sym, h in snap.holdings.items() if h.qty > 0), self.now())

    def _follow(self, streams, symbols, now) -> None:
        try:
            streams.follow(symbols)
        except Exception as exc:  # noqa: BLE001 - a socket closing mid-subscribe must not end an iteration or an update
            self.decision_log.note(now, "plan", f"price stream: subscription change failed ({exc}); tried again "
                                   "after the next iteration", "warning")

    # ---------------------------------------------------------------- trade updates
    def on_stream_update(self, update, received: float) -> None:
        event, order = str(update.event), update.order
        with self._iteration_lock:
            now = self.now()
            if event in FILL_EVENTS or event in END_EVENTS:
                self._stream_base_stale = True  # positions or protection changed: re-read before the next check
            qty = float(update.qty or 0) if event in FILL_EVENTS else 0.0
            note, known = self.venue.watcher.on_update(order, self.ledger, now, event_qty=qty)
            what = f"{order.symbol} {enum_value(order.side)} {order.qty or ''}".strip()
            if note:
                self.decision_log.note(now, "plan", f"fill (stream): {note}")
            if known and event in END_EVENTS and order.client_order_id:
                self.journal.update_order(order.client_order_id, status=event)
            if not known:
                self.decision_log.note(now, "plan", f"stream: {event} for an order this bot did not place "
                                       f"({what}, id {order.id}); recorded, and its fills counted like any order's")
            elif event in ("rejected", "expired"):
                self.decision_log.note(now, "plan", f"stream: {what} order {event} ({order.client_order_id})",
                                       "warning")
            streams = self.streams
            if event in FILL_EVENTS and update.position_qty is not None and streams is not None:
                held = set(streams.prices.symbols)
                (held.add if float(update.position_qty) > 0 else held.discard)(order.symbol)
                self._follow(streams, held, now)
            self.alerts.end_iteration(now)

    # ---------------------------------------------------------------- prices
    def on_stream_price(self, symbol: str, price: float, when) -> None:
        if self._stream_base is None or not math.isfinite(price) or price <= 0:
            return  # no iteration yet: the first one protects everything
        with self._iteration_lock:
            now = self.now()
            if self.stopping:
                return  # shutting down: the shutdown check protects what is held, nothing new starts
            if abs((pd.Timestamp(now) - pd.Timestamp(when)).total_seconds()) > MAX_PRICE_AGE_S:
                return  # a delayed or backlogged print says nothing about the price now
            if self._stream_base_stale:
                try:
                    self._stream_base, self._stream_base_stale = self.venue.after_orders(self._stream_base), False
                except BrokerUnavailable:
                    return
            snap = self._stream_base
            self.ledger.mark({symbol: price}, {symbol: price})  # the high since entry drives the trailing stop
            ids = OrderIds(self.executor.strategy_id, floor_time(now, 1))
            first = plan_between_bars(with_price(snap, symbol, price, now), self.settings, self.ledger.open_trades(),
                                      ids, symbol)
            self._warn(first, symbol, now)
            if not self._wanted(first, symbol):
                return
            try:  # something to do: on what the broker holds now, not on the last view of it
                self._stream_base = self.venue.after_orders(snap)
            except BrokerUnavailable:
                return  # the next iteration re-checks
            fresh = with_price(self._stream_base, symbol, price, now)
            decisions = plan_between_bars(fresh, self.settings, self.ledger.open_trades(), ids, symbol)
            decisions = [d for d in decisions if d.intent is not None and self._wanted([d], symbol)]
            if not decisions:
                return
            decisions = self.risk.review(decisions, fresh)
            self.decision_log.record_iteration(now, decisions, None, f"between iterations: {symbol} at {price:,.2f}"
                                               f" (stream, {pd.Timestamp(when):%H:%M:%S})")
            acted = False
            self.executor.slot = floor_time(now, 1)
            for d in decisions:
                if d.intent is None:
                    continue
                acted = True
                moved = d.intent.kind == IntentKind.MOVE_STOP
                (self._last_move if moved else self._last_try)[symbol] = time.monotonic()
                try:
                    with self._exec_lock:
                        if self.stopping:
                            break
                        self.execute(d.intent, fresh)
                        if self.executor.unsettled:
                            self.executor.settle(fresh)
                except BrokerUnavailable as exc:
                    self.decision_log.note(now, d.step.value, f"{symbol}: broker unreachable mid-intent ({exc}); the "
                                           "next iteration re-checks protection", "warning")
                    break
            self.alerts.end_iteration(now)
            if acted:
                self._stream_base = self._write_status(fresh, now, True)

    def _warn(self, decisions, symbol: str, now) -> None:
        """Warnings without an intent (near the stop, no price data): logged once per interval per symbol."""
        warnings = [d for d in decisions if d.intent is None and d.level == "warning"]
        last = self._last_warn.get(symbol)
        if warnings and (last is None or time.monotonic() - last >= self.settings.stream_min_interval_seconds):
            self._last_warn[symbol] = time.monotonic()
            self.decision_log.record_iteration(now, warnings, None)

    def _wanted(self, decisions, symbol: str) -> bool:
        """An intent worth acting on now: a software stop or protection at most every RETRY_S (one the broker refused
        is not re-sent on every tick); a stop move at most once per STREAM_MIN_INTERVAL_SECONDS."""
        now = time.monotonic()
        for d in decisions:
            if d.intent is None:
                continue
            if d.intent.kind == IntentKind.MOVE_STOP:
                last, wait = self._last_move.get(symbol), self.settings.stream_min_interval_seconds
            else:
                last, wait = self._last_try.get(symbol), RETRY_S
            if last is None or now - last >= wait:
                return True
        return False

    def on_stream_state(self, name: str, up: bool, why: str) -> None:
        with self._iteration_lock:
            self._stream_state(name, up, why)

    def _stream_state(self, name: str, up: bool, why: str) -> None:
        now = self.now()
        if up:
            self.decision_log.note(now, "plan", f"{name} stream back: between iterations again",
                                   action="stream_up")
        else:
            self.decision_log.note(now, "plan", f"{name} stream down ({why}): the hourly iteration carries on alone "
                                   "(it reconciles fills and checks stops from REST) until it is back", "warning",
                                   action="stream_down")
