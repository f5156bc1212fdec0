"""The Alpaca venue: everything read from Alpaca (gateway), fills reconciled from the broker, cancels
confirmed before shares are sold, a failed submit looked up by client order id (never re-sent blindly),
stop legs replaced in place (PATCH), and in a dry run nothing sent at all."""

import dataclasses
import logging
import time

from alpaca.common.exceptions import APIError

from broker.errors import BrokerUnavailable, body_of, is_transient, message_of, status_of
from broker.fills import FillWatcher
from broker.gateway import AlpacaGateway
from broker.live_bars import LiveBars
from broker.reconcile import resolve_in_doubt
from broker.snapshot import build_live_snapshot, open_orders
from strategies.lumibot_orders import to_lumibot
from trading.execution.executor import DEAD
from trading.execution.resize import BrokerPosition
from trading.execution.venue import Submitted
from trading.execution.venue import enum_value as _value
from trading.orders import StopUpdate
from trading.snapshot import Holding, Snapshot

logger = logging.getLogger("trader.strategy")
CANCEL_WAIT_SECONDS = 10.0


class AlpacaVenue:
    live = True

    def __init__(self, strategy, gateway: AlpacaGateway, watcher: FillWatcher, dry_run: bool = False,
                 history_bars: int = 400):
        self.st, self.gw, self.watcher, self.dry_run = strategy, gateway, watcher, dry_run
        self.history_bars = history_bars
        self.cancel_wait_seconds = CANCEL_WAIT_SECONDS
        self.bars = LiveBars(gateway, strategy.bar_period, history_bars)  # kept between iterations
        self._raw_open: list | None = None  # the open orders sync_fills just read, for the snapshot after it
        self._open: dict = {}  # the last snapshot's open orders by id (bracket/OCO groups for cancels)
        self._last_positions: dict | None = None  # dry run: the snapshot's positions stand in for fresh reads

    def snapshot(self, now) -> Snapshot:
        raw, self._raw_open = self._raw_open, None  # one open-orders read per iteration, used once
        snap = build_live_snapshot(self.gw, self.st.settings, now, self.st.bar_period, self.st.features,
                                   self.history_bars, self.st.session, raw_orders=raw, bars=self.bars)
        self._open = {o.order_id: o for o in snap.open_orders}
        if self.dry_run:
            self._last_positions = {sym: BrokerPosition(h.qty, h.qty) for sym, h in snap.holdings.items()}
        return snap

    def after_orders(self, snap: Snapshot) -> Snapshot:
        """The snapshot with positions and open orders re-read (two requests; prices and indicators kept), after an
        iteration that sent orders: the status then shows what the broker holds now, protection included."""
        if self.dry_run:
            return snap
        holdings = {p.symbol: Holding(p.symbol, float(p.qty), None if p.avg_entry_price is None else
                                      float(p.avg_entry_price)) for p in self.gw.positions() if float(p.qty) != 0}
        return dataclasses.replace(snap, holdings=holdings, open_orders=open_orders(self.gw.open_orders()))

    def sync_fills(self, now) -> list[str]:
        """Settle orders in doubt, then record what filled since the last iteration."""
        lines = resolve_in_doubt(self.gw, self.st.journal, self.watcher)
        self._raw_open = self.gw.open_orders()
        self.watcher.track_open(self._raw_open)
        return lines + [f"fill: {n}" for n in self.watcher.sync(self.gw, self.st.ledger, self._raw_open, now)]

    def cancel(self, order_ids: tuple[str, ...]) -> bool:
        """Cancel and wait until Alpaca no longer lists them open: until then their shares are held.
        One DELETE per bracket/OCO group (cancelling a member cancels the group; a second DELETE would be
        refused as already cancelled); orders that were not open (a filled bracket parent) are left alone.
        Whatever is still open after the first round is cancelled one by one."""
        if self.dry_run:
            return True
        wanted = {oid for oid in order_ids if oid in self._open} if self._open else set(order_ids)
        first: dict[str, str] = {}
        for oid in order_ids:
            if oid in wanted:
                o = self._open.get(oid)
                first.setdefault((o.parent_id or o.order_id) if o else oid, oid)
        sent = set(first.values())
        for oid in sent:
            self.gw.cancel(oid)
        deadline = time.monotonic() + self.cancel_wait_seconds
        while True:
            listed = {str(x.id): _value(x.status) for o in self.gw.open_orders() for x in (o, *(o.legs or ()))}
            still = wanted & set(listed)
            if not still:
                return True
            if time.monotonic() > deadline:
                return False
            for oid in still - sent:  # a member the group cancel did not take down (a pending one is on its way)
                if listed[oid] != "pending_cancel":
                    self.gw.cancel(oid)
                    sent.add(oid)
            time.sleep(0.25)

    def position(self, symbol: str) -> BrokerPosition:
        """The position as Alpaca has it now (flat when it has none), with the shares no order holds."""
        if self.dry_run and self._last_positions is not None:
            return self._last_positions.get(symbol, BrokerPosition.flat())
        return self.gw.position(symbol)

    def submit(self, order, role: str) -> Submitted:
        if self.dry_run:
            return Submitted(False, status="dry-run", note="dry run: not sent")
        try:
            submitted = self.st.submit_order(to_lumibot(self.st, order))
        except Exception as exc:  # noqa: BLE001 - every failure is classified below; none is retried blindly
            return self._after_failure(order, role, exc)
        broker_id = str(submitted.identifier)
        self.watcher.track(broker_id, order.symbol, "buy" if order.side == "buy" else "sell", role)
        return Submitted(True, broker_id, _value(submitted.status), lumibot_order=submitted,
                         response=_alpaca_answer(getattr(submitted, "_raw", None)))

    def _after_failure(self, order, role: str, exc: Exception) -> Submitted:
        """A failed submit may still have reached Alpaca (a 504 after acceptance, a reset connection, a
        duplicate client id after a restart): look it up by client order id before anything else. An id
        Alpaca knows counts as sent only while its order is alive or filled; a dead one (cancelled since,
        say) is reported as such and the executor sends the order again under the next derived id."""
        message, status = message_of(exc), status_of(exc)
        duplicate = "client_order_id must be unique" in message
        if duplicate or is_transient(exc) or not isinstance(exc, APIError):
            try:
                found = self.gw.order_by_client_id(order.client_order_id)
            except BrokerUnavailable:
                found = None
            if found is not None and duplicate and _value(found.status) in DEAD:
                return Submitted(False, str(found.id), "dead-duplicate", response=_alpaca_answer(found),
                                 note=f"id already used by an order now {_value(found.status)}: sending under the "
                                 "next derived id")
            if found is not None:
                self.watcher.track(str(found.id), order.symbol, _value(found.side), role)
                how = "already sent earlier" if duplicate else f"the response was lost ({status or type(exc).__name__})"
                return Submitted(True, str(found.id), _value(found.status), note=f"{how}; found by client order id",
                                 response=_alpaca_answer(found))
            return Submitted(False, status="unknown", response={"http_status": status, "error": message},
                             note=f"no answer ({status or type(exc).__name__}: {message}) "
                             "and not found by client order id yet; the next iteration looks it up again before "
                             "deciding anything")
        return Submitted(False, status="rejected", note=f"rejected by Alpaca ({status}: {message})",
                         response={"http_status": status, "message": message, "body": body_of(exc)})

    def move_stop(self, update: StopUpdate) -> Submitted:
        if self.dry_run:
            return Submitted(False, status="dry-run", note="dry run: not sent")
        try:
            new = self.gw.replace_stop(update.order_id, float(update.stop_price), update.client_order_id)
        except Exception as exc:  # noqa: BLE001 - a replace that may have gone through is looked up, not repeated
            try:
                current = self.gw.order(update.order_id)
            except BrokerUnavailable:
                return Submitted(False, note=f"replace failed ({message_of(exc)}); the stop stays where it was")
            if _value(current.status) == "replaced" and current.replaced_by:
                self.watcher.track(str(current.replaced_by), update.symbol, "sell", "stop")
                return Submitted(True, str(current.replaced_by), "replaced", note="found replaced after an error",
                                 response=_alpaca_answer(current))
            return Submitted(False, note=f"replace failed ({status_of(exc)}: {message_of(exc)}); the stop stays")
        self.watcher.track(str(new.id), update.symbol, "sell", "stop")
        return Submitted(True, str(new.id), _value(new.status), response=_alpaca_answer(new))


def _alpaca_answer(order) -> dict | None:
    """Alpaca's order as it answered (id, status, prices, legs), JSON-ready for the journal."""
    if order is None or not hasattr(order, "model_dump"):
        return None
    return order.model_dump(mode="json", exclude_none=True)
