"""One iteration's plan: the four steps in order over one snapshot, with their conflicts resolved.

Precedence when two steps touch the same symbol: a full exit (software stop, hedge unwind) beats a
trim, and a trim beats a bare protect (the trim re-protects what it keeps). Cash for the hedge and
entries is the cash above MIN_CASH_RESERVE minus what open buy orders have already promised; sale
proceeds count only once they fill.
"""

from dataclasses import replace

from trading.confidence import ConfidenceModel
from trading.entries import plan_entries
from trading.hedging import measure_breadth, plan_hedge
from trading.intents import Decision, IntentKind, Plan, Step
from trading.orders import OrderIds
from trading.protection import plan_protection
from trading.rebalancing import plan_trims
from trading.settings import Settings
from trading.snapshot import Snapshot


def plan_iteration(snap: Snapshot, s: Settings, scorer: ConfidenceModel, strategy_name: str = "combined") -> Plan:
    ids = OrderIds(strategy_name, snap.now)
    plan = Plan()
    for note in snap.notes:
        plan.add(Decision(Step.PLAN, None, "data", note, level="warning"))

    protection = plan_protection(snap, s, ids)
    trims = plan_trims(snap, s, protection.levels, protection.exiting, ids)
    trimmed = {d.symbol for d in trims if d.intent is not None}
    for d in protection.decisions:
        if d.intent is not None and d.intent.kind == IntentKind.PROTECT and d.symbol in trimmed:
            d = replace(d, intent=None, reason=d.reason + " (placed by the trim below instead)")
        plan.add(d)

    cash_available = snap.cash - s.min_cash_reserve - snap.open_buy_notional()
    breadth = measure_breadth(snap.market, s.bellwethers, s.rsi_overbought)
    hedge = plan_hedge(snap, s, breadth, cash_available, protection.exiting, ids)
    unwound = {d.symbol for d in hedge if d.intent is not None and d.intent.kind == IntentKind.UNHEDGE}
    for d in trims:
        if d.intent is not None and d.symbol in unwound:
            d = replace(d, intent=None, reason=d.reason + " (superseded by the hedge unwind)")
        plan.add(d)
    for d in hedge:
        plan.add(d)
        if d.intent is not None and d.intent.kind == IntentKind.HEDGE:
            cash_available -= sum(o.notional for o in d.intent.orders)

    exiting = protection.exiting | unwound
    for d in plan_entries(snap, s, scorer, cash_available, exiting, ids):
        plan.add(d)
    return plan
