"""The exit policy: what happens to each open trade between its entry and its bracket legs.

For every open trade the bot opened or adopted (hedges excluded: breadth manages them), in order of
precedence, at most one action per iteration:
- time exit: after TIME_EXIT_HOURS trading hours without ever reaching +1R, close it;
- model exit: with EXIT_CONFIDENCE and a meta-model, a trade whose re-scored expected R is below it is closed
  (`rescore` scores every open trade once per iteration, in one call);
- partial take-profit: at +PARTIAL_AT_R, cancel the legs, sell half, re-protect the rest (stop at
  least at breakeven, target unchanged);
- breakeven: at +BREAKEVEN_AT_R move the stop to entry + 0.1%;
- trailing: once the trade has seen +TRAIL_AFTER_R, trail the stop TRAIL_ATR_MULT x ATR14 below the
  highest price since entry.
Stops only ever move up. Moving a stop is an in-place replace of the resting stop leg (Alpaca PATCH;
Lumibot's modify_order in backtests), so the position is never without a stop. Alpaca's own
trailing_stop order cannot be a bracket or OCO leg, and these trades keep their take-profit leg, so
the stop leg is replaced instead; this also avoids Lumibot's trail_percent bug.
"""

import math
from decimal import ROUND_FLOOR

from trading.intents import Decision, Intent, IntentKind, Step
from trading.orders import CENT, Refusal, StopUpdate, build_market, build_oco, to_tick
from trading.records.ledger import Lot
from trading.settings import Settings
from trading.snapshot import Snapshot

BREAKEVEN_OFFSET = 0.001


def rescore(snap: Snapshot, s: Settings, scorer, trades: dict[str, Lot]) -> tuple[dict[str, float], list[Decision]]:
    """({symbol: expected R now} of the open entry trades, notes) for EXIT_CONFIDENCE; nothing without the setting
    or a meta-model. A scoring failure exits nothing and says so."""
    held = sorted(sym for sym, lot in trades.items() if lot.kind != "hedge" and sym in snap.holdings
                  and sym not in s.inverse_symbols)
    if s.exit_confidence is None or not hasattr(scorer, "assess") or not held:
        return {}, []
    try:
        # held trades are not candidates: their features stay out of the drift watch's window
        expected = scorer.assess(snap.rows(held), record=False)["expected_r"].to_numpy(dtype=float)
    except Exception as exc:  # noqa: BLE001 - a failing model must not block the rest of the exit policy
        return {}, [Decision(Step.EXITS, None, "skip", f"re-scoring the open trades failed ({type(exc).__name__}: "
                             f"{exc}); no model exits this iteration", level="warning")]
    return dict(zip(held, expected.tolist(), strict=True)), []


