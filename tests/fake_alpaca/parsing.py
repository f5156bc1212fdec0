"""F0.3 and F1: the structure of a POST /v2/orders body, parsed into an OrderRequest (or a 4xx Reject via Stop)."""

from __future__ import annotations

from .rulebase import CLASSES, SIDES, TIFS, TYPES, VALIDATION, OrderRequest, check_decimals, fail, num
from .values import BadValue, is_whole, to_bool


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
                       qty=num(body, "qty"), notional=num(body, "notional"), limit_price=num(body, "limit_price"),
                       stop_price=num(body, "stop_price"), trail_price=num(body, "trail_price"),
                       trail_percent=num(body, "trail_percent"), extended_hours=ext,
                       client_order_id=coid or None)
    tp, sl = body.get("take_profit"), body.get("stop_loss")
    if (tp is not None and not isinstance(tp, dict)) or (sl is not None and not isinstance(sl, dict)):
        raise fail(422, VALIDATION, "invalid take_profit or stop_loss")
    if tp:
        req.tp_limit = num(tp, "limit_price", "take_profit.limit_price")
    if sl:
        req.sl_stop = num(sl, "stop_price", "stop_loss.stop_price")
        req.sl_limit = num(sl, "limit_price", "stop_loss.limit_price")
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
    check_decimals("qty", req.qty)
    check_decimals("notional", req.notional)
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

