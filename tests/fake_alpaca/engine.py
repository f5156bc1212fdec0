"""Account state: cash, positions, orders; order submission and position closing.

One RLock (`engine.lock`) guards everything; the HTTP layer and FakeAlpaca's methods take it. What open orders
hold and what the account is worth: accounting.py. DELETE/PATCH of orders: amend.py. Work that resolves on a later
server step (first fills, cancels, replaces): pending.py. Fills, triggers and expiries driven by the clock:
matching.py. JSON views of the account and positions: views.py.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import datetime, timedelta

from . import amend, matching, rules, stream_events
from .accounting import Accounting, Position
from .faults import Faults
from .orders import SL_ROLES, TP_ROLES, OrderRec
from .pending import Pending
from .series import BarSeries
from .sessions import Sessions
from .settings import Settings
from .values import from_ns, to_ns

ARCA_ETFS = frozenset({"SPY", "QQQ", "DIA", "IWM", "SH", "PSQ", "SQQQ", "TQQQ", "SPXU", "SPXS", "SDS", "QID", "DOG",
                       "RWM", "SSO", "QLD", "UPRO", "VOO", "VTI", "GLD", "TLT", "XLK", "XLF", "XLE", "SOXL", "SOXS"})


__all__ = ["Engine", "Position", "Settings"]


class Engine(Accounting):
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
        self.pending = Pending(self)
        self.pushed: dict[str, tuple[float, float]] = {}  # FakeAlpaca.push_trade: (price, size) until the clock moves
        self.outbox: list[tuple] | None = None  # trade_updates (tag, message) waiting; None while no stream server
        self.emit_tag: int | None = None  # the request whose response the events emitted now must wait for

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
        """Last trade at now (frozen at the halt time for a halted symbol); None without data. A push_trade price
        wins until the clock next moves."""
        s = self.series.get(symbol)
        if s is None:
            return None
        t = self.now
        halt = self.halted_since(symbol)
        if symbol in self.pushed and halt is None:
            return self.pushed[symbol][0]
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

    # ------------------------------------------------------------------ order creation
    def expiry(self, tif: str, extended: bool, t: datetime) -> datetime:
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

    def next_seq(self) -> int:
        return next(self._seq)

    def new_rec(self, req: rules.OrderRequest, *, role: str, otype: str, side: str, limit=None, stop=None,
                 coid: str | None = None) -> OrderRec:
        now = self.now
        o = OrderRec(id=str(uuid.uuid4()), client_order_id=coid or str(uuid.uuid4()), symbol=req.symbol,
                     side=side, type=otype, time_in_force=req.time_in_force, order_class=req.order_class,
                     created_at=now, updated_at=now, submitted_at=now,
                     qty=float(req.qty) if req.qty is not None else None,
                     notional=float(req.notional) if req.notional is not None else None,
                     limit_price=float(limit) if limit is not None else None,
                     stop_price=float(stop) if stop is not None else None,
                     extended_hours=req.extended_hours, role=role, seq=self.next_seq())
        o.expires_at = self.expiry(o.time_in_force, o.extended_hours, now)
        self.coids.add(o.client_order_id)
        self.orders[o.id] = o
        return o

    def submit(self, body, method: str = "POST", path: str = "/v2/orders") -> tuple[int, dict]:
        req, reject = rules.check_new_order(body, self)
        if reject is not None:
            return reject.status, reject.body
        cls = req.order_class
        if cls == "oco":
            parent = self.new_rec(req, role="oco_tp", otype="limit", side=req.side, limit=req.tp_limit,
                                   coid=req.client_order_id)
        else:
            parent = self.new_rec(req, role="entry" if cls != "simple" else "simple", otype=req.type,
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
                legs.append(self.new_rec(req, role="tp", otype="limit", side=exit_side, limit=req.tp_limit))
            if req.sl_stop is not None:
                sl_type = "stop_limit" if req.sl_limit is not None else "stop"
                legs.append(self.new_rec(req, role="oco_sl" if cls == "oco" else "sl", otype=sl_type,
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
        self.emit(parent.status, parent)  # with its legs nested, before any fill (fill_delay_steps 0)
        self.pending.schedule_match(parent)  # never inside the POST unless fill_delay_steps is 0
        return 200, self.render(parent, nested=True)

    # ------------------------------------------------------------------ replace / cancel (amend.py, pending.py)
    def replace(self, order_id: str, body) -> tuple[int, dict]:
        return amend.replace(self, order_id, body)

    def cancel(self, order_id: str, path: str = "") -> tuple[int, dict | None]:
        return amend.cancel(self, order_id, path)

    def cancel_all(self) -> tuple[int, list]:
        return amend.cancel_all(self)

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
        if status != "held":  # a held leg has no trade_updates event of its own; it reports when it goes new
            self.emit(status, o)

    def emit(self, event: str, o: OrderRec, fill: tuple[float, float] | None = None) -> None:
        """Queue a trade_updates event for the stream server (fill = (price, qty) of one execution). Nothing is
        built while no stream server runs, so tests without streams pay nothing."""
        if self.outbox is None:
            return
        if event in stream_events.PENDING_EVENTS and not self.settings.stream_pending_events:
            return
        self.outbox.append((self.emit_tag, stream_events.trade_update(self, event, o, fill)))

    # ------------------------------------------------------------------ positions
    def close_position(self, symbol: str, query: dict) -> tuple[int, dict]:
        return amend.close_position(self, symbol, query)

    def close_all(self, cancel_orders: bool) -> tuple[int, list]:
        return amend.close_all(self, cancel_orders)

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
        self.pending.settle_all()  # everything the exchange owed the client happens before the new bars
        self.pushed.clear()  # a pushed trade price lasts until the clock moves
        matching.advance(self, t)

    def time_of(self, ns: int) -> datetime:
        return from_ns(ns)
