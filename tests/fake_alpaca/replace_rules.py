"""F6.29: the rules of PATCH /v2/orders/{id} (replace), as (status, body) rejections."""

from __future__ import annotations

from .orders import OrderRec
from .position_rules import check_close_qty, order_cost
from .rulebase import (
    FORBIDDEN,
    TIFS,
    UNPROCESSABLE,
    VALIDATION,
    Reject,
    ReplaceRequest,
    Stop,
    check_decimals,
    check_min_value,
    check_price,
    dec,
    fail,
    gap_check,
    num,
)
from .values import fmt_num, is_whole


def check_replace(order: OrderRec, body, ctx) -> tuple[ReplaceRequest | None, Reject | None]:
    """F6.29 for PATCH /v2/orders/{id}."""
    try:
        if order.status in ("accepted", "pending_new", "pending_cancel", "pending_replace"):
            raise fail(422, VALIDATION, "unable to replace order, order isn't sent to exchange yet")
        if not order.is_open:
            raise fail(422, UNPROCESSABLE, f'order is already in "{order.status}" state')
        if not isinstance(body, dict) or not body:
            raise fail(422, VALIDATION, "no replace fields given")
        if order.order_class == "oto":
            raise fail(422, UNPROCESSABLE, "oto orders cannot be replaced")
        if order.notional is not None:
            raise fail(422, UNPROCESSABLE, "notional orders cannot be replaced")
        rr = ReplaceRequest(qty=num(body, "qty"), limit_price=num(body, "limit_price"),
                            stop_price=num(body, "stop_price"), trail=num(body, "trail"))
        tif = body.get("time_in_force")
        if tif is not None:
            tif = str(tif).lower()
            allowed = ("day", "gtc") if order.order_class != "simple" or order.type in STOP_ORDER else TIFS
            if tif not in allowed:
                raise fail(422, VALIDATION, "invalid time_in_force")
            rr.time_in_force = tif
        coid = body.get("client_order_id")
        if coid is not None:
            coid = str(coid)
            if len(coid) > 128:
                raise fail(422, VALIDATION, "client_order_id must be no more than 128 characters")
            if ctx.coid_used(coid):
                raise fail(422, VALIDATION, "client_order_id must be unique")
            rr.client_order_id = coid
        if rr.qty is not None:
            if rr.qty <= 0:
                raise fail(422, VALIDATION, "qty must be > 0")
            check_decimals("qty", rr.qty)
            if not is_whole(rr.qty) or (order.qty is not None and not is_whole(order.qty)):
                raise fail(422, UNPROCESSABLE, "fractional orders qty cannot be replaced")
        if rr.limit_price is not None and order.type not in ("limit", "stop_limit"):
            raise fail(422, VALIDATION, f"limit_price is not allowed for {order.type} orders")
        if rr.stop_price is not None and order.type not in ("stop", "stop_limit"):
            raise fail(422, VALIDATION, f"stop_price is not allowed for {order.type} orders")
        if rr.trail is not None and order.type != "trailing_stop":
            raise fail(422, VALIDATION, f"trail is not allowed for {order.type} orders")
        if rr.trail is not None and rr.trail <= 0:
            raise fail(422, VALIDATION, "trail must be > 0")
        check_price("limit_price", rr.limit_price)
        check_price("stop_price", rr.stop_price)
        if rr.limit_price is not None and order.qty is not None and not is_whole(order.qty):
            check_min_value(order.qty, float(rr.limit_price))
        _check_replace_legs(order, rr, ctx)
        _check_replace_buying_power(order, rr, ctx)
        if rr.qty is not None and float(rr.qty) > (order.qty or 0):
            closing_side = (order.side == "sell" and ctx.position_qty(order.symbol) > 0) or (
                order.side == "buy" and ctx.position_qty(order.symbol) < 0)
            if closing_side or order.role not in ("simple", "entry"):
                reject = check_close_qty(order.symbol, order.side, float(rr.qty), ctx, exclude_id=order.id)
                if reject:
                    raise Stop(reject)
    except Stop as stop:
        return None, stop.reject
    return rr, None


def _check_replace_buying_power(order: OrderRec, rr: ReplaceRequest, ctx) -> None:
    """A13: while a replace is pending the larger of the old and the new order is reserved, so a PATCH that makes
    an opening order dearer needs the difference in buying power (F5.25 wording)."""
    if order.role not in ("simple", "entry") or order.qty is None:
        return
    pos = ctx.position_qty(order.symbol)
    if (order.side == "buy" and pos < -1e-9) or (order.side == "sell" and pos > 1e-9):
        return  # closing orders need no buying power
    mark = ctx.mark(order.symbol)
    limit = float(rr.limit_price) if rr.limit_price is not None else order.limit_price
    stop = float(rr.stop_price) if rr.stop_price is not None else order.stop_price
    qty = float(rr.qty) if rr.qty is not None else order.qty
    old = order_cost(order.side, order.type, order.remaining, order.limit_price, order.stop_price, mark)
    new = order_cost(order.side, order.type, qty, limit, stop, mark)
    bp = ctx.buying_power()
    if new - old > bp + 1e-6:
        raise fail(403, FORBIDDEN, "insufficient buying power", buying_power=fmt_num(round(bp, 2)),
                   cost_basis=fmt_num(round(new, 2)))


STOP_ORDER = ("stop", "stop_limit", "trailing_stop")


def _check_replace_legs(order: OrderRec, rr: ReplaceRequest, ctx) -> None:
    """Leg prices again vs their base (F4.20), for a leg or for a bracket entry whose limit changes."""
    if order.order_class == "simple":
        return
    mark = ctx.mark(order.symbol)
    market = dec(mark) if mark is not None else None
    entry = ctx.entry_of(order)
    entry_open = entry is not None and entry.is_open
    if order.role == "entry":
        if rr.limit_price is None:
            return
        up = order.side == "buy"
        for leg in ctx.legs_of(order):
            if leg.role == "tp" and leg.limit_price is not None:
                gap_check("take_profit.limit_price", dec(leg.limit_price), rr.limit_price, above=up)
            if leg.role == "sl" and leg.stop_price is not None:
                gap_check("stop_loss.stop_price", dec(leg.stop_price), rr.limit_price, above=not up)
        return
    up = order.side == "sell"  # a selling exit leg: take-profit above, stop below
    entry_base = None
    if entry_open:
        entry_base = dec(entry.limit_price) if entry.type == "limit" and entry.limit_price else market
    if order.role in ("tp", "oco_tp") and rr.limit_price is not None:
        base = entry_base if entry_open else market
        if order.role == "tp" and base is not None:
            gap_check("take_profit.limit_price", rr.limit_price, base, above=up)
        sib = ctx.sibling_of(order)
        if order.role == "oco_tp" and sib is not None and sib.stop_price is not None:
            gap_check("stop_loss.stop_price", dec(sib.stop_price), rr.limit_price, above=not up)
    if order.role in ("sl", "oco_sl") and rr.stop_price is not None:
        bases = [market, entry_base]
        sib = ctx.sibling_of(order)
        if order.role == "oco_sl" and sib is not None and sib.limit_price is not None:
            bases.insert(0, dec(sib.limit_price))
        for b in bases:
            if b is not None:
                gap_check("stop_loss.stop_price", rr.stop_price, b, above=not up)