def plan_exits(snap: Snapshot, s: Settings, trades: dict[str, Lot], exiting: set[str], ids,
               model_r: dict[str, float] | None = None) -> list[Decision]:
    step = Step.EXITS
    out: list[Decision] = []
    inverse = set(s.inverse_symbols)
    for sym in sorted(trades):
        lot = trades[sym]
        h = snap.holdings.get(sym)
        price = snap.price(sym)
        if (h is None or h.qty <= 0 or sym in exiting or sym in inverse or lot.kind == "hedge"
                or not math.isfinite(price)):
            continue
        prot = snap.protection(sym)
        known = lot.risk_per_share is not None  # None: an adopted winner whose stop was re-anchored above its cost
        r_now, r_best = (lot.r_at(price), lot.r_at(lot.highest)) if known else (None, None)
        data = {"r": r_now, "r_best": r_best, "price": price}

        if known and s.time_exit_hours > 0 and lot.hours_held >= s.time_exit_hours and r_best < 1.0:
            sell = build_market(sym, h.qty, "sell", ids(sym, "time-exit"), snap.session, price)
            if not isinstance(sell, Refusal):
                out.append(Decision(step, sym, "time-exit", f"{lot.hours_held:.0f} trading hours without reaching "
                                    f"+1R (best {r_best:+.2f}R, now {r_now:+.2f}R): sell {h.qty:g} sh at market",
                                    Intent(IntentKind.TIME_EXIT, sym, (sell,), prot.order_ids), data=data))
                continue

        er = (model_r or {}).get(sym, math.nan)
        if s.exit_confidence is not None and er < s.exit_confidence:  # NaN (no complete features) never is
            sell = build_market(sym, h.qty, "sell", ids(sym, "model-exit"), snap.session, price)
            if not isinstance(sell, Refusal):
                now = f"now {r_now:+.2f}R" if known else f"now {price:.2f}"
                out.append(Decision(step, sym, "model-exit", f"re-scored: expected R {er:+.2f} < EXIT_CONFIDENCE "
                                    f"{s.exit_confidence:+.2f} ({now}): sell {h.qty:g} sh at market",
                                    Intent(IntentKind.MODEL_EXIT, sym, (sell,), prot.order_ids),
                                    data={**data, "expected_r": er}))
                continue
        if not known:
            continue
        stops = [o for o in snap.orders_for(sym) if o.is_protective_stop]
        current_stop = prot.stop_price if prot.stop_price is not None else lot.stop

        if s.partial_at_r > 0 and not lot.partial_done and r_now >= s.partial_at_r and h.qty >= 2:
            d = _partial(snap, s, lot, sym, h.qty, price, current_stop, prot, ids, data)
            if d is not None:
                out.append(d)
                continue

        candidates = []
        if s.breakeven_at_r > 0 and not lot.breakeven_done and r_now >= s.breakeven_at_r:
            candidates.append((to_tick(lot.price * (1 + BREAKEVEN_OFFSET), ROUND_FLOOR), "breakeven",
                               f"+{r_now:.2f}R >= {s.breakeven_at_r:g}R: stop to breakeven"))
        atr = snap.atr(sym)
        if s.trail_after_r > 0 and r_best >= s.trail_after_r and math.isfinite(atr) and atr > 0:
            candidates.append((to_tick(lot.highest - s.trail_atr_mult * atr, ROUND_FLOOR), "trailing",
                               f"best +{r_best:.2f}R >= {s.trail_after_r:g}R: trail {s.trail_atr_mult:g} ATR below "
                               f"the high {lot.highest:.2f}"))
        # a stop at or above the price would fill at once: such a candidate waits for a later bar, and does not
        # hold back a lower one (a trail from a spike's high, or a bad print's, must not cancel the breakeven)
        candidates = [c for c in candidates if c[0] <= to_tick(price) - CENT]
        if not candidates or not stops:
            continue
        new_stop, kind, why = max(candidates, key=lambda c: c[0])
        if current_stop is not None and new_stop <= to_tick(current_stop):
            continue  # never loosen, and do not churn an unchanged stop
        updates = tuple(StopUpdate(sym, o.order_id, new_stop, ids(sym, f"move-stop-{o.order_id[-6:]}"))
                        for o in stops)
        update = {"stop": float(new_stop), "stop_reason": kind, "trailing": kind == "trailing",
                  "breakeven_done": lot.breakeven_done or new_stop >= to_tick(lot.price)}
        out.append(Decision(step, sym, kind, f"{why}: stop {current_stop} -> {new_stop} (replace in place)",
                            Intent(IntentKind.MOVE_STOP, sym, updates, (), update), data=data))
    return out


def _partial(snap, s, lot, sym, qty, price, current_stop, prot, ids, data) -> Decision | None:
    sell_qty = math.floor(qty / 2)
    keep = math.floor(qty - sell_qty + 1e-9)
    stop = max(to_tick(current_stop or 0), to_tick(lot.price * (1 + BREAKEVEN_OFFSET), ROUND_FLOOR))
    target = to_tick(prot.target_price or lot.target or price * 1.05)
    oco = build_oco(sym, keep, price, stop, target, ids(sym, "partial-oco"))
    if isinstance(oco, Refusal):
        return None
    sell = build_market(sym, sell_qty, "sell", ids(sym, "partial"), snap.session, price)
    if isinstance(sell, Refusal):
        return None
    update = {"partial_done": True, "breakeven_done": True, "stop": float(stop), "stop_reason": "breakeven"}
    return Decision(Step.EXITS, sym, "partial", f"+{lot.r_at(price):.2f}R >= {s.partial_at_r:g}R: cancel "
                    f"{len(prot.order_ids)} protective order(s), sell {sell_qty} of {qty:g} sh, re-protect {keep} sh "
                    f"at stop {stop}, target {target}",
                    Intent(IntentKind.PARTIAL, sym, (sell, oco), prot.order_ids, update), data=data)
