"""Account state: cash, positions, orders; order submission, replacement and cancellation.

One RLock (`engine.lock`) guards everything; the HTTP layer and FakeAlpaca's methods take it. Fills, triggers and
expiries driven by the clock live in matching.py; JSON views of the account and positions in views.py.
"""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import matching, rules
from .faults import Faults
from .orders import SL_ROLES, TP_ROLES, OrderRec
from .series import BarSeries
from .sessions import Sessions
from .values import from_ns, to_ns

ARCA_ETFS = frozenset({"SPY", "QQQ", "DIA", "IWM", "SH", "PSQ", "SQQQ", "TQQQ", "SPXU", "SPXS", "SDS", "QID", "DOG",
                       "RWM", "SSO", "QLD", "UPRO", "VOO", "VTI", "GLD", "TLT", "XLK", "XLF", "XLE", "SOXL", "SOXS"})


@dataclass
class Settings:
    """Switches for rules the reference marks as unverified or configurable."""
    shorting_enabled: bool = False
    allow_extended_gtc: bool = False
    wash_trade_counts_complex_legs: bool = False
    short_reject_status: int = 422
    trading_blocked: bool = False
    account_blocked: bool = False
    trade_suspended_by_user: bool = False
    transfers_blocked: bool = False
    multiplier: int | None = None          # None: 2 at equity >= $2,000, else 1
    legacy_pdt_fields: bool = True         # pattern_day_trader false / daytrade_count 0 in /v2/account
    clamp_order_limit: bool = True         # GET /v2/orders limit > 500: clamp (True) or 422 (False)


@dataclass
class Position:
    qty: float
    avg_entry_price: float


