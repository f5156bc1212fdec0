"""Alpaca's order rules (reference: shared/reference/alpaca-rules.md, section F), as (status, body) rejections.

`check_new_order(body, ctx)` -> (OrderRequest, None) or (None, Reject); `check_replace(order, body, ctx)` likewise;
`check_sell_qty(...)` is shared with DELETE /v2/positions/{symbol}. Checks run in the order listed in F1..F5:
structure, prices, TIF/extended hours/fractional, order class, account, asset, position and buying power.
Messages marked "unverified" in the reference are kept here in one place so they are easy to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal

from .orders import OrderRec
from .values import NY, BadValue, decimals_of, fmt_num, is_whole, to_bool, to_decimal

SIDES = ("buy", "sell")
TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIFS = ("day", "gtc", "opg", "cls", "ioc", "fok")
CLASSES = ("simple", "bracket", "oco", "oto")
CENT = Decimal("0.01")

VALIDATION = 40010001
UNPROCESSABLE = 42210000
FORBIDDEN = 40310000


@dataclass
class Reject:
    status: int
    body: dict

    def __iter__(self):  # allows `status, body = reject`
        return iter((self.status, self.body))


class _Stop(Exception):
    def __init__(self, reject: Reject) -> None:
        super().__init__(reject.body.get("message"))
        self.reject = reject


def fail(status: int, code: int, message: str, **extra) -> _Stop:
    return _Stop(Reject(status, {"code": code, "message": message, **extra}))


@dataclass
class OrderRequest:
    symbol: str
    side: str
    type: str
    time_in_force: str
    order_class: str = "simple"
    qty: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    extended_hours: bool = False
    client_order_id: str | None = None
    tp_limit: Decimal | None = None
    sl_stop: Decimal | None = None
    sl_limit: Decimal | None = None
    fractional: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def legs_sell(self) -> bool:
        """True when the exit legs sell (a long bracket/oto, or an OCO that sells)."""
        return self.side == "buy" if self.order_class in ("bracket", "oto") else self.side == "sell"


@dataclass
class ReplaceRequest:
    qty: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail: Decimal | None = None
    time_in_force: str | None = None
    client_order_id: str | None = None


def _num(body: dict, key: str, label: str | None = None) -> Decimal | None:
    try:
        return to_decimal(body.get(key))
    except BadValue:
        raise fail(422, VALIDATION, f"invalid {label or key}") from None


def _price_text(d: Decimal) -> str:
    return format(d.normalize(), "f")


def check_price(label: str, d: Decimal | None) -> None:
    """F2: > 0 and no sub-penny increment (2 decimals at >= $1, 4 below), judged on the decimal text."""
    if d is None:
        return
    if d <= 0:
        raise fail(422, UNPROCESSABLE, f"invalid {label}: must be > 0")
    if decimals_of(d) > (2 if d >= 1 else 4):
        raise fail(422, UNPROCESSABLE, f"invalid {label} {_price_text(d)}. sub-penny increment does not "
                                       "fulfill minimum pricing criteria")


# ---------------------------------------------------------------------------------------------- parsing
def parse_order(body) -> OrderRequest:
    """F1 (structure) and F0.3 (loose numbers and booleans)."""
    if not isinstance(body, dict):
        raise fail(400, 40010000, "request body format is invalid")
    for key in ("symbol", "side", "type", "time_in_force"):
        value = body.get(key)
        if value is None or value == "":
            raise fail(422, VALIDATION, f"{key} is required")
        if not isinstance(value, str):
            raise fail(422, VALIDATION, f"invalid {key}")
    side, otype, tif = body["side"].lower(), body["type"].lower(), body["time_in_force"].lower()
    if side not in SIDES:
        raise fail(422, VALIDATION, "invalid side")
    if otype not in TYPES:
        raise fail(422, VALIDATION, "invalid order type")
    if tif not in TIFS:
        raise fail(422, VALIDATION, "invalid time_in_force")
    cls = body.get("order_class") or "simple"
    if not isinstance(cls, str) or cls.lower() not in CLASSES:
        raise fail(422, VALIDATION, "invalid order_class")
    cls = cls.lower()
    try:
        ext = to_bool(body.get("extended_hours"))
    except BadValue:
        raise fail(422, VALIDATION, "invalid extended_hours") from None
    coid = body.get("client_order_id")
    if coid is not None and not isinstance(coid, str):
        coid = str(coid)
    req = OrderRequest(symbol=body["symbol"].upper(), side=side, type=otype, time_in_force=tif, order_class=cls,
                       qty=_num(body, "qty"), notional=_num(body, "notional"), limit_price=_num(body, "limit_price"),
                       stop_price=_num(body, "stop_price"), trail_price=_num(body, "trail_price"),
                       trail_percent=_num(body, "trail_percent"), extended_hours=ext,
                       client_order_id=coid or None)
    tp, sl = body.get("take_profit"), body.get("stop_loss")
    if (tp is not None and not isinstance(tp, dict)) or (sl is not None and not isinstance(sl, dict)):
        raise fail(422, VALIDATION, "invalid take_profit or stop_loss")
    if tp:
        req.tp_limit = _num(tp, "limit_price", "take_profit.limit_price")
    if sl:
        req.sl_stop = _num(sl, "stop_price", "stop_loss.stop_price")
        req.sl_limit = _num(sl, "limit_price", "stop_loss.limit_price")
        if sl.get("trail_price") is not None or sl.get("trail_percent") is not None:
            req.extra["sl_trailing"] = True
    req.extra["has_legs"] = bool(tp or sl)

    # F1.5-6 quantity
    if req.qty is None and req.notional is None:
        raise fail(422, VALIDATION, "qty or notional is required")
    if req.qty is not None and req.notional is not None:
        raise fail(400, VALIDATION, "only one of qty or notional can be specified")
    if req.qty is not None and req.qty <= 0:
        raise fail(422, VALIDATION, "qty must be > 0")
    if req.notional is not None and req.notional < 1:
        raise fail(422, VALIDATION, "notional must be >= 1")
    req.fractional = req.notional is not None or not is_whole(req.qty)

    # F1.7-8 price fields per type
    lp, sp = req.limit_price, req.stop_price
    trail = req.trail_price is not None or req.trail_percent is not None
    if otype == "market" and (lp is not None or sp is not None):
        raise fail(422, VALIDATION, "market orders require no stop or limit price")
    if otype == "limit":
        if lp is None and not (cls == "oco" and req.tp_limit is not None):
            raise fail(422, VALIDATION, "limit orders require a limit price")
        if sp is not None:
            raise fail(422, VALIDATION, "limit orders require no stop price")
    if otype == "stop":
        if sp is None:
            raise fail(422, VALIDATION, "stop orders require a stop price")
        if lp is not None:
            raise fail(422, VALIDATION, "stop orders require no limit price")
    if otype == "stop_limit":
        if lp is None:
            raise fail(422, VALIDATION, "stop_limit orders require a limit price")
        if sp is None:
            raise fail(422, VALIDATION, "stop_limit orders require a stop price")
    if otype == "trailing_stop":
        if lp is not None or sp is not None:
            raise fail(422, VALIDATION, "trailing_stop orders require no stop or limit price")
        if req.trail_price is None and req.trail_percent is None:
            raise fail(422, VALIDATION, "trailing_stop orders require one of trail_price or trail_percent")
        if req.trail_price is not None and req.trail_percent is not None:
            raise fail(422, VALIDATION, "trailing_stop orders accept only one of trail_price or trail_percent")
        for label, d in (("trail_price", req.trail_price), ("trail_percent", req.trail_percent)):
            if d is not None and d <= 0:
                raise fail(422, VALIDATION, f"{label} must be > 0")
        if tif not in ("day", "gtc"):
            raise fail(422, VALIDATION, "trailing_stop orders must be DAY or GTC orders")
    elif trail:
        raise fail(422, VALIDATION, f"{otype} orders require no trail_price or trail_percent")

    # F1.9 client_order_id length
    if coid is not None and len(str(coid)) > 128:
        raise fail(422, VALIDATION, "client_order_id must be no more than 128 characters")
    return req


# ---------------------------------------------------------------------------------------------- new orders
def check_new_order(body, ctx) -> tuple[OrderRequest | None, Reject | None]:
    """All of F1-F5 for POST /v2/orders. ctx is the engine (see engine.Engine for the methods used)."""
    try:
        req = parse_order(body)
        if req.client_order_id is not None and ctx.coid_used(req.client_order_id):
            raise fail(422, VALIDATION, "client_order_id must be unique")
        _check_prices(req)
        _check_tif(req, ctx)
        _check_class(req)
        _check_account(ctx)
        asset = _check_asset(req.symbol, ctx)
        _check_fractional(req, asset, ctx)
        _check_entry_and_legs(req, ctx)
        _check_wash_trade(req, ctx)
        _check_position(req, asset, ctx)
        _check_buying_power(req, ctx)
    except _Stop as stop:
        return None, stop.reject
    return req, None


def _check_prices(req: OrderRequest) -> None:
    check_price("limit_price", req.limit_price)
    check_price("stop_price", req.stop_price)
    check_price("take_profit.limit_price", req.tp_limit)
    check_price("stop_loss.stop_price", req.sl_stop)
    check_price("stop_loss.limit_price", req.sl_limit)


def _check_tif(req: OrderRequest, ctx) -> None:
    s = ctx.settings
    if req.extended_hours:
        tifs = ("day", "gtc") if s.allow_extended_gtc else ("day",)
        if req.type != "limit" or req.time_in_force not in tifs:
            raise fail(422, UNPROCESSABLE, "extended hours order must be DAY limit orders")
    if req.type in ("stop", "stop_limit") and req.time_in_force not in ("day", "gtc"):
        raise fail(422, UNPROCESSABLE, f"{req.type} orders must be DAY or GTC orders")
    local = ctx.now.astimezone(NY).time()
    if req.time_in_force == "opg" and time(9, 28) <= local < time(19, 0):
        raise fail(422, UNPROCESSABLE, "opg orders cannot be submitted between 9:28am and 7:00pm ET")
    if req.time_in_force == "cls" and time(15, 50) <= local < time(19, 0):
        raise fail(422, UNPROCESSABLE, "cls orders cannot be submitted between 3:50pm and 7:00pm ET")


def _check_class(req: OrderRequest) -> None:
    cls = req.order_class
    if cls == "simple":
        if req.extra.get("has_legs"):
            raise fail(422, VALIDATION, "take_profit and stop_loss are only valid for bracket, oco and oto orders")
        return
    if req.extra.get("sl_trailing"):
        raise fail(422, UNPROCESSABLE, f"trailing stop orders cannot be {cls} legs")
    if cls in ("bracket", "oco"):
        if req.tp_limit is None:
            raise fail(422, UNPROCESSABLE, f"{cls} orders require take_profit.limit_price")
        if req.sl_stop is None:
            raise fail(422, UNPROCESSABLE, f"{cls} orders require stop_loss.stop_price")
    if cls == "oto":
        if req.tp_limit is None and req.sl_stop is None:
            raise fail(422, UNPROCESSABLE, "oto orders require take_profit.limit_price or stop_loss.stop_price")
        if req.tp_limit is not None and req.sl_stop is not None:
            raise fail(422, UNPROCESSABLE, "oto orders accept only one of take_profit or stop_loss")
    if cls in ("bracket", "oto") and req.type not in ("market", "limit"):
        raise fail(422, VALIDATION, f"{cls} orders must be market or limit orders")
    if cls == "oco" and req.type != "limit":
        raise fail(422, UNPROCESSABLE, "oco orders must be limit orders")
    if req.time_in_force not in ("day", "gtc"):
        raise fail(422, UNPROCESSABLE, f"{cls} orders must be DAY or GTC orders")
    if req.extended_hours:
        raise fail(422, UNPROCESSABLE, f"{cls} orders cannot be extended hours orders")


def _check_account(ctx) -> None:
    s = ctx.settings
    if s.trading_blocked or s.account_blocked:
        raise fail(403, FORBIDDEN, "account is not authorized to trade")
    if s.trade_suspended_by_user:
        raise fail(403, FORBIDDEN, "new orders are rejected by user request")


def _check_asset(symbol: str, ctx) -> dict:
    asset = ctx.asset(symbol)
    if asset is None:
        raise fail(422, UNPROCESSABLE, f'asset "{symbol}" not found')
    if not asset["tradable"] or asset["status"] != "active":
        raise fail(422, UNPROCESSABLE, f'asset "{symbol}" is not tradable')
    return asset


def _check_fractional(req: OrderRequest, asset: dict, ctx) -> None:
    if not req.fractional:
        return
    if req.order_class != "simple":
        raise fail(422, UNPROCESSABLE, "fractional orders must be simple orders")
    if req.type == "trailing_stop":
        raise fail(422, UNPROCESSABLE, "fractional orders must be market, limit, stop, or stop_limit orders")
    if req.time_in_force != "day":
        raise fail(422, UNPROCESSABLE, "fractional orders must be DAY orders")
    if not asset["fractionable"]:
        raise fail(403, FORBIDDEN, f'asset "{req.symbol}" is not fractionable')
    if req.side == "sell":
        pos = ctx.position_qty(req.symbol)
        qty = _qty_estimate(req, ctx)
        if pos <= 0 or (qty is not None and qty > pos + 1e-9):
            raise fail(403, FORBIDDEN, "fractional orders are not allowed to short")


def _dec(x: float) -> Decimal:
    return Decimal(str(round(float(x), 4)))


def gap_check(label: str, price: Decimal, base: Decimal, above: bool) -> None:
    """Leg price vs base price (F4.20): above -> price >= base + 0.01, else price <= base - 0.01."""
    if above and price < base + CENT:
        raise fail(422, UNPROCESSABLE, f"{label} must be >= base_price + 0.01", base_price=fmt_num(base))
    if not above and price > base - CENT:
        raise fail(422, UNPROCESSABLE, f"{label} must be <= base_price - 0.01", base_price=fmt_num(base))


def _check_entry_and_legs(req: OrderRequest, ctx) -> None:
    cls = req.order_class
    if cls == "simple":
        return
    if cls in ("bracket", "oto") and abs(ctx.position_qty(req.symbol)) > 1e-9:
        raise fail(422, UNPROCESSABLE, f"{cls} orders must be entry orders")
    mark = ctx.mark(req.symbol)
    market = _dec(mark) if mark is not None else None
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


def _check_wash_trade(req: OrderRequest, ctx) -> None:
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


def _qty_estimate(req: OrderRequest, ctx) -> float | None:
    if req.qty is not None:
        return float(req.qty)
    mark = ctx.mark(req.symbol)
    return float(req.notional) / mark if mark else None


def insufficient_qty(symbol: str, requested: float, pos: float, held: float, related: list[str]) -> _Stop:
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


def _check_position(req: OrderRequest, asset: dict, ctx) -> None:
    """F5.23-24: never sell more than is available, never flip a position, no shorts unless enabled."""
    pos = ctx.position_qty(req.symbol)
    qty = _qty_estimate(req, ctx)
    if qty is None:
        return
    closing = (req.side == "sell" and pos > 1e-9) or (req.side == "buy" and pos < -1e-9)
    if req.order_class == "oco" and not closing:
        raise insufficient_qty(req.symbol, qty, pos, 0.0, [])
    if closing:
        reject = check_close_qty(req.symbol, req.side, qty, ctx)
        if reject:
            raise _Stop(reject)
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


def _check_buying_power(req: OrderRequest, ctx) -> None:
    pos = ctx.position_qty(req.symbol)
    opening = (req.side == "buy" and pos >= -1e-9) or (req.side == "sell" and pos <= 1e-9)
    if not opening:
        return
    qty = _qty_estimate(req, ctx) or 0.0
    limit = req.limit_price if req.limit_price is not None else (req.tp_limit if req.order_class == "oco" else None)
    cost = order_cost(req.side, req.type, qty, limit, req.stop_price, ctx.mark(req.symbol),
                      req.notional if req.side == "buy" else None)
    bp = ctx.buying_power()
    if cost > bp + 1e-6:
        raise fail(403, FORBIDDEN, "insufficient buying power", buying_power=fmt_num(round(bp, 2)),
                   cost_basis=fmt_num(round(cost, 2)))


# ---------------------------------------------------------------------------------------------- replace
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
        rr = ReplaceRequest(qty=_num(body, "qty"), limit_price=_num(body, "limit_price"),
                            stop_price=_num(body, "stop_price"), trail=_num(body, "trail"))
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
        _check_replace_legs(order, rr, ctx)
        if rr.qty is not None and float(rr.qty) > (order.qty or 0):
            closing_side = (order.side == "sell" and ctx.position_qty(order.symbol) > 0) or (
                order.side == "buy" and ctx.position_qty(order.symbol) < 0)
            if closing_side or order.role not in ("simple", "entry"):
                reject = check_close_qty(order.symbol, order.side, float(rr.qty), ctx, exclude_id=order.id)
                if reject:
                    raise _Stop(reject)
    except _Stop as stop:
        return None, stop.reject
    return rr, None


STOP_ORDER = ("stop", "stop_limit", "trailing_stop")


def _check_replace_legs(order: OrderRec, rr: ReplaceRequest, ctx) -> None:
    """Leg prices again vs their base (F4.20), for a leg or for a bracket entry whose limit changes."""
    if order.order_class == "simple":
        return
    mark = ctx.mark(order.symbol)
    market = _dec(mark) if mark is not None else None
    entry = ctx.entry_of(order)
    entry_open = entry is not None and entry.is_open
    if order.role == "entry":
        if rr.limit_price is None:
            return
        up = order.side == "buy"
        for leg in ctx.legs_of(order):
            if leg.role == "tp" and leg.limit_price is not None:
                gap_check("take_profit.limit_price", _dec(leg.limit_price), rr.limit_price, above=up)
            if leg.role == "sl" and leg.stop_price is not None:
                gap_check("stop_loss.stop_price", _dec(leg.stop_price), rr.limit_price, above=not up)
        return
    up = order.side == "sell"  # a selling exit leg: take-profit above, stop below
    entry_base = None
    if entry_open:
        entry_base = _dec(entry.limit_price) if entry.type == "limit" and entry.limit_price else market
    if order.role in ("tp", "oco_tp") and rr.limit_price is not None:
        base = entry_base if entry_open else market
        if order.role == "tp" and base is not None:
            gap_check("take_profit.limit_price", rr.limit_price, base, above=up)
        sib = ctx.sibling_of(order)
        if order.role == "oco_tp" and sib is not None and sib.stop_price is not None:
            gap_check("stop_loss.stop_price", _dec(sib.stop_price), rr.limit_price, above=not up)
    if order.role in ("sl", "oco_sl") and rr.stop_price is not None:
        bases = [market, entry_base]
        sib = ctx.sibling_of(order)
        if order.role == "oco_sl" and sib is not None and sib.limit_price is not None:
            bases.insert(0, _dec(sib.limit_price))
        for b in bases:
            if b is not None:
                gap_check("stop_loss.stop_price", rr.stop_price, b, above=not up)
