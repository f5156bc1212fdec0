"""Fault injection: HTTP faults answered instead of (or after) the real handler, and market-state faults.

HTTP faults (matched per request by `method` and `path` prefix, used up after `times` requests):
  "429"            answer 429 {"message":"too many requests"}, X-Ratelimit-Remaining 0, without processing.
  "500"/"503"/"504" answer that status with a small JSON body, without processing.
  "timeout"        sleep params["seconds"] (default 3) before handling the request normally.
  "lost_response"  process the request (an order is really accepted), then answer 504.
  "reset"          drop the connection without an answer (the client sees a connection reset); with
                   params after=True the request is processed first (an order accepted, the answer lost).
Order faults (used up by the next matching order that the server accepts):
  "partial_fill"   params: fraction (0.5), symbol (optional). The first fill of that order is only
                   fraction x qty (status partially_filled); the rest fills at the next bar.
  "reject_leg"     the next bracket/oto with a stop leg is accepted, but when its entry fills the stop leg
                   becomes "rejected" (the take-profit leg stays live).
Race faults (timing between the client's read and its DELETE /v2/orders/{id}; see pending.py for steps).
params: symbol (optional, default every symbol). `method`/`path` filter the DELETE like any HTTP fault.
  "fill_before_cancel"  used up by the next such DELETE of an open, working order of that symbol (a bracket/OCO
                   leg, a simple sell, ...): the server first fills that order at the mark (a filled exit leg
                   cancels its take-profit sibling or replaces its stop sibling, as Alpaca does; a filled
                   entry activates its legs), then answers the DELETE 422 42210000
                   `order is already in "filled" state`.
  "fill_after_cancel"   used up by the next such DELETE: it is accepted (204, the group goes pending_cancel), but
                   when the cancel resolves the order fills at the mark instead of being canceled (the position
                   moves accordingly; the other members go back to their status and a sibling is handled as
                   above).
  "cancel_never_confirmed"  a state fault (below): accepted cancels of orders of that symbol stay pending_cancel
                   (still open, still holding shares and buying power) until the fault is removed; they then
                   resolve on the next step (or the next clock advance).
Market-state faults (active until removed; `times`, `method` and `path` are ignored):
  "halt_symbol"    params: symbol. Orders for it are accepted but never fill (status stays new/accepted),
                   and its data (bars, latest trade/quote, snapshots, marks) freezes at the moment of the halt.
  "stale_data"     params: bars (1), symbol (optional, default all). The data API serves that symbol's bars
                   and latest trade/quote as if the last `bars` bars had not happened; fills are unaffected.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

HTTP_KINDS = ("429", "500", "503", "504", "timeout", "lost_response", "reset")
ORDER_KINDS = ("partial_fill", "reject_leg")
RACE_KINDS = ("fill_before_cancel", "fill_after_cancel")
STATE_KINDS = ("halt_symbol", "stale_data", "cancel_never_confirmed")
KINDS = HTTP_KINDS + ORDER_KINDS + RACE_KINDS + STATE_KINDS


@dataclass
class Fault:
    kind: str
    method: str | None = None
    path: str | None = None
    times: int | None = 1
    params: dict = field(default_factory=dict)
    since: datetime | None = None
    hits: int = 0

    def matches(self, method: str | None, path: str | None) -> bool:
        if self.method and method and self.method.upper() != method.upper():
            return False
        if self.method and not method:
            return False
        return not (self.path and not (path or "").startswith(self.path))

    @property
    def used_up(self) -> bool:
        return self.times is not None and self.hits >= self.times


class Faults:
    """srv.faults: add(kind, *, method=None, path=None, times=1, **params) -> Fault; remove(f); clear(kind=None)."""

    def __init__(self, clock) -> None:
        self._clock = clock
        self._items: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, kind, *, method: str | None = None, path: str | None = None, times: int | None = 1,
            **params) -> Fault:
        kind = str(kind)
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        if kind == "halt_symbol" and not params.get("symbol"):
            raise ValueError("halt_symbol needs symbol=")
        if kind in STATE_KINDS:
            times = None
        f = Fault(kind, method, path, times, dict(params), since=self._clock())
        with self._lock:
            self._items.append(f)
        return f

    def remove(self, fault: Fault) -> None:
        with self._lock:
            self._items = [f for f in self._items if f is not fault]

    def clear(self, kind: str | None = None) -> None:
        with self._lock:
            self._items = [f for f in self._items if kind is not None and f.kind != str(kind)]

    def __iter__(self):
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def take(self, kinds, method: str | None, path: str | None, accept=None) -> Fault | None:
        """Use up one hit of the first live fault of one of `kinds` matching the request (and `accept(f)`)."""
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        with self._lock:
            for f in self._items:
                if f.kind in kinds and not f.used_up and f.matches(method, path) and (accept is None or accept(f)):
                    f.hits += 1
                    return f
        return None

    def halted_since(self, symbol: str) -> datetime | None:
        with self._lock:
            times = [f.since for f in self._items if f.kind == "halt_symbol" and f.params.get("symbol") == symbol]
        return min(times) if times else None

    def blocks_cancel(self, symbol: str) -> bool:
        """A cancel_never_confirmed fault covers the symbol: its pending cancels stay pending."""
        with self._lock:
            return any(f.kind == "cancel_never_confirmed" and f.params.get("symbol") in (None, "", symbol)
                       for f in self._items)

    def stale_bars(self, symbol: str) -> int:
        with self._lock:
            counts = [int(f.params.get("bars", 1)) for f in self._items if f.kind == "stale_data"
                      and f.params.get("symbol") in (None, "", symbol)]
        return max(counts) if counts else 0
