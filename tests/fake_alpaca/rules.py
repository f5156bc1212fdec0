"""Alpaca's order rules (reference: shared/reference/alpaca-rules.md, section F), as (status, body) rejections.

`check_new_order(body, ctx)` -> (OrderRequest, None) or (None, Reject); replace_rules.check_replace likewise;
position_rules.check_close_qty is shared with DELETE /v2/positions/{symbol}. Checks run in the order listed in
F1..F5: structure (parsing.py), prices, TIF/extended hours/fractional, order class, account, asset, then
position and buying power (position_rules.py). Shared pieces live in rulebase.py.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal

from .parsing import parse_order
from .position_rules import (
    check_buying_power,
    check_close_qty,
    check_entry_and_legs,
    check_position,
    check_wash_trade,
    order_cost,
    qty_estimate,
)
from .rulebase import (
    FORBIDDEN,
    UNPROCESSABLE,
    VALIDATION,
    OrderRequest,
    Reject,
    Stop,
    check_min_value,
    check_price,
    fail,
)
from .values import NY

__all__ = ["Decimal", "OrderRequest", "Reject", "check_close_qty", "check_new_order", "order_cost"]


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
        check_entry_and_legs(req, ctx)
        check_wash_trade(req, ctx)
        check_position(req, asset, ctx)
        check_buying_power(req, ctx)
    except Stop as stop:
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
    if req.qty is not None:
        price = req.limit_price if req.limit_price is not None else req.stop_price
        check_min_value(float(req.qty), float(price) if price is not None else ctx.mark(req.symbol))
    if req.side == "sell":
        pos = ctx.position_qty(req.symbol)
        qty = qty_estimate(req, ctx)
        if pos <= 0 or (qty is not None and qty > pos + 1e-9):
            raise fail(403, FORBIDDEN, "fractional orders are not allowed to short")

