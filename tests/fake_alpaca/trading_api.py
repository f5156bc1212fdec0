"""Trading API v2 routes: (method, path, query, body) -> (status, JSON body or None). Caller holds engine.lock."""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

from . import views
from .orders import PARENT_ROLES, TERMINAL, OrderRec
from .values import BadValue, parse_time, to_bool, to_ns

if TYPE_CHECKING:
    from .engine import Engine

NOT_FOUND = {"code": 40410000, "message": "endpoint not found"}


def _bad(message: str) -> tuple[int, dict]:
    return 422, {"code": 40010001, "message": message}


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text[:10]) if text else None


class TradingApi:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.routes = [
            ("GET", r"/v2/account", self.account),
            ("GET", r"/v2/account/configurations", self.configurations),
            ("GET", r"/v2/account/activities(?:/\w+)?", lambda q, b: (200, [])),
            ("GET", r"/v2/account/portfolio/history", self.portfolio_history),
            ("GET", r"/v2/clock", lambda q, b: (200, views.clock(self.e))),
            ("GET", r"/v2/calendar", self.calendar),
            ("GET", r"/v2/assets", self.assets),
            ("GET", r"/v2/assets/(?P<key>[^/]+)", self.asset),
            ("GET", r"/v2/positions", self.positions),
            ("DELETE", r"/v2/positions", self.close_all),
            ("GET", r"/v2/positions/(?P<key>[^/]+)", self.position),
            ("DELETE", r"/v2/positions/(?P<key>[^/]+)", self.close_position),
            ("POST", r"/v2/orders", lambda q, b: self.e.submit(b)),
            ("GET", r"/v2/orders", self.list_orders),
            ("DELETE", r"/v2/orders", lambda q, b: self.e.cancel_all()),
            ("GET", r"/v2/orders:by_client_order_id", self.by_client_order_id),
            ("GET", r"/v2/orders/(?P<key>[^/]+)", self.get_order),
            ("PATCH", r"/v2/orders/(?P<key>[^/]+)", lambda q, b, key: self.e.replace(key, b)),
            ("DELETE", r"/v2/orders/(?P<key>[^/]+)", lambda q, b, key: self.e.cancel(key, f"/v2/orders/{key}")),
        ]
        self.compiled = [(m, re.compile(p + "$"), f) for m, p, f in self.routes]

    def handle(self, method: str, path: str, query: dict, body) -> tuple[int, object]:
        path = path.rstrip("/") or "/"
        matched_path = False
        for m, rx, fn in self.compiled:
            hit = rx.match(path)
            if hit:
                matched_path = True
                if m == method:
                    return fn(query, body, **hit.groupdict())
        if matched_path:
            return 405, {"code": 40510000, "message": "method not allowed"}
        return 404, NOT_FOUND

    # ------------------------------------------------------------------ account
    def account(self, q, b):
        return 200, views.account(self.e)

    def configurations(self, q, b):
        s = self.e.settings
        return 200, {"dtbp_check": "entry", "trade_confirm_email": "all", "suspend_trade": s.trade_suspended_by_user,
                     "no_shorting": not s.shorting_enabled, "fractional_trading": True,
                     "max_margin_multiplier": str(self.e.multiplier()), "pdt_check": "entry"}

    def portfolio_history(self, q, b):
        e = self.e
        equity = e.equity()
        return 200, {"timestamp": [int(to_ns(e.now) // 1_000_000_000)], "equity": [round(equity, 2)],
                     "profit_loss": [0.0], "profit_loss_pct": [0.0], "base_value": round(equity, 2),
                     "timeframe": q.get("timeframe") or "1D"}

    def calendar(self, q, b):
        try:
            start, end = _date(q.get("start")), _date(q.get("end"))
        except ValueError:
            return _bad("invalid start or end")
        return 200, views.calendar(self.e, start, end)

    def assets(self, q, b):
        return 200, [views.asset(self.e, s) for s in sorted(self.e.assets)]

    def _symbol(self, key: str) -> str | None:
        key_up = key.upper()
        if key_up in self.e.assets:
            return key_up
        return next((s for s in self.e.assets if views.asset_uuid(s) == key.lower()), None)

    def asset(self, q, b, key):
        sym = self._symbol(key)
        if sym is None:
            return 404, {"code": 40410000, "message": "asset not found"}
        return 200, views.asset(self.e, sym)

    # ------------------------------------------------------------------ positions
    def positions(self, q, b):
        return 200, [views.position(self.e, s) for s in sorted(self.e.positions)]

    def position(self, q, b, key):
        sym = self._symbol(key) or key.upper()
        if sym not in self.e.positions:
            return 404, {"code": 40410000, "message": "position does not exist"}
        return 200, views.position(self.e, sym)

    def close_position(self, q, b, key):
        return self.e.close_position(self._symbol(key) or key.upper(), q)

    def close_all(self, q, b):
        try:
            cancel = to_bool(q.get("cancel_orders"))
        except BadValue:
            return _bad("invalid cancel_orders")
        return self.e.close_all(cancel)

    # ------------------------------------------------------------------ orders
    def _nested(self, q) -> bool:
        return to_bool(q.get("nested"))

    def get_order(self, q, b, key):
        o = self.e.orders.get(key)
        if o is None:
            return 404, {"code": 40410000, "message": "order not found"}
        try:
            return 200, self.e.render(o, self._nested(q))
        except BadValue:
            return _bad("invalid nested")

    def by_client_order_id(self, q, b):
        coid = q.get("client_order_id")
        found = [o for o in self.e.orders.values() if o.client_order_id == coid]
        if not coid or not found:
            return 404, {"code": 40410000, "message": "order not found"}
        return 200, self.e.render(found[-1], self._nested(q))

    def list_orders(self, q, b):
        e = self.e
        status = (q.get("status") or "open").lower()
        direction = (q.get("direction") or "desc").lower()
        if status not in ("open", "closed", "all"):
            return _bad("invalid status")
        if direction not in ("asc", "desc"):
            return _bad("invalid direction")
        try:
            limit = int(q.get("limit") or 50)
            nested = self._nested(q)
            after = parse_time(q["after"]) if q.get("after") else None
            until = parse_time(q["until"]) if q.get("until") else None
        except (ValueError, BadValue):
            return _bad("invalid limit, nested, after or until")
        if limit < 1 or (limit > 500 and not e.settings.clamp_order_limit):
            return _bad("invalid limit: must be between 1 and 500")
        limit = min(limit, 500)
        symbols = {s.strip().upper() for s in (q.get("symbols") or "").split(",") if s.strip()}
        side = (q.get("side") or "").lower()

        def wanted(o: OrderRec) -> bool:
            if nested and o.group and e.is_group_parent(o):
                members = e.group_members(o)
                is_open = any(m.status not in TERMINAL for m in members)
            else:
                is_open = o.status not in TERMINAL
            if (status == "open" and not is_open) or (status == "closed" and is_open):
                return False
            if (symbols and o.symbol not in symbols) or (side and o.side != side):
                return False
            if after is not None and not o.submitted_at > after:
                return False
            return until is None or o.submitted_at < until

        pool = [o for o in e.orders.values() if not nested or o.role in PARENT_ROLES]
        chosen = sorted((o for o in pool if wanted(o)), key=lambda o: (o.submitted_at, o.seq),
                        reverse=direction == "desc")[:limit]
        return 200, [e.render(o, nested) for o in chosen]
