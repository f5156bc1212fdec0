"""The order record the engine keeps, and its JSON in the exact shape of Alpaca's Order object."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from .values import fmt_num, iso_utc

TERMINAL = frozenset({"filled", "canceled", "expired", "rejected", "replaced", "done_for_day"})
NOT_SENT = frozenset({"accepted", "pending_new", "pending_cancel", "pending_replace"})
STOP_TYPES = frozenset({"stop", "stop_limit", "trailing_stop"})

# roles: simple; entry/tp/sl (bracket, oto); oco_tp (the OCO parent) / oco_sl (its child leg)
PARENT_ROLES = frozenset({"simple", "entry", "oco_tp"})
TP_ROLES = frozenset({"tp", "oco_tp"})
SL_ROLES = frozenset({"sl", "oco_sl"})


def asset_uuid(symbol: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca/asset/{symbol}"))


@dataclass
class OrderRec:
    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    order_class: str
    created_at: datetime
    qty: float | None = None
    notional: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None
    trail_percent: float | None = None
    hwm: float | None = None
    extended_hours: bool = False
    status: str = "new"
    updated_at: datetime | None = None
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    expired_at: datetime | None = None
    expires_at: datetime | None = None
    canceled_at: datetime | None = None
    failed_at: datetime | None = None
    replaced_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    filled_qty: float = 0.0
    filled_value: float = 0.0
    # engine bookkeeping (never sent)
    role: str = "simple"
    group: str | None = None
    active: bool = True
    triggered: bool = False
    eligible_after: tuple = ()
    partial_fraction: float | None = None
    reject_leg: bool = False
    replacement: str | None = None  # while pending_replace: the id of the replacement (pending_new)
    seq: int = 0
    legs: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def remaining(self) -> float:
        if self.qty is None:
            return 0.0
        return max(0.0, round(self.qty - self.filled_qty, 9))

    @property
    def is_parent(self) -> bool:
        return self.role in PARENT_ROLES

    @property
    def limit_like(self) -> bool:
        return self.type in ("limit", "stop_limit")

    def current_stop(self) -> float | None:
        """The stop in force: stop_price, or for trailing stops the one derived from the high-water mark."""
        if self.type != "trailing_stop":
            return self.stop_price
        if self.hwm is None:
            return None
        if self.trail_price is not None:
            off = self.trail_price
        else:
            off = self.hwm * (self.trail_percent or 0.0) / 100.0
        return round(self.hwm - off if self.side == "sell" else self.hwm + off, 4)

    def to_json(self, legs: list[dict] | None = None) -> dict:
        avg = self.filled_value / self.filled_qty if self.filled_qty else None
        stop = self.current_stop()
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at or self.created_at),
            "submitted_at": iso_utc(self.submitted_at or self.created_at),
            "filled_at": iso_utc(self.filled_at),
            "expired_at": iso_utc(self.expired_at),
            "expires_at": iso_utc(self.expires_at),
            "canceled_at": iso_utc(self.canceled_at),
            "failed_at": iso_utc(self.failed_at),
            "replaced_at": iso_utc(self.replaced_at),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": asset_uuid(self.symbol),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": fmt_num(self.notional),
            "qty": fmt_num(self.qty),
            "filled_qty": fmt_num(self.filled_qty),
            "filled_avg_price": fmt_num(avg, 6) if avg is not None else None,
            "order_class": self.order_class,
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "position_intent": None,
            "time_in_force": self.time_in_force,
            "limit_price": fmt_num(self.limit_price),
            "stop_price": fmt_num(stop),
            "status": self.status,
            "extended_hours": self.extended_hours,
            "legs": legs,
            "trail_percent": fmt_num(self.trail_percent),
            "trail_price": fmt_num(self.trail_price),
            "hwm": fmt_num(self.hwm, 4),
            "subtag": None,
            "source": None,
        }
