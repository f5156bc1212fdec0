"""Carries out one intent through the venue: the only path from a decision to the broker.

For every intent, in order:
1. cancel its orders and wait until the broker confirms them gone (their shares are held until then);
2. read the broker's position again and refit the sale and the re-protecting OCO to it (trading/resize):
   a leg may have filled between the snapshot and the cancel;
3. drop orders that only work in the regular session when the session closed while the iteration ran;
4. submit each order in turn, journalling the request before it is sent and the answer after;
   an id Alpaca already knows counts as sent only while that order is alive or filled: a dead one
   (cancelled, expired, rejected) gets the next id derived from it, the same on every restart;
5. whenever the position may have lost its protection (a cancel not confirmed, an order refused or
   dropped, a halt cancelling a partly filled entry), check the broker again and put an OCO on every
   whole share that no order holds, at once rather than an hour later; a cancel still pending after
   the wait is waited for once more at the end of the iteration (`settle`) and protected then.
The trade's state change (partial taken, stop moved) is recorded once the sale or stop move it describes
is accepted: a partial whose sale went out is done even if its follow-up OCO failed, and one whose sale
was not sent is not.
"""

import hashlib
import math
from dataclasses import replace
from datetime import datetime

from trading.execution.resize import BrokerPosition, changes_position, fit_to_position
from trading.intents import Decision, Intent, IntentKind, Step
from trading.order_ids import OrderIds, role_from_client_id
from trading.orders import (
    BracketOrder,
    LimitOrder,
    MarketOrder,
    OcoOrder,
    Refusal,
    StopUpdate,
    build_oco,
    request_fields,
    to_tick,
)
from trading.steps.protection import default_levels

DEAD = ("canceled", "expired", "rejected", "pending_cancel", "done_for_day", "suspended", "stopped")
MAX_ID_RETRIES = 5  # ids derived after dead orders with the same id: more means something else is wrong


def next_client_id(cid: str) -> str:
    """The id to use when `cid` belongs to a dead order: its hash part replaced, so the role and the slot
    still read from it, and the same on every restart (a second restart finds this one alive)."""
    head, _, tail = cid.rpartition("-")
    return f"{head}-{hashlib.sha256(f'{tail}|next'.encode()).hexdigest()[:10]}"


