"""F4.19-20 and F5.23-26: entry and leg prices, wash trades, shares available, short sales and buying power."""

from __future__ import annotations

from .orders import OrderRec
from .rulebase import FORBIDDEN, UNPROCESSABLE, OrderRequest, Reject, Stop, dec, fail, gap_check
from .values import fmt_num


def check_entry_and_legs(req: OrderRequest, ctx) -> None:
    cls = req.order_class
    if cls == "simple":
        return
    if cls in ("bracket", "oto") and abs(ctx.position_qty(req.symbol)) > 1e-9:
        raise fail(422, UNPROCESSABLE, f"{cls} orders must be entry orders")
    mark = ctx.mark(req.symbol)
    market = dec(mark) if mark is not None else None
    up = req.legs_sell  # sell legs: take-profit above the base, stop below
    if cls == "oco":
        base = req.tp_limit
    else:
        base = req.limit_price if req.type == "limit" else market
    if req.tp_limit is not None and cls != "oco" and base is not None:
        gap_check("take_profit.limit_price", req.tp_limit, base, above=up)
    if req.sl_stop is not None:
        for b in (base, market):
            if b is not None:
                gap_check("stop_loss.stop_price", req.sl_stop, b, above=not up)


def _opposite_conflict(new_side: str, new_type: str, new_limit, old: OrderRec) -> str | None:
    if new_type in ("market", "stop") or old.type in ("market", "stop", "trailing_stop"):
        return "opposite side market/stop order exists"
    if new_type in ("limit", "stop_limit") and old.limit_like and new_limit is not None:
        buy = float(new_limit) if new_side == "buy" else old.limit_price
        sell = old.limit_price if new_side == "buy" else float(new_limit)
        if buy is not None and sell is not None and buy >= sell:
            return "opposite side limit order exists"
    return None


def check_wash_trade(req: OrderRequest, ctx) -> None:
    """F5.26; new bracket/oco/oto and trailing stops are exempt; resting complex legs count only by switch."""
    if req.order_class != "simple" or req.type == "trailing_stop":
        return
    for old in ctx.open_orders(req.symbol):
        if old.side == req.side or not old.active:
            continue
        if old.order_class != "simple" and not ctx.settings.wash_trade_counts_complex_legs:
            continue
        reason = _opposite_conflict(req.side, req.type, req.limit_price, old)
        if reason:
            raise fail(403, FORBIDDEN, "potential wash trade detected. use complex orders",
                       existing_order_id=old.id, reject_reason=reason)


def qty_estimate(req: OrderRequest, ctx) -> float | None:
    if req.qty is not None:
        return float(req.qty)
    mark = ctx.mark(req.symbol)
    return float(req.notional) / mark if mark else None


def insufficient_qty(symbol: str, requested: float, pos: float, held: float, related: list[str]) -> Stop:
    available = max(0.0, abs(pos) - held)
    return fail(403, FORBIDDEN, f"insufficient qty available for order (requested: {fmt_num(requested)}, "
                                f"available: {fmt_num(available)})",
                available=fmt_num(available), existing_qty=fmt_num(abs(pos)), held_for_orders=fmt_num(held),
                related_orders=related, symbol=symbol)


def check_close_qty(symbol: str, side: str, qty: float, ctx, exclude_id: str | None = None) -> Reject | None:
    """F5.23: a closing order may not exceed the position minus the shares held by open orders."""
    pos = ctx.position_qty(symbol)
    held, related = ctx.held_for_orders(symbol, side, exclude_id=exclude_id)
    if qty > abs(pos) - held + 1e-9:
        return insufficient_qty(symbol, qty, pos, held, related).reject
    return None


def _check_short(symbol: str, asset: dict, ctx) -> None:
    s = ctx.settings
    if not s.shorting_enabled or ctx.equity() < 2000:
        raise fail(403, FORBIDDEN, "account is not allowed to short")
    if not asset["shortable"] or not asset["easy_to_borrow"]:
        raise fail(s.short_reject_status, UNPROCESSABLE if s.short_reject_status == 422 else FORBIDDEN,
                   f'asset "{symbol}" cannot be sold short')


def check_position(req: OrderRequest, asset: dict, ctx) -> None:
    """F5.23-24: never sell more than is available, never flip a position, no shorts unless enabled."""
    pos = ctx.position_qty(req.symbol)
    qty = qty_estimate(req, ctx)
    if qty is None:
        return
    closing = (req.side == "sell" and pos > 1e-9) or (req.side == "buy" and pos < -1e-9)
    if req.order_class == "oco" and not closing:
        raise insufficient_qty(req.symbol, qty, pos, 0.0, [])
    if closing:
        reject = check_close_qty(req.symbol, req.side, qty, ctx)
        if reject:
            raise Stop(reject)
    elif req.side == "sell":
        _check_short(req.symbol, asset, ctx)


def order_cost(side: str, otype: str, qty: float, limit, stop, mark: float | None, notional=None) -> float:
    """Buying power an opening order needs (F5.25)."""
    if notional is not None:
        return float(notional)
    if side == "sell":  # short sale
        ask = (mark or 0.0) + 0.01
        return qty * max(float(limit or 0.0), ask * 1.03)
    if otype in ("limit", "stop_limit") and limit is not None:
        return qty * float(limit)
    if otype == "stop" and stop is not None:
        return qty * float(stop) * (1.04 if float(stop) < 50 else 1.025)
    return qty * (mark or 0.0) * 1.04


def check_buying_power(req: OrderRequest, ctx) -> None:
    pos = ctx.position_qty(req.symbol)
    opening = (req.side == "buy" and pos >= -1e-9) or (req.side == "sell" and pos <= 1e-9)
    if not opening:
        return
    qty = qty_estimate(req, ctx) or 0.0
    limit = req.limit_price if req.limit_price is not None else (req.tp_limit if req.order_class == "oco" else None)
    cost = order_cost(req.side, req.type, qty, limit, req.stop_price, ctx.mark(req.symbol),
                      req.notional if req.side == "buy" else None)
    bp = ctx.buying_power()
    if cost > bp + 1e-6:
        raise fail(403, FORBIDDEN, "insufficient buying power", buying_power=fmt_num(round(bp, 2)),
                   cost_basis=fmt_num(round(cost, 2)))

