"""One iteration's plan: the steps in order over one snapshot, with their conflicts resolved.

Steps: protect (1), exit policy (1b), trim (2), hedge (3), enter (4). Precedence when two steps
touch the same symbol: a full exit (software stop, time exit, hedge unwind) beats a partial, a
partial beats a trim, a trim beats a moved stop or a bare protect (the trim re-protects what it
keeps). Cash for the hedge and entries is the cash above MIN_CASH_RESERVE minus what open buy
orders already promised; sale proceeds count only once they fill. The risk controller reviews the
plan afterwards (trading/risk); when it is HALTED, open entry orders are cancelled, and the human's
flatten command replaces the plan with closing everything.
"""

from dataclasses import replace

from trading.confidence import ConfidenceModel
from trading.entries import plan_entries
from trading.exits import plan_exits
from trading.halt import plan_cancel_entries, plan_flatten
from trading.hedging import measure_breadth, plan_hedge
from trading.intents import Decision, IntentKind, Plan, Step
from trading.orders import OrderIds
from trading.protection import plan_protection
from trading.rebalancing import plan_trims
from trading.risk.verdict import Mode
from trading.settings import Settings
from trading.snapshot import Snapshot


def plan_iteration(snap: Snapshot, s: Settings, scorer: ConfidenceModel, strategy_name: str = "combined",
                   trades: dict | None = None, kelly_cap_usd: float | None = None, mode: Mode = Mode.ACTIVE,
                   flatten: bool = False, id_time=None) -> Plan:
    ids = OrderIds(strategy_name, id_time or snap.now)  # live: the iteration's slot, so a restart reuses the ids
    plan = Plan()
    for note in snap.notes:
        plan.add(Decision(Step.PLAN, None, "data", note, level="warning"))
    if flatten:
        for d in plan_flatten(snap, ids):
            plan.add(d)
        return plan

    protection = plan_protection(snap, s, ids)
    exits = plan_exits(snap, s, trades or {}, protection.exiting, ids)
    exiting = protection.exiting | {d.symbol for d in exits if d.intent and d.intent.kind == IntentKind.TIME_EXIT}
    partial = {d.symbol for d in exits if d.intent and d.intent.kind == IntentKind.PARTIAL}
    trims = plan_trims(snap, s, protection.levels, exiting | partial, ids)
    trimmed = {d.symbol for d in trims if d.intent is not None}
    for d in protection.decisions:
        if d.intent is not None and d.intent.kind == IntentKind.PROTECT and d.symbol in trimmed:
            d = replace(d, intent=None, reason=d.reason + " (placed by the trim below instead)")
        plan.add(d)
    for d in exits:
        if d.intent is not None and d.intent.kind == IntentKind.MOVE_STOP and d.symbol in trimmed:
            d = replace(d, intent=None, reason=d.reason + " (next iteration: the trim below re-protects first)")
        plan.add(d)
    if mode == Mode.HALTED:
        for d in plan_cancel_entries(snap):
            plan.add(d)

    cash_available = snap.cash - s.min_cash_reserve - snap.open_buy_notional()
    breadth = measure_breadth(snap.rsi_values, s.bellwethers, s.rsi_overbought)
    hedge = plan_hedge(snap, s, breadth, cash_available, exiting, ids)
    unwound = {d.symbol for d in hedge if d.intent is not None and d.intent.kind == IntentKind.UNHEDGE}
    for d in trims:
        if d.intent is not None and d.symbol in unwound:
            d = replace(d, intent=None, reason=d.reason + " (superseded by the hedge unwind)")
        plan.add(d)
    for d in hedge:
        plan.add(d)
        if d.intent is not None and d.intent.kind == IntentKind.HEDGE:
            cash_available -= sum(o.notional for o in d.intent.orders)

    for d in plan_entries(snap, s, scorer, cash_available, exiting | unwound | partial, ids, kelly_cap_usd,
                          breadth.ratio):
        plan.add(d)
    return plan
