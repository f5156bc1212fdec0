"""Step 1: every position carries server-side protection.

A long position without a resting stop gets, in this order:
- a software stop check: at or below -STOP_LOSS_PCT from its entry it is sold at market;
- a warning when it is within NEAR_STOP_WARNING_PCT of that stop;
- an OCO (take-profit limit + stop) for the unprotected whole shares, at the entry-based levels; sell
  orders with no stop in their group (a take-profit whose stop leg Alpaca rejected) are cancelled
  first, as they hold the shares the OCO needs.
When the price already stands above the entry-based take-profit, the levels are re-anchored on the
current price (the step protects positions; it does not liquidate winners) and the line says so.
A short position is never intended by this long-only strategy (it can only come from a sale that
raced a fill, or from a human): step 1 buys it back at market, after cancelling the symbol's open
orders (a resting sell would deepen it, and Alpaca refuses a buy against an opposite open order).
"""

import math
from dataclasses import dataclass
from decimal import Decimal

from trading.intents import Decision, Intent, IntentKind, Step
from trading.order_ids import OrderIds
from trading.orders import CENT, Refusal, build_market, build_oco, protective_levels, to_tick
from trading.settings import Settings
from trading.snapshot import Snapshot


@dataclass(frozen=True)
class Levels:
    stop: Decimal
    target: Decimal


@dataclass
class ProtectionResult:
    decisions: list[Decision]
    exiting: set[str]  # symbols sold in full this iteration
    levels: dict[str, Levels]  # protective levels per held symbol (existing or newly planned)


def plan_protection(snap: Snapshot, s: Settings, ids: OrderIds) -> ProtectionResult:
    decisions: list[Decision] = []
    exiting: set[str] = set()
    levels: dict[str, Levels] = {}
    protected = 0
    for sym in sorted(snap.holdings):
        h = snap.holdings[sym]
        price = snap.price(sym)
        if h.qty < 0:
            decisions.append(_cover(sym, h.qty, snap, ids))
            exiting.add(sym)
            continue
        if not math.isfinite(price) or price <= 0:
            decisions.append(Decision(Step.PROTECT, sym, "skip", "no price data: cannot check or protect this "
                                      "position this iteration", level="warning"))
            continue
        prot = snap.protection(sym)
        whole = math.floor(h.qty + 1e-9)
        uncovered = whole - math.floor(prot.stop_qty + 1e-9)
        if prot.has_stop and prot.target_price is not None:
            levels[sym] = Levels(to_tick(prot.stop_price), to_tick(prot.target_price))
        if prot.has_stop and uncovered <= 0:
            protected += 1
            continue

        entry = h.avg_entry_price if h.avg_entry_price and h.avg_entry_price > 0 else price
        basis_note = "" if h.avg_entry_price else " (cost basis unknown: anchored on the current price)"
        pnl = price / entry - 1.0
        data = {"qty": h.qty, "price": price, "entry": entry, "pnl_pct": pnl}

        if pnl <= -s.stop_loss_pct:
            intent = _exit(sym, h.qty, prot.order_ids, ids, snap)
            decisions.append(Decision(Step.PROTECT, sym, "software-stop",
                                      f"{pnl:+.1%} is at or past the {-s.stop_loss_pct:.1%} stop with no server-side "
                                      f"stop: sell {h.qty:g} sh at market{basis_note}", intent, "warning", data))
            if intent is not None:
                exiting.add(sym)
            continue
        if pnl <= -(s.stop_loss_pct - s.near_stop_warning_pct):
            decisions.append(Decision(Step.PROTECT, sym, "near-stop",
                                      f"{pnl:+.1%}, within {s.near_stop_warning_pct * 100:.1f} points of the "
                                      f"{-s.stop_loss_pct:.1%} stop", None, "warning", data))

        known = levels.get(sym)
        lv, anchored = (known, False) if known else default_levels(entry, price, s)
        levels[sym] = lv
        oco = build_oco(sym, uncovered, price, lv.stop, lv.target, ids(sym, "protect"))
        if isinstance(oco, Refusal) and price <= float(lv.stop) + float(CENT):
            # the price sits on the stop, so no valid OCO exists: treat it as the stop being hit
            intent = _exit(sym, h.qty, prot.order_ids, ids, snap)
            decisions.append(Decision(Step.PROTECT, sym, "software-stop",
                                      f"price {price:.2f} is at its stop {lv.stop} with no server-side stop: "
                                      f"sell {h.qty:g} sh at market", intent, "warning", data))
            exiting.add(sym)
            continue
        if isinstance(oco, Refusal):
            decisions.append(Decision(Step.PROTECT, sym, "skip", f"cannot protect: {oco.reason}", None, "warning",
                                      data))
            continue
        why = "no server-side protection" if not prot.has_stop else f"only {prot.stop_qty:g} of {whole} sh covered"
        if prot.orphan_ids:
            why += f" (cancel {len(prot.orphan_ids)} sell order(s) with no stop, which hold the shares)"
        anchor_note = (f"; price {price:.2f} is past the entry-based target, levels re-anchored on it"
                       if anchored else "")
        frac = h.qty - whole
        frac_note = f"; {frac:g} fractional sh cannot carry an OCO" if frac > 1e-9 else ""
        decisions.append(Decision(Step.PROTECT, sym, "protect",
                                  f"{why} ({pnl:+.1%}): OCO {oco.qty} sh, stop {oco.stop_loss}, target "
                                  f"{oco.take_profit}{basis_note}{anchor_note}{frac_note}",
                                  Intent(IntentKind.PROTECT, sym, (oco,), prot.orphan_ids), data=data))
    if snap.holdings:
        unprotected = len(snap.holdings) - protected
        decisions.insert(0, Decision(Step.PROTECT, None, "check",
                                     f"{len(snap.holdings)} positions: {protected} protected server-side, "
                                     f"{unprotected} need attention"))
    return ProtectionResult(decisions, exiting, levels)


