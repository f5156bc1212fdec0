"""DELETE /v2/orders/{id}, DELETE /v2/orders and PATCH /v2/orders/{id}: the requests that start a pending cancel
or replace (pending.py resolves them on a later step); and DELETE /v2/positions[/{symbol}].

DELETE answers 204 and puts the order and its open group members in `pending_cancel` (A13, F6-30). PATCH answers
200 with the replacement (new id, `replaces` = the old id, status `pending_new`) and puts the old order in
`pending_replace`; the old one becomes `replaced` (with `replaced_by`) when the replace resolves (A13, F6-29).
An order already pending_cancel, pending_replace or terminal, or a replacement still pending_new, cannot be
canceled: 422 42210000 `order is already in "<status>" state` (PATCH answers per rules.check_replace).
The race faults fill_before_cancel and fill_after_cancel act here (faults.py).
"""

from __future__ import annotations

import copy
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

from . import matching, replace_rules, rules
from .orders import OrderRec
from .rulebase import MAX_QTY_DECIMALS
from .values import decimals_of

if TYPE_CHECKING:
    from .engine import Engine

NOT_FOUND = {"code": 40410000, "message": "order not found"}
PENDING_CHANGE = frozenset({"pending_cancel", "pending_replace"})


def _already(o: OrderRec) -> tuple[int, dict]:
    return 422, {"code": 42210000, "message": f'order is already in "{o.status}" state'}


def cancelable(e: Engine, o: OrderRec) -> bool:
    return o.is_open and o.status not in PENDING_CHANGE and not e._is_pending_replacement(o)


def cancel(e: Engine, order_id: str, path: str = "") -> tuple[int, dict | None]:
    o = e.orders.get(order_id)
    if o is None:
        return 404, dict(NOT_FOUND)
    if not cancelable(e, o):
        return _already(o)

    def same_symbol(f) -> bool:
        return f.params.get("symbol") in (None, "", o.symbol)

    racing = o.active and e.mark(o.symbol) is not None
    if racing and e.faults.take("fill_before_cancel", "DELETE", path, accept=same_symbol) is not None:
        # the order filled between the client's read and its DELETE: the DELETE finds it filled
        o.partial_fraction = None
        matching.fill(e, o, e.mark(o.symbol), (e.now_ns, 99, "", 0))
        if not o.is_open:
            return _already(o)
    after = racing and e.faults.take("fill_after_cancel", "DELETE", path, accept=same_symbol) is not None
    start_cancel(e, o, fill_instead=after)
    return 204, None


def start_cancel(e: Engine, o: OrderRec, fill_instead: bool = False) -> None:
    """Put the order and its open group members in pending_cancel and queue the confirmation."""
    members = [m for m in e.group_members(o) if m.is_open and m.status != "pending_cancel"]
    if o not in members:
        members.insert(0, o)
    prev = {m.id: m.status for m in members}
    for m in members:
        e.set_status(m, "pending_cancel")
    e.pending.schedule_cancel(o, prev, fill_instead)


def cancel_all(e: Engine) -> tuple[int, list]:
    """207 with one entry per open order; an order in the middle of a replace cannot be canceled (A13: 500 for an
    entry that could not be cancelled), so the replacement survives and goes live when the replace resolves."""
    out = []
    for o in sorted(e.open_orders(), key=lambda x: x.seq):
        if o.status == "pending_cancel" or cancelable(e, o):
            if o.status != "pending_cancel":
                start_cancel(e, o)
            out.append({"id": o.id, "status": 200, "body": o.to_json()})
        else:
            out.append({"id": o.id, "status": 500, "body": _already(o)[1]})
    return 207, out


def replace(e: Engine, order_id: str, body) -> tuple[int, dict]:
    old = e.orders.get(order_id)
    if old is None:
        return 404, dict(NOT_FOUND)
    rr, reject = replace_rules.check_replace(old, body, e)
    if reject is not None:
        return reject.status, reject.body
    now = e.now
    new = copy.copy(old)
    new.id = str(uuid.uuid4())
    new.client_order_id = rr.client_order_id or str(uuid.uuid4())
    new.created_at = new.updated_at = new.submitted_at = now
    new.filled_at = None
    new.qty = float(rr.qty) if rr.qty is not None else old.qty
    new.filled_qty, new.filled_value = 0.0, 0.0
    new.limit_price = float(rr.limit_price) if rr.limit_price is not None else old.limit_price
    new.stop_price = float(rr.stop_price) if rr.stop_price is not None else old.stop_price
    if rr.trail is not None:
        if old.trail_price is not None:
            new.trail_price = float(rr.trail)
        else:
            new.trail_percent = float(rr.trail)
    if rr.time_in_force is not None and rr.time_in_force != old.time_in_force:
        new.time_in_force = rr.time_in_force
        new.expires_at = e.expiry(new.time_in_force, new.extended_hours, now)
    new.status, new.active = "pending_new", False  # nothing works until the replace resolves
    new.replaces, new.replaced_by, new.replacement = old.id, None, None
    new.legs = list(old.legs)
    new.seq = e.next_seq()
    new.eligible_after = ()
    e.coids.add(new.client_order_id)
    e.orders[new.id] = new
    prev_status = old.status
    e.set_status(old, "pending_replace")
    e.emit("pending_new", new)
    old.replacement = new.id
    e.pending.schedule_replace(old, new, prev_status, active=old.active)
    return 200, e.render(new, nested=True)


# ---------------------------------------------------------------------------------------------- positions
def close_position(e: Engine, symbol: str, query: dict) -> tuple[int, dict]:
    p = e.positions.get(symbol)
    if p is None:
        return 404, {"code": 40410000, "message": "position does not exist"}
    qty = abs(p.qty)
    try:
        if query.get("qty"):
            if decimals_of(Decimal(str(query["qty"]).strip())) > MAX_QTY_DECIMALS:  # A5, B: up to 9 decimals
                return 422, {"code": 40010001, "message": f"qty must have no more than {MAX_QTY_DECIMALS} "
                                                          "decimal places"}
            qty = float(query["qty"])
        elif query.get("percentage"):
            qty = round(abs(p.qty) * float(query["percentage"]) / 100.0, 9)
    except (ValueError, ArithmeticError):
        return 422, {"code": 40010001, "message": "invalid qty or percentage"}
    side = "sell" if p.qty > 0 else "buy"
    reject = rules.check_close_qty(symbol, side, qty, e)
    if reject is not None:
        return reject.status, reject.body
    req = rules.OrderRequest(symbol=symbol, side=side, type="market", time_in_force="day",
                             qty=Decimal(str(qty)))
    o = e.new_rec(req, role="simple", otype="market", side=side)
    o.status = "new" if e.session_live(o) else "accepted"
    e.emit(o.status, o)
    e.pending.schedule_match(o)
    return 200, o.to_json()


def close_all(e: Engine, cancel_orders: bool) -> tuple[int, list]:
    if cancel_orders:  # the server waits for its own cancels (and any replace in flight) before it sells
        for _ in range(2):
            cancel_all(e)
            e.pending.settle_cancels()
    out = []
    for sym in sorted(e.positions):
        status, body = close_position(e, sym, {})
        out.append({"symbol": sym, "status": status, "body": body})
    return 207, out