class Executor:
    def __init__(self, venue, journal, ledger, decision_log, settings, strategy_id: str, clock):
        self.venue, self.journal, self.ledger, self.log = venue, journal, ledger, decision_log
        self.settings, self.strategy_id, self.clock = settings, strategy_id, clock
        self.session_ends: datetime | None = None  # live: the regular session's close, read at the iteration start
        self.slot: datetime | None = None  # live: the iteration's slot, so ids made here are the same on a restart
        self.unsettled: dict[str, tuple[str, ...]] = {}  # symbol -> orders whose cancel was not confirmed in time

    # ------------------------------------------------------------------ one intent
    def execute(self, intent: Intent, snap) -> None:
        now, step = snap.now, intent.kind.value
        sym = intent.symbol
        if intent.cancel_order_ids and not self.venue.cancel(intent.cancel_order_ids):
            self.log.note(now, step, f"{sym}: its orders are not confirmed cancelled; the rest of this intent is "
                          "not sent, and the cancel is checked again at the end of the iteration", "warning")
            self.unsettled[sym] = intent.cancel_order_ids
            self.ensure_protected(sym, snap, "after an unconfirmed cancel")
            return
        orders: tuple = intent.orders
        at_risk = intent.kind == IntentKind.CANCEL  # a cancelled entry may have filled in part
        if changes_position(intent):
            orders, note = fit_to_position(intent, self.venue.position(sym))
            if note:
                self.log.note(now, step, f"{sym}: {note}", "warning")
                at_risk = True
        orders, closed_note = self._in_session(orders)
        if closed_note:
            self.log.note(now, step, f"{sym}: {closed_note}", "warning")
            at_risk = True
        updated, in_doubt = False, 0.0
        for order in orders:
            result = self.submit(order, intent, snap)
            if result.status == "dry-run":
                continue  # journalled and logged; nothing was sent, so nothing changes
            if not result.ok:
                at_risk = True
                if result.status == "unknown" and isinstance(order, MarketOrder | LimitOrder) and order.side == "sell":
                    in_doubt = float(order.qty)  # a sale lost in flight may still land: its shares stay free for it
                break
            if intent.trade_update and not updated and not isinstance(order, OcoOrder):
                self.ledger.update(sym, **intent.trade_update)  # the sale (or stop move) it describes went out
                updated = True
        if at_risk and not intent.opens_exposure:
            self.ensure_protected(sym, snap, "after a failed or changed order", reserve=in_doubt)

    def _in_session(self, orders: tuple) -> tuple[tuple, str]:
        """Market orders and brackets sent after the close would queue for tomorrow's open: not sent."""
        if self.session_ends is None or self.clock() < self.session_ends:
            return orders, ""
        kept = tuple(o for o in orders if isinstance(o, OcoOrder | StopUpdate)
                     or (isinstance(o, LimitOrder) and o.extended_hours))
        if len(kept) == len(orders):
            return orders, ""
        return kept, (f"the session closed at {self.session_ends:%H:%M} while this iteration ran: "
                      f"{len(orders) - len(kept)} session order(s) not sent")

    # ------------------------------------------------------------------ one order
    def submit(self, order, intent: Intent, snap):
        """Journal, send, journal the answer; a dead order under the same id gets the next derived id."""
        for _ in range(MAX_ID_RETRIES + 1):
            result = self._send(order, intent, snap)
            if result.status != "dead-duplicate":
                return result
            order = replace(order, client_order_id=next_client_id(order.client_order_id))
        self.log.note(snap.now, intent.kind.value, f"{order.symbol}: {MAX_ID_RETRIES} dead orders under derived ids; "
                      "not sent", "warning")
        return result

    def _send(self, order, intent: Intent, snap):
        now = snap.now
        request = request_fields(order)
        role = role_from_client_id(order.client_order_id) or "unknown"
        self.journal.record_order(now, client_order_id=order.client_order_id, symbol=order.symbol,
                                  side=request.get("side", "sell"), order_type=request.get("type", "replace"),
                                  order_class=request.get("order_class", "replace"),
                                  qty=float(getattr(order, "qty", 0) or 0), intent=intent.kind.value, role=role,
                                  request=request, status="sending")
        if isinstance(order, StopUpdate):
            result = self.venue.move_stop(order)
        else:
            if isinstance(order, BracketOrder):
                self.ledger.pending_levels[order.symbol] = (float(order.stop_loss), float(order.take_profit))
            result = self.venue.submit(order, role)
        response = dict(result.response or {}, **({"note": result.note} if result.note else {}))
        self.journal.update_order(order.client_order_id, broker_order_id=result.broker_id,
                                  status=result.status or ("submitted" if result.ok else "failed"),
                                  response=response or None)
        if result.status == "dry-run":
            self.log.note(now, intent.kind.value, f"DRY RUN would send {request}")
        elif not result.ok and result.status != "dead-duplicate":
            self.log.note(now, intent.kind.value, f"{order.symbol}: {order.client_order_id} {result.note}", "warning")
        elif result.note:
            self.log.note(now, intent.kind.value, f"{order.symbol}: {result.note}")
        if result.ok and isinstance(order, OcoOrder):
            self._record_protection(order, snap)
        return result

    def settle(self, snap) -> None:
        """End of the iteration: cancels that were not confirmed in time are waited for once more; once they
        are, what they freed is protected now instead of at the next iteration."""
        for sym, order_ids in list(self.unsettled.items()):
            del self.unsettled[sym]
            if self.venue.cancel(order_ids):
                self.ensure_protected(sym, snap, "once its cancel was confirmed")
            else:
                self.log.note(snap.now, "protect", f"{sym}: cancel still not confirmed at the end of the iteration; "
                              "step 1 checks its protection again at the next one", "warning")

    # ------------------------------------------------------------------ protection after trouble
    def ensure_protected(self, symbol: str, snap, why: str, reserve: float = 0.0) -> None:
        """Every whole share of a long that no open order holds gets an OCO now, from the broker's position
        (a pending sale and a resting OCO both hold their shares, so nothing is covered twice); `reserve`
        shares stay free for a sale whose answer was lost and which may still land."""
        pos: BrokerPosition = self.venue.position(symbol)
        whole = math.floor(min(pos.available, pos.qty) - reserve + 1e-9) if pos.qty > 0 else 0
        if pos.qty < 0:
            self.log.note(snap.now, "protect", f"{symbol}: short {pos.qty:g} sh at the broker; step 1 buys it "
                          "back at the next iteration", "warning")
        if whole < 1:
            return
        price = snap.price(symbol)
        if not (math.isfinite(price) and price > 0):
            self.log.note(snap.now, "protect", f"{symbol}: {whole} sh without a stop {why}, and no price to set one "
                          "from; step 1 retries at the next iteration", "warning")
            return
        lot = self.ledger.open_trades().get(symbol)
        if lot is not None and lot.stop is not None and lot.target is not None:
            stop, target = to_tick(lot.stop), to_tick(lot.target)
        else:
            lv = default_levels(self._entry(symbol, snap, lot, price), price, self.settings)[0]
            stop, target = lv.stop, lv.target
        ids = OrderIds(self.strategy_id, self.slot or snap.now)
        oco = build_oco(symbol, whole, price, stop, target, ids(symbol, "reprotect"))
        if isinstance(oco, Refusal):
            self.log.note(snap.now, "protect", f"{symbol}: {whole} sh without a stop {why}, and no OCO is possible "
                          f"({oco.reason}); step 1 retries at the next iteration", "warning")
            return
        intent = Intent(IntentKind.PROTECT, symbol, (oco,))
        self.log.record(snap.now, Decision(Step.PROTECT, symbol, "protect", f"re-protect {why}: {whole} sh held "
                                           f"with no order on them: OCO stop {oco.stop_loss}, target "
                                           f"{oco.take_profit}", intent, "warning"))
        self.submit(oco, intent, snap)

    @staticmethod
    def _entry(symbol: str, snap, lot, price: float) -> float:
        h = snap.holdings.get(symbol)
        entry = (lot.price if lot is not None else None) or (h.avg_entry_price if h is not None else None)
        return entry if entry and entry > 0 else price

    def _record_protection(self, oco: OcoOrder, snap) -> None:
        """The open trade learns its protective levels; a position the bot did not open is adopted."""
        if oco.symbol in self.ledger.open_trades():
            self.ledger.update(oco.symbol, stop=float(oco.stop_loss), target=float(oco.take_profit))
            return
        h = snap.holdings.get(oco.symbol)
        if h is not None and h.qty > 0:
            entry = h.avg_entry_price or snap.price(oco.symbol)
            self.ledger.adopt(oco.symbol, h.qty, entry, snap.now, float(oco.stop_loss), float(oco.take_profit))

