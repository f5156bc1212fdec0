"""Step 2: no position above MAX_POSITION_PCT of portfolio value; inverse ETFs within their own cap.

A position above its cap is sold down to the cap minus TRIM_BUFFER_PCT (one point by default), so a
position that hovers at the cap is trimmed once, not by one share every hour (each trim replaces the
protective legs). A position exactly at the cap is left alone.

Shares held by open bracket or OCO legs cannot be sold on Alpaca ("insufficient qty available"), and
in Lumibot's backtester a stop left at the old size would later sell shares that are gone and leave
the account short. So a trim is one intent: cancel the legs, sell the excess at market, and put an
OCO on the remainder at the original stop and target.
"""

import math

from trading.intents import Decision, Intent, IntentKind, Step
from trading.orders import Refusal, build_market, build_oco
from trading.settings import Settings
from trading.snapshot import Snapshot
from trading.steps.protection import Levels, default_levels


def plan_trims(snap: Snapshot, s: Settings, levels: dict[str, Levels], exiting: set[str], ids) -> list[Decision]:
    pv = snap.portfolio_value
    if not pv > 0:
        return [Decision(Step.TRIM, None, "skip", f"portfolio value {pv:,.2f} is not positive: no trims")]
    inverse = set(s.inverse_symbols)
    decisions: list[Decision] = []
    for sym in sorted(snap.holdings):
        if sym in exiting or sym in inverse:
            continue
        d = _trim_to(snap, s, sym, s.max_position_pct * pv, (s.max_position_pct - s.trim_buffer_pct) * pv,
                     s.max_position_pct, levels, ids)
        if d is not None:
            decisions.append(d)

    held_inverse = [sym for sym in snap.holdings if sym in inverse and sym not in exiting]
    inverse_value = sum(snap.value(sym) for sym in held_inverse)
    cap = s.max_inverse_allocation * pv
    if held_inverse and inverse_value > cap:
        largest = max(held_inverse, key=snap.value)
        buffer = min(s.trim_buffer_pct, s.max_inverse_allocation) * pv
        allowed = snap.value(largest) - (inverse_value - cap)
        d = _trim_to(snap, s, largest, allowed, max(allowed - buffer, 0.0), s.max_inverse_allocation, levels, ids,
                     label=f"inverse ETFs at {inverse_value / pv:.1%} exceed the {s.max_inverse_allocation:.0%} cap")
        if d is not None:
            decisions.append(d)
    if not decisions:
        decisions.append(Decision(Step.TRIM, None, "ok", f"every position within {s.max_position_pct:.0%} "
                                  f"(inverse within {s.max_inverse_allocation:.0%})"))
    return decisions


def _trim_to(snap: Snapshot, s: Settings, sym: str, allowed_value: float, target_value: float, cap_pct: float,
             levels: dict[str, Levels], ids, label: str | None = None) -> Decision | None:
    """Trim `sym` to `target_value` when its value exceeds `allowed_value`."""
    h = snap.holdings[sym]
    price = snap.price(sym)
    if h.qty <= 0 or not math.isfinite(price) or price <= 0:
        return None
    value = h.qty * price
    if value <= allowed_value:
        return None
    pv = snap.portfolio_value
    sell = min(math.ceil((value - target_value) / price - 1e-9), math.floor(h.qty + 1e-9))
    if sell < 1:
        return None
    why = label or f"{value / pv:.2%} of portfolio is above the {cap_pct:.0%} cap"
    remainder = h.qty - sell
    prot = snap.protection(sym)
    entry = h.avg_entry_price or price
    lv = levels.get(sym) or default_levels(entry, price, s)[0]
    sell_order = build_market(sym, sell, "sell", ids(sym, "trim"), snap.session, price)
    orders = [sell_order]
    note = ""
    if math.floor(remainder + 1e-9) >= 1:
        oco = build_oco(sym, math.floor(remainder + 1e-9), price, lv.stop, lv.target, ids(sym, "trim-oco"))
        if isinstance(oco, Refusal):
            # the remainder cannot be protected at the original levels (price at or through one): sell it all
            sell_order = build_market(sym, h.qty, "sell", ids(sym, "trim"), snap.session, price)
            orders = [sell_order]
            note = f"; remainder not protectable ({oco.reason}), so the whole position is sold"
            sell = h.qty
        else:
            orders.append(oco)
            note = f"; re-protect {oco.qty} sh at stop {oco.stop_loss}, target {oco.take_profit}"
    cancel = f"cancel {len(prot.order_ids)} protective order(s), " if prot.order_ids else ""
    reason = f"{why}: {cancel}sell {sell:g} of {h.qty:g} sh at market (to {target_value / pv:.1%}){note}"
    data = {"qty": h.qty, "sell_qty": sell, "price": price, "weight": value / pv}
    if isinstance(sell_order, Refusal):
        return Decision(Step.TRIM, sym, "skip", f"{why} but no valid sell order now: {sell_order.reason}",
                        level="warning", data=data)
    return Decision(Step.TRIM, sym, "trim", reason, Intent(IntentKind.TRIM, sym, tuple(orders), prot.order_ids),
                    data=data)
