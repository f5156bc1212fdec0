"""Asynchronous order work: first fills, cancels and replaces that resolve on a later server step.

Real Alpaca answers POST, DELETE and PATCH before the exchange has acted, so a client that reads right after
writing sees `new`, `pending_cancel` or `pending_replace`. The fake reproduces that deterministically: a *step*
is one HTTP request to the Trading API (FakeAlpaca.dispatch calls `tick()` before handling it; data requests
and the test-side FakeAlpaca methods do not count). Work queued with a delay of d steps by request N resolves at
the start of request N+d, before that request is handled. A delay of 0 resolves inside the request itself.

Kinds of work:
  match    the first matching of a new order (or of a replacement) against the mark, Settings.fill_delay_steps
           after it was accepted. At most Settings.max_volume_fraction of the current bar's volume fills per step
           (not for ioc/fok); the rest is matched again on the next step, status partially_filled meanwhile.
  cancel   DELETE put the order and its open group members in pending_cancel; Settings.cancel_delay_steps later
           they become canceled, or, with the fill_after_cancel fault, the order fills at the mark instead.
           While a cancel_never_confirmed fault covers the symbol the cancel stays pending.
  replace  PATCH put the old order in pending_replace and its replacement in pending_new; cancel_delay_steps
           later the old one is replaced and the new one goes live (and is matched like a new order). If the old
           order left pending_replace meanwhile (filled, canceled), the replacement is rejected (A13).
Every clock advance settles all queued work first (fills without the volume cap), so bar events never meet a
pending order; only cancels held by cancel_never_confirmed survive it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import matching
from .orders import SL_ROLES

if TYPE_CHECKING:
    from .engine import Engine
    from .orders import OrderRec


@dataclass
class Action:
    due: int
    seq: int
    kind: str                 # "match" | "cancel" | "replace"
    order_id: str
    prev: dict[str, str] = field(default_factory=dict)   # cancel/replace: order id -> status before pending_*
    fill_instead: bool = False                            # cancel: the fill_after_cancel race
    new_id: str | None = None                             # replace: the replacement
    active: bool = True                                   # replace: whether the replacement works when live


class Pending:
    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.step = 0
        self.actions: list[Action] = []
        self._seq = itertools.count()

    # ------------------------------------------------------------------ driving
    def tick(self) -> None:
        """One Trading API request: resolve the work that is due by now."""
        self.step += 1
        self._run(lambda a: a.due <= self.step, capped=True)

    def settle_all(self) -> None:
        """Resolve every queued action now (a clock advance); fills take the whole remaining quantity."""
        self._run(lambda a: True, capped=False)

    def settle_cancels(self) -> None:
        """Resolve the queued cancels and replaces now (DELETE /v2/positions?cancel_orders=true waits for them)."""
        self._run(lambda a: a.kind in ("cancel", "replace"), capped=False)

    def _run(self, ready: Callable[[Action], bool], capped: bool) -> None:
        blocked: list[Action] = []
        while True:
            batch = sorted((a for a in self.actions if ready(a)), key=lambda a: (a.due, a.seq))
            if not batch:
                break
            for a in batch:
                self.actions.remove(a)
                if not self._resolve(a, capped):
                    blocked.append(a)
        self.actions.extend(blocked)

    def _queue(self, a: Action, delay: int) -> None:
        if delay <= 0 and self._resolve(a, capped=True):
            return
        a.due = self.step + max(delay, 0)
        self.actions.append(a)

    # ------------------------------------------------------------------ scheduling
    def schedule_match(self, o: OrderRec, delay: int | None = None) -> None:
        delay = self.e.settings.fill_delay_steps if delay is None else delay
        self._queue(Action(0, next(self._seq), "match", o.id), delay)

    def schedule_cancel(self, o: OrderRec, prev: dict[str, str], fill_instead: bool) -> None:
        a = Action(0, next(self._seq), "cancel", o.id, prev=prev, fill_instead=fill_instead)
        self._queue(a, self.e.settings.cancel_delay_steps)

    def schedule_replace(self, old: OrderRec, new: OrderRec, prev_status: str, active: bool) -> None:
        a = Action(0, next(self._seq), "replace", old.id, prev={old.id: prev_status}, new_id=new.id, active=active)
        self._queue(a, self.e.settings.cancel_delay_steps)

    # ------------------------------------------------------------------ resolving
    def _resolve(self, a: Action, capped: bool) -> bool:
        """Carry out one action; False leaves it queued (a cancel the exchange has not confirmed)."""
        o = self.e.orders[a.order_id]
        if a.kind == "match":
            self._match(o, capped)
        elif a.kind == "cancel":
            return self._cancel(o, a)
        else:
            self._replace(o, a)
        return True

    def _key(self) -> tuple:
        return (self.e.now_ns, 99, "", 0)

    def _match(self, o: OrderRec, capped: bool) -> None:
        if not o.is_open:
            return
        fault_partial = o.partial_fraction is not None
        before = o.filled_qty
        matching.match_now(self.e, o, self._key(), self.volume_cap(o) if capped else None)
        for leg_id in o.legs:  # OCO legs work from the start; a filled bracket entry's legs were matched above
            matching.match_now(self.e, self.e.orders[leg_id], self._key())
        if o.status == "partially_filled" and o.filled_qty > before and not fault_partial:
            self.schedule_match(o, delay=1)  # the volume cap: the next slice on the next step

    def volume_cap(self, o: OrderRec) -> float | None:
        """Shares one step may fill: max_volume_fraction of the current (else the last ended) bar's volume."""
        frac = self.e.settings.max_volume_fraction
        s = self.e.series.get(o.symbol)
        if frac is None or s is None or o.time_in_force in ("ioc", "fok"):
            return None
        i = s.current(self.e.now_ns)
        if i < 0:
            i = s.last_ended(self.e.now_ns)
        vol = float(s.volume[i]) if i >= 0 else 0.0
        if not vol > 0 or math.isnan(vol):
            return None
        return frac * vol

    def _cancel(self, o: OrderRec, a: Action) -> bool:
        e = self.e
        if e.faults.blocks_cancel(o.symbol):
            return False
        members = [e.orders[i] for i in a.prev if e.orders[i].status == "pending_cancel"]
        if a.fill_instead:  # the exchange filled the order before it saw the cancel
            for m in members:  # back to working; a replace that was in flight has been rejected meanwhile
                prev = a.prev[m.id]
                m.status = prev if prev != "pending_replace" else ("held" if m.role in SL_ROLES else "new")
            px = e.mark(o.symbol)
            if px is not None and o.is_open:
                o.partial_fraction = None
                matching.fill(e, o, px, self._key())
            return True
        for m in members:
            e.set_status(m, "canceled")
        return True

    def _replace(self, old: OrderRec, a: Action) -> None:
        e = self.e
        new = e.orders[a.new_id]
        old.replacement = None
        if old.status != "pending_replace":  # the old order filled or was canceled first
            if new.status == "pending_new":
                e.set_status(new, "rejected")
            return
        prev = a.prev[old.id]
        old.replaced_by = new.id  # before set_status: its `replaced` event carries the link
        e.set_status(old, "replaced")
        new.status = prev if prev in ("new", "held") else "new"
        new.updated_at = e.now
        new.active = a.active
        if old.group:
            members = e.groups[old.group]
            members[members.index(old.id)] = new.id
        if new.role == "entry" and new.qty is not None and old.qty is not None and new.qty != old.qty:
            for leg in e.legs_of(new):
                leg.qty = new.qty
        if new.status == "new":  # after the old order's `replaced`, with the group (nested legs) updated
            e.emit("new", new)
        self.schedule_match(new)
