"""Fills in live trading, read from the broker rather than trusted to callbacks.

Every order the bot places, and every open order it finds, is watched until it is terminal. Each
iteration the watched orders that are no longer open (and open ones that filled partly) are read
back; growth in their filled quantity is recorded once as a fill, with the role the order has: from
its client order id for the bot's own orders (…-enter-…, …-trim-…), from its type for bracket and OCO
legs (limit = take-profit, stop = stop). The watch list lives in the journal, so fills that happen
while the bot is down are found at the next start.
"""

import logging
from datetime import datetime

from broker.gateway import AlpacaGateway
from trading.execution.venue import enum_value as _value
from trading.order_ids import role_from_client_id
from trading.records.ledger import Fill, Ledger

logger = logging.getLogger("trader.broker")
STATE_KEY = "watch"
DONE_KEY = "watch_done"
DONE_KEPT = 2000  # terminal orders remembered with what was counted (a late stream message must not count again)
TERMINAL = {"filled", "canceled", "expired", "rejected", "replaced", "done_for_day", "stopped", "suspended"}


def leg_role(order) -> str:
    return "target" if _value(order.type) == "limit" else "stop"


class FillWatcher:
    def __init__(self, journal):
        self.journal = journal
        self.watch: dict[str, dict] = dict(journal.get_state(STATE_KEY) or {})
        self.done: dict[str, float] = dict(journal.get_state(DONE_KEY) or {})  # oid -> filled qty counted

    def track(self, order_id: str, symbol: str, side: str, role: str) -> None:
        self.watch.setdefault(str(order_id), {"symbol": symbol, "side": side, "role": role, "filled": 0.0,
                                              "avg": 0.0})

    def track_open(self, raw_orders: list) -> None:
        """Watch every open order and its legs (legs get their role from their type). An order seen for the
        first time is watched from its current filled quantity: what filled before is already in the
        position, which start-up reconciliation adopts."""
        for o in raw_orders:
            for order, role in ((o, None), *((leg, leg_role(leg)) for leg in o.legs or ())):
                oid = str(order.id)
                if oid in self.watch:
                    continue
                role = role or role_from_client_id(order.client_order_id) or \
                    ("entry" if _value(order.side) == "buy" else "unknown")
                self.watch[oid] = {"symbol": order.symbol, "side": _value(order.side), "role": role,
                                   "filled": float(order.filled_qty or 0), "avg": float(order.filled_avg_price or 0)}

    def sync(self, gateway: AlpacaGateway, ledger: Ledger, raw_open: list, now: datetime) -> list[str]:
        """Record what filled since the last call; returns one note per fill."""
        open_by_id = {}
        for o in raw_open:
            open_by_id[str(o.id)] = o
            for leg in o.legs or ():
                open_by_id[str(leg.id)] = leg
        notes = []
        for oid in list(self.watch):
            order = open_by_id.get(oid)
            if order is None:
                order = gateway.order(oid)
                for leg in order.legs or ():  # a bracket's legs are watched once its entry is known
                    self.track(str(leg.id), leg.symbol, _value(leg.side), leg_role(leg))
            note = self._observe(oid, order, ledger, now)
            if note:
                notes.append(note)
        self._save(now)
        return notes

    def _save(self, now: datetime) -> None:
        with self.journal.batch():
            self.journal.set_state(STATE_KEY, self.watch, now)
            self.journal.set_state(DONE_KEY, self.done, now)

    def on_update(self, order, ledger: Ledger, now: datetime, event_qty: float = 0.0) -> tuple[str | None, bool]:
        """A trade update from the stream: the order as Alpaca sent it. Returns (a note for a new fill, whether
        the bot knew the order: watched, or placed by it). The order is watched like any open order the
        iteration finds (its fills are recorded whoever placed it), with the same bookkeeping as `sync`: the
        filled quantity is cumulative, so a message seen twice records nothing the second time, and what the
        stream missed the next `sync` finds."""
        oid = str(order.id)
        known = (oid in self.watch or oid in self.done
                 or self.journal.order_by_client_id(order.client_order_id or "") is not None)
        if oid not in self.watch and oid in self.done:
            # already counted to the end (by the REST sync, or an earlier message): only growth beyond it is new
            if float(order.filled_qty or 0) <= self.done[oid] + 1e-9:
                return None, True
            self.watch[oid] = {"symbol": order.symbol, "side": _value(order.side), "role": "unknown",
                               "filled": self.done.pop(oid), "avg": float(order.filled_avg_price or 0)}
        if oid not in self.watch:
            role = (role_from_client_id(order.client_order_id) or
                    (leg_role(order) if _value(order.side) == "sell" and _value(order.type) in ("stop", "limit")
                     else "entry" if _value(order.side) == "buy" else "unknown"))
            # watched from what filled before this message (`event_qty`: this fill's shares): the rest is in the
            # position already, as for an open order the iteration finds
            before = float(order.filled_qty or 0) - event_qty
            self.watch[oid] = {"symbol": order.symbol, "side": _value(order.side), "role": role,
                               "filled": max(before, 0.0), "avg": float(order.filled_avg_price or 0)}
        for leg in order.legs or ():
            self.track(str(leg.id), leg.symbol, _value(leg.side), leg_role(leg))
        note = self._observe(oid, order, ledger, now)
        self._save(now)
        return note, known

    def _observe(self, oid: str, order, ledger: Ledger, now: datetime) -> str | None:
        w = self.watch[oid]
        note = None
        filled = float(order.filled_qty or 0)
        if filled > w["filled"] + 1e-9:
            avg = float(order.filled_avg_price or 0)
            delta = filled - w["filled"]
            price = (avg * filled - w["avg"] * w["filled"]) / delta if w["filled"] else avg
            when = order.filled_at or now
            ledger.record_fill(Fill(when, w["symbol"], w["side"], delta, price, w["role"], oid))
            if w["side"] == "buy" and order.legs:
                self._levels_from_legs(ledger, w["symbol"], order.legs)
            note = f"{w['symbol']}: {w['side']} {delta:g} filled at {price:,.2f} ({w['role']})"
            w["filled"], w["avg"] = filled, avg
        if _value(order.status) in TERMINAL:
            self.done[oid] = w["filled"]
            del self.watch[oid]
            while len(self.done) > DONE_KEPT:  # oldest first (dicts keep insertion order)
                del self.done[next(iter(self.done))]
        return note

    @staticmethod
    def _levels_from_legs(ledger: Ledger, symbol: str, legs) -> None:
        stop = next((float(leg.stop_price) for leg in legs if leg.stop_price is not None), None)
        target = next((float(leg.limit_price) for leg in legs if leg.limit_price is not None), None)
        if stop is not None:
            ledger.update(symbol, stop=stop, initial_stop=stop, target=target)
