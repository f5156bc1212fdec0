"""Shared pieces of the order rules: the rejection type, the parsed request, number parsing and price checks.

Reference: shared/reference/alpaca-rules.md. Messages marked "unverified" there are kept in these modules, in
one place each, so they are easy to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .values import BadValue, decimals_of, fmt_num, to_decimal

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


class Stop(Exception):
    def __init__(self, reject: Reject) -> None:
        super().__init__(reject.body.get("message"))
        self.reject = reject


def fail(status: int, code: int, message: str, **extra) -> Stop:
    return Stop(Reject(status, {"code": code, "message": message, **extra}))


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


def num(body: dict, key: str, label: str | None = None) -> Decimal | None:
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




MAX_QTY_DECIMALS = 9  # A5: qty and notional accept up to 9 decimals


def check_decimals(label: str, d: Decimal | None) -> None:
    """A5: more than 9 decimals in qty or notional -> 422 40010001 (the wording is unverified)."""
    if d is not None and decimals_of(d) > MAX_QTY_DECIMALS:
        raise fail(422, VALIDATION, f"{label} must have no more than {MAX_QTY_DECIMALS} decimal places")


MIN_FRACTIONAL_VALUE = 1.0  # A5: the minimum order is $1


def check_min_value(qty: float, price: float | None) -> None:
    """A5: a fractional order worth under $1 -> 403 40310000 "cost basis must be >= 1" (seen in public bots'
    comments; notional orders are caught earlier by "notional must be >= 1")."""
    if price is not None and qty * price < MIN_FRACTIONAL_VALUE - 1e-9:
        raise fail(403, FORBIDDEN, f"cost basis must be >= {MIN_FRACTIONAL_VALUE:g}")


def dec(x: float) -> Decimal:
    return Decimal(str(round(float(x), 4)))


def gap_check(label: str, price: Decimal, base: Decimal, above: bool) -> None:
    """Leg price vs base price (F4.20): above -> price >= base + 0.01, else price <= base - 0.01."""
    if above and price < base + CENT:
        raise fail(422, UNPROCESSABLE, f"{label} must be >= base_price + 0.01", base_price=fmt_num(base))
    if not above and price > base - CENT:
        raise fail(422, UNPROCESSABLE, f"{label} must be <= base_price - 0.01", base_price=fmt_num(base))