class Engine:
    def __init__(self, series: dict[str, BarSeries], sessions: Sessions, faults: Faults, cash: float,
                 now: datetime, key: str) -> None:
        self.lock = threading.RLock()
        self.series = series
        self.sessions = sessions
        self.faults = faults
        self.cash = float(cash)
        self.now = now
        self.market_is_open: bool | None = None
        self.settings = Settings()
        self.orders: dict[str, OrderRec] = {}
        self.groups: dict[str, list[str]] = {}
        self.coids: set[str] = set()
        self.positions: dict[str, Position] = {}
        self.account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca/account/{key}"))
        self.account_number = "PA" + str(int(uuid.UUID(self.account_id)) % 10_000_000).zfill(7)
        self.created_at = now - timedelta(days=365)
        self._seq = itertools.count(1)
        self.assets = {s: self._default_asset(s) for s in series}

    @staticmethod
    def _default_asset(symbol: str) -> dict:
        return {"exchange": "ARCA" if symbol in ARCA_ETFS else "NASDAQ", "status": "active", "tradable": True,
                "marginable": True, "shortable": True, "easy_to_borrow": True, "fractionable": True}

    # ------------------------------------------------------------------ clock and prices
    @property
    def now_ns(self) -> int:
        return to_ns(self.now)

    def is_open_at(self, t: datetime) -> bool:
        if self.market_is_open is not None:
            return self.market_is_open
        return self.sessions.is_open(t)

    def halted_since(self, symbol: str) -> datetime | None:
        return self.faults.halted_since(symbol)

    def mark(self, symbol: str) -> float | None:
        """Last trade at now (frozen at the halt time for a halted symbol); None without data."""
        s = self.series.get(symbol)
        if s is None:
            return None
        t = self.now
        halt = self.halted_since(symbol)
        if halt is not None and halt < t:
            t = halt
        return s.price_at(to_ns(t))

    def lastday_price(self, symbol: str) -> float | None:
        """Close of the last bar that ended by the previous session's close (before today's date)."""
        s = self.series.get(symbol)
        if s is None:
            return None
        midnight = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        close = self.sessions.last_close_before(midnight)
        if close is None:
            return None
        i = s.last_ended(to_ns(close))
        return float(s.close[i]) if i >= 0 else None

    # ------------------------------------------------------------------ the rule context
    def coid_used(self, coid: str) -> bool:
        return coid in self.coids

    def asset(self, symbol: str) -> dict | None:
        return self.assets.get(symbol)

    def position_qty(self, symbol: str) -> float:
        p = self.positions.get(symbol)
        return p.qty if p else 0.0

    def open_orders(self, symbol: str | None = None) -> list[OrderRec]:
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    def group_members(self, o: OrderRec) -> list[OrderRec]:
        if not o.group:
            return [o]
        return [self.orders[i] for i in self.groups.get(o.group, [o.id])]

    def entry_of(self, o: OrderRec) -> OrderRec | None:
        return next((m for m in self.group_members(o) if m.role == "entry"), None)

    def legs_of(self, o: OrderRec) -> list[OrderRec]:
        return [m for m in self.group_members(o) if m.id != o.id and not m.is_parent]

    def sibling_of(self, o: OrderRec) -> OrderRec | None:
        want = SL_ROLES if o.role in TP_ROLES else TP_ROLES
        return next((m for m in self.group_members(o) if m.id != o.id and m.role in want), None)

    def _est_remaining(self, o: OrderRec) -> float:
        if o.qty is not None:
            return o.remaining
        mark = self.mark(o.symbol) or 0.0
        return max(0.0, (o.notional - o.filled_value) / mark) if mark else 0.0

    def held_for_orders(self, symbol: str, side: str, exclude_id: str | None = None) -> tuple[float, list[str]]:
        """Shares held by open orders on `side` that close the position (simple orders, live exit legs)."""
        held, related, seen_groups = 0.0, [], set()
        excluded = self.orders.get(exclude_id) if exclude_id else None
        skip_group = excluded.group if excluded is not None else None
        for o in self.open_orders(symbol):
            if o.side != side or o.id == exclude_id or o.role == "entry":
                continue
            if o.group and o.group == skip_group:
                continue
            if o.role == "simple":
                held += self._est_remaining(o)
                related.append(o.id)
                continue
            entry = self.entry_of(o)
            if (entry is not None and entry.status != "filled") or o.group in seen_groups:
                continue
            seen_groups.add(o.group)
            legs = [m for m in self.group_members(o) if m.is_open and m.side == side]
            held += max(m.remaining for m in legs)
            related.extend(m.id for m in legs)
        return round(held, 9), related

    def _reserved(self) -> float:
        total = 0.0
        for o in self.open_orders():
            if o.role not in ("simple", "entry"):
                continue
            pos = self.position_qty(o.symbol)
            opening = (o.side == "buy" and pos >= 0) or (o.side == "sell" and pos <= 0)
            if opening:
                notional = (o.notional - o.filled_value) if o.notional is not None and o.side == "buy" else None
                total += rules.order_cost(o.side, o.type, o.remaining, o.limit_price, o.stop_price,
                                          self.mark(o.symbol), notional)
        return total

    def market_values(self) -> tuple[float, float]:
        lmv = smv = 0.0
        for sym, p in self.positions.items():
            px = self.mark(sym) or p.avg_entry_price
            if p.qty > 0:
                lmv += p.qty * px
            else:
                smv += p.qty * px
        return lmv, smv

    def equity(self) -> float:
        lmv, smv = self.market_values()
        return self.cash + lmv + smv

    def multiplier(self) -> int:
        if self.settings.multiplier is not None:
            return int(self.settings.multiplier)
        return 2 if self.equity() >= 2000 else 1

    def base_buying_power(self) -> float:
        lmv, smv = self.market_values()
        mult = self.multiplier()
        if mult <= 1:
            return max(self.cash, 0.0)
        initial_margin = 0.5 * lmv + 0.5 * abs(smv)
        return max(self.equity() - initial_margin, 0.0) * mult

    def buying_power(self) -> float:
        return max(self.base_buying_power() - self._reserved(), 0.0)

    # ------------------------------------------------------------------ order creation
    def _expiry(self, tif: str, extended: bool, t: datetime) -> datetime:
        if tif == "gtc":
            return t + timedelta(days=90)
        if extended:
            return self.sessions.extended_close(t)
        return self.sessions.current_or_next(t)[1]

    def session_live(self, o: OrderRec) -> bool:
        """The order's session is on now: the regular session, or 04:00-20:00 for extended-hours orders."""
        return self.is_open_at(self.now) or (o.extended_hours and self.sessions.extended_window(self.now))

    def tradable_now(self, o: OrderRec) -> bool:
        return self.halted_since(o.symbol) is None and self.session_live(o)

    def _new_rec(self, req: rules.OrderRequest, *, role: str, otype: str, side: str, limit=None, stop=None,
                 coid: str | None = None) -> OrderRec:
        now = self.now
        o = OrderRec(id=str(uuid.uuid4()), client_order_id=coid or str(uuid.uuid4()), symbol=req.symbol,
                     side=side, type=otype, time_in_force=req.time_in_force, order_class=req.order_class,
                     created_at=now, updated_at=now, submitted_at=now,
                     qty=float(req.qty) if req.qty is not None else None,
                     notional=float(req.notional) if req.notional is not None else None,
                     limit_price=float(limit) if limit is not None else None,
                     stop_price=float(stop) if stop is not None else None,
                     extended_hours=req.extended_hours, role=role, seq=next(self._seq))
        o.expires_at = self._expiry(o.time_in_force, o.extended_hours, now)
        self.coids.add(o.client_order_id)
        self.orders[o.id] = o
        return o

    def submit(self, body, method: str = "POST", path: str = "/v2/orders") -> tuple[int, dict]:
        req, reject = rules.check_new_order(body, self)
        if reject is not None:
            return reject.status, reject.body
        cls = req.order_class
        if cls == "oco":
            parent = self._new_rec(req, role="oco_tp", otype="limit", side=req.side, limit=req.tp_limit,
                                   coid=req.client_order_id)
        else:
            parent = self._new_rec(req, role="entry" if cls != "simple" else "simple", otype=req.type,
                                   side=req.side, limit=req.limit_price, stop=req.stop_price,
                                   coid=req.client_order_id)
            if req.type == "trailing_stop":
                parent.trail_price = float(req.trail_price) if req.trail_price is not None else None
                parent.trail_percent = float(req.trail_percent) if req.trail_percent is not None else None
                parent.hwm = self.mark(req.symbol)
        parent.status = "new" if self.session_live(parent) else "accepted"
        if cls != "simple":
            exit_side = ("sell" if req.side == "buy" else "buy") if cls != "oco" else req.side
            legs = []
            if req.tp_limit is not None and cls != "oco":
                legs.append(self._new_rec(req, role="tp", otype="limit", side=exit_side, limit=req.tp_limit))
            if req.sl_stop is not None:
                sl_type = "stop_limit" if req.sl_limit is not None else "stop"
                legs.append(self._new_rec(req, role="oco_sl" if cls == "oco" else "sl", otype=sl_type,
                                          side=exit_side, limit=req.sl_limit, stop=req.sl_stop))
            for leg in legs:
                leg.status = "held"
                leg.active = cls == "oco"
                leg.group = parent.id
            parent.group = parent.id
            parent.legs = [leg.id for leg in legs]
            self.groups[parent.id] = [parent.id] + parent.legs
            if any(leg.role == "sl" for leg in legs) and self.faults.take("reject_leg", method, path):
                parent.reject_leg = True
        part = self.faults.take("partial_fill", method, path,
                                accept=lambda f: f.params.get("symbol") in (None, "", parent.symbol))
        if part is not None:
            parent.partial_fraction = float(part.params.get("fraction", 0.5))
        key = (self.now_ns, 99, "", 0)
        matching.match_now(self, parent, key)
        for leg_id in parent.legs:
            matching.match_now(self, self.orders[leg_id], key)
        return 200, self.render(parent, nested=True)

    # ------------------------------------------------------------------ replace / cancel
    def replace(self, order_id: str, body) -> tuple[int, dict]:
        old = self.orders.get(order_id)
        if old is None:
            return 404, {"code": 40410000, "message": "order not found"}
        rr, reject = rules.check_replace(old, body, self)
        if reject is not None:
            return reject.status, reject.body
        now = self.now
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
            new.expires_at = self._expiry(new.time_in_force, new.extended_hours, now)
        new.status = old.status if old.status in ("new", "held") else "new"
        new.replaces, new.replaced_by = old.id, None
        new.legs = list(old.legs)
        new.seq = next(self._seq)
        new.eligible_after = ()
        self.coids.add(new.client_order_id)
        self.orders[new.id] = new
        old.status, old.replaced_by, old.replaced_at, old.updated_at = "replaced", new.id, now, now
        if old.group:
            members = self.groups[old.group]
            members[members.index(old.id)] = new.id
        if new.qty is not None and old.qty is not None and new.qty != old.qty:
            for leg in self.legs_of(new) if new.role == "entry" else []:
                leg.qty = new.qty
        matching.match_now(self, new, (self.now_ns, 99, "", 0))
        return 200, self.render(new, nested=True)

    def cancel(self, order_id: str) -> tuple[int, dict | None]:
        o = self.orders.get(order_id)
        if o is None:
            return 404, {"code": 40410000, "message": "order not found"}
        if not o.is_open:
            return 422, {"code": 42210000, "message": f'order is already in "{o.status}" state'}
        for m in self.group_members(o):
            if m.is_open:
                self.set_status(m, "canceled")
        return 204, None

    def cancel_all(self) -> tuple[int, list]:
        out = []
        for o in sorted(self.open_orders(), key=lambda x: x.seq):
            if o.is_open:
                for m in self.group_members(o):
                    if m.is_open:
                        self.set_status(m, "canceled")
            out.append({"id": o.id, "status": 200, "body": o.to_json()})
        return 207, out

    def set_status(self, o: OrderRec, status: str, t: datetime | None = None) -> None:
        t = t or self.now
        o.status = status
        o.updated_at = t
        if status == "canceled":
            o.canceled_at = t
        elif status == "expired":
            o.expired_at = t
        elif status == "rejected":
            o.failed_at = t
        elif status == "replaced":
            o.replaced_at = t

    # ------------------------------------------------------------------ positions
    def apply_fill(self, symbol: str, side: str, qty: float, px: float) -> None:
        signed = qty if side == "buy" else -qty
        self.cash -= signed * px
        p = self.positions.get(symbol)
        if p is None:
            self.positions[symbol] = Position(round(signed, 9), px)
            return
        new_qty = round(p.qty + signed, 9)
        if abs(new_qty) < 1e-9:
            del self.positions[symbol]
        elif p.qty == 0 or (p.qty > 0) == (signed > 0):
            p.avg_entry_price = (abs(p.qty) * p.avg_entry_price + qty * px) / abs(new_qty)
            p.qty = new_qty
        elif (p.qty > 0) != (new_qty > 0):
            p.qty, p.avg_entry_price = new_qty, px
        else:
            p.qty = new_qty

    def close_position(self, symbol: str, query: dict) -> tuple[int, dict]:
        p = self.positions.get(symbol)
        if p is None:
            return 404, {"code": 40410000, "message": "position does not exist"}
        qty = abs(p.qty)
        try:
            if query.get("qty"):
                qty = float(query["qty"])
            elif query.get("percentage"):
                qty = round(abs(p.qty) * float(query["percentage"]) / 100.0, 9)
        except ValueError:
            return 422, {"code": 40010001, "message": "invalid qty or percentage"}
        side = "sell" if p.qty > 0 else "buy"
        reject = rules.check_close_qty(symbol, side, qty, self)
        if reject is not None:
            return reject.status, reject.body
        req = rules.OrderRequest(symbol=symbol, side=side, type="market", time_in_force="day",
                                 qty=rules.Decimal(str(qty)))
        o = self._new_rec(req, role="simple", otype="market", side=side)
        o.status = "new" if self.session_live(o) else "accepted"
        matching.match_now(self, o, (self.now_ns, 99, "", 0))
        return 200, o.to_json()

    def close_all(self, cancel_orders: bool) -> tuple[int, list]:
        if cancel_orders:
            self.cancel_all()
        out = []
        for sym in sorted(self.positions):
            status, body = self.close_position(sym, {})
            out.append({"symbol": sym, "status": status, "body": body})
        return 207, out

    def add_position(self, symbol: str, qty: float, avg_entry_price: float) -> None:
        if abs(qty) < 1e-12:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = Position(float(qty), float(avg_entry_price))

    # ------------------------------------------------------------------ reading orders
    def is_group_parent(self, o: OrderRec) -> bool:
        return bool(o.group) and o.is_parent and o.id in self.groups.get(o.group, ())

    def render(self, o: OrderRec, nested: bool) -> dict:
        legs = None
        if nested and self.is_group_parent(o):
            legs = [m.to_json() for m in self.group_members(o) if m.id != o.id]
        return o.to_json(legs)

    def clock_advance(self, t: datetime) -> None:
        matching.advance(self, t)

    def time_of(self, ns: int) -> datetime:
        return from_ns(ns)
