"""One iteration's plan: the steps in order over one snapshot, then one intent per symbol.

Steps: protect (1), exit policy (1b), trim (2), hedge (3), enter (4). Every step plans on its own;
`arbitrate` then keeps at most one intent per symbol, the first in PRECEDENCE, and turns the others
into plain decision lines that say what superseded them. Two intents on one symbol in one iteration
would fight over the same shares (an OCO taking every share a sale needs, or a symbol sold twice).
PRECEDENCE, highest first (the table test in tests/test_planner.py walks this same tuple):
  flatten    the human's command: close everything
  exit       software stop: the position is past its stop with no server-side stop
  time-exit  a trade that made no progress is closed
  model-exit a trade the re-scored meta-model no longer expects to pay is closed (EXIT_CONFIDENCE)
  unhedge    the hedge is unwound (or escalated) in full
  partial    half is sold at +R, the rest re-protected
  trim       sold down to the cap, the rest re-protected (so it also does a bare protect's job)
  cancel     a halt cancels an open entry (what filled is re-protected right after)
  protect    an OCO for unprotected shares
  move-stop  breakeven or trailing: waits an hour for anything above
  hedge, enter  new exposure (never planned on a symbol held or being sold)
Cash for the hedge and entries is the cash above MIN_CASH_RESERVE minus what open buy orders already
promised; sale proceeds count only once they fill. The risk controller reviews the plan afterwards
(trading/risk); when it is HALTED, open entry orders are cancelled, and the human's flatten command
replaces the plan with closing everything.
"""

from dataclasses import replace

from trading.confidence import ConfidenceModel
from trading.intents import Decision, IntentKind, Plan, Step
from trading.order_ids import OrderIds
from trading.orders import MARKET_BUY_COLLAR
from trading.risk.verdict import Mode
from trading.settings import Settings
from trading.snapshot import Snapshot
from trading.steps.entries import plan_entries
from trading.steps.exits import plan_exits, rescore
from trading.steps.halt import plan_cancel_entries, plan_flatten
from trading.steps.hedging import measure_breadth, plan_hedge
from trading.steps.protection import plan_protection
from trading.steps.rebalancing import plan_trims

K = IntentKind
PRECEDENCE: tuple[IntentKind, ...] = (K.FLATTEN, K.EXIT, K.TIME_EXIT, K.MODEL_EXIT, K.UNHEDGE, K.PARTIAL, K.TRIM,
                                      K.CANCEL, K.PROTECT, K.MOVE_STOP, K.HEDGE, K.ENTER)
RANK = {kind: i for i, kind in enumerate(PRECEDENCE)}


def arbitrate(decisions: list[Decision]) -> list[Decision]:
    """At most one intent per symbol: the highest in PRECEDENCE keeps its intent, the others become lines
    saying what superseded them. Order is kept (the log reads step by step)."""
    winner: dict[str, IntentKind] = {}
    for d in decisions:
        if d.intent is not None:
            sym, kind = d.intent.symbol, d.intent.kind
            if sym not in winner or RANK[kind] < RANK[winner[sym]]:
                winner[sym] = kind
    out, kept = [], set()
    for d in decisions:
        if d.intent is None:
            out.append(d)
            continue
        sym = d.intent.symbol
        if d.intent.kind == winner[sym] and sym not in kept:
            kept.add(sym)
            out.append(d)
            continue
        out.append(replace(d, intent=None, reason=f"{d.reason} (superseded by the {winner[sym].value} of {sym} "
                                                  "this iteration: one intent per symbol)"))
    return out


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
    model_r, notes = rescore(snap, s, scorer, trades or {})
    exits = notes + plan_exits(snap, s, trades or {}, protection.exiting, ids, model_r)
    selling = protection.exiting | {d.symbol for d in exits
                                    if d.intent and d.intent.kind in (K.TIME_EXIT, K.MODEL_EXIT, K.PARTIAL)}
    trims = plan_trims(snap, s, protection.levels, selling, ids)
    decisions = [*protection.decisions, *exits]
    if mode == Mode.HALTED:
        decisions += plan_cancel_entries(snap)

    cash_available = snap.cash - s.min_cash_reserve - snap.open_buy_notional()
    breadth = measure_breadth(snap.rsi_values, s.bellwethers, s.rsi_overbought)
    hedge = plan_hedge(snap, s, breadth, cash_available, selling, ids)
    cash_available -= sum(o.notional * (1 + MARKET_BUY_COLLAR) for d in hedge
                          if d.intent is not None and d.intent.kind == K.HEDGE for o in d.intent.orders)
    selling |= {d.symbol for d in hedge if d.intent is not None and d.intent.kind == K.UNHEDGE}
    decisions += trims + hedge
    decisions += plan_entries(snap, s, scorer, cash_available, selling, ids, kelly_cap_usd, breadth.ratio)
    for d in arbitrate(decisions):
        plan.add(d)
    return plan

