"""Positions at a glance: one row per position with its protection, and the account's totals.

Built from a Snapshot, so the live check (Alpaca) and the offline check (the last backtest's final
state) show the same table. A position is near its stop when the price is within
NEAR_STOP_WARNING_PCT of the resting stop (or, unprotected, of the stop its entry implies).
"""

import json
import math

from trading.settings import Settings
from trading.snapshot import Snapshot


def position_rows(snap: Snapshot, s: Settings) -> tuple[list[dict], dict]:
    rows = []
    pv = snap.portfolio_value
    inverse = set(s.inverse_symbols)
    for sym in sorted(snap.holdings):
        h = snap.holdings[sym]
        price = snap.price(sym)
        prot = snap.protection(sym)
        pnl = h.pnl_pct(price)
        stop, target = prot.stop_price, prot.target_price
        protected = prot.has_stop
        stop_dist = (price - stop) / price if stop and math.isfinite(price) else None
        target_dist = (target - price) / price if target and math.isfinite(price) else None
        if protected:
            near = stop_dist is not None and stop_dist <= s.near_stop_warning_pct
        else:
            near = pnl is not None and pnl <= -(s.stop_loss_pct - s.near_stop_warning_pct)
        share = h.qty * price / pv if pv > 0 and math.isfinite(price) else None
        cap = s.max_inverse_allocation if sym in inverse else s.max_position_pct
        rows.append({"symbol": sym, "qty": h.qty, "entry": h.avg_entry_price, "last": price, "pnl_pct": pnl,
                     "stop": stop, "target": target, "stop_dist_pct": stop_dist, "target_dist_pct": target_dist,
                     "share_pct": share, "hedge": sym in inverse, "protected": protected, "near_stop": near,
                     "oversized": share is not None and share > cap + 1e-9})
    long_value = sum(r["qty"] * r["last"] for r in rows if not r["hedge"] and math.isfinite(r["last"]))
    inverse_value = sum(r["qty"] * r["last"] for r in rows if r["hedge"] and math.isfinite(r["last"]))
    totals = {"equity": pv, "cash": snap.cash, "long_exposure": long_value,
              "long_exposure_pct": long_value / pv if pv > 0 else None,
              "inverse_allocation_pct": inverse_value / pv if pv > 0 else None,
              "positions": len(rows), "unprotected": [r["symbol"] for r in rows if not r["protected"]],
              "near_stop": [r["symbol"] for r in rows if r["near_stop"]],
              "oversized": [r["symbol"] for r in rows if r["oversized"]], "time": str(snap.now)}
    return rows, totals


def needs_attention(totals: dict) -> bool:
    return bool(totals["unprotected"] or totals["near_stop"])


def render(rows: list[dict], totals: dict, note: str = "") -> str:
    def f(x, spec):
        return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)

    head = (f"{'symbol':<6} {'qty':>8} {'entry':>9} {'last':>9} {'P&L':>7} {'stop':>9} {'to stop':>8} "
            f"{'target':>9} {'to tgt':>7} {'share':>6} {'':>6}")
    lines = ([note, ""] if note else []) + [head, "-" * len(head)]
    for r in rows:
        stop = f(r["stop"], ",.2f") if r["protected"] else "UNPROTECTED"
        flags = " ".join(x for x, on in (("hedge", r["hedge"]), ("NEAR", r["near_stop"]), ("BIG", r["oversized"]))
                         if on)
        lines.append(f"{r['symbol']:<6} {r['qty']:>8g} {f(r['entry'], ',.2f'):>9} {f(r['last'], ',.2f'):>9} "
                     f"{f(r['pnl_pct'], '+.1%'):>7} {stop:>9} {f(r['stop_dist_pct'], '.1%'):>8} "
                     f"{f(r['target'], ',.2f'):>9} {f(r['target_dist_pct'], '.1%'):>7} {f(r['share_pct'], '.1%'):>6} "
                     f"{flags}")
    t = totals
    lines += ["", f"equity ${t['equity']:,.2f} | cash ${t['cash']:,.2f} | long exposure ${t['long_exposure']:,.2f} "
                  f"({f(t['long_exposure_pct'], '.1%')}) | inverse {f(t['inverse_allocation_pct'], '.1%')} | "
                  f"{t['positions']} positions",
              f"unprotected: {', '.join(t['unprotected']) or 'none'} | near stop: {', '.join(t['near_stop']) or 'none'}"
              f" | oversized: {', '.join(t['oversized']) or 'none'}"]
    return "\n".join(lines)


def to_json(rows: list[dict], totals: dict, source: str, simulated: bool) -> str:
    def clean(x):
        return None if isinstance(x, float) and not math.isfinite(x) else x

    return json.dumps({"source": source, "simulated": simulated, "totals": {k: clean(v) for k, v in totals.items()},
                       "positions": [{k: clean(v) for k, v in r.items()} for r in rows]}, indent=2)