def levels_for(entry: float, s: Settings) -> Levels:
    stop, target = protective_levels(entry, s.stop_loss_pct, s.take_profit_pct)
    return Levels(stop, target)


def default_levels(entry: float, price: float, s: Settings) -> tuple[Levels, bool]:
    """Entry-based levels, re-anchored on the price when it already stands past the target."""
    lv = levels_for(entry, s)
    if lv.target <= to_tick(price) + CENT:
        return levels_for(price, s), True
    return lv, False


def _exit(sym: str, qty: float, cancel: tuple[str, ...], ids: OrderIds, snap: Snapshot) -> Intent | None:
    order = build_market(sym, qty, "sell", ids(sym, "exit"), snap.session, snap.price(sym))
    if isinstance(order, Refusal):
        return None
    return Intent(IntentKind.EXIT, sym, (order,), cancel)



def _cover(sym: str, qty: float, snap: Snapshot, ids: OrderIds) -> Decision:
    cancel = tuple(dict.fromkeys([o.order_id for o in snap.orders_for(sym)]
                                 + [o.parent_id for o in snap.orders_for(sym) if o.parent_id]))
    order = build_market(sym, -qty, "buy", ids(sym, "cover"), snap.session, snap.price(sym))
    if isinstance(order, Refusal):
        return Decision(Step.PROTECT, sym, "short", f"short position of {qty:g} sh but no valid buy-back now "
                        f"({order.reason}); the next iteration tries again", level="warning")
    return Decision(Step.PROTECT, sym, "cover", f"short position of {qty:g} sh (this strategy is long-only): "
                    f"cancel {len(cancel)} open order(s), buy back {-qty:g} sh at market",
                    Intent(IntentKind.EXIT, sym, (order,), cancel), "warning", {"qty": qty})
