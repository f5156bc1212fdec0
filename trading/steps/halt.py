"""What a halt does to open orders, and what the flatten command does to everything.

On HALTED the open entry orders (unfilled brackets) are cancelled and the protective legs stay.
Flatten cancels every order and closes every position at market (DAY market orders, so fractional
positions close too): a long is sold, a short (which this long-only strategy never means to hold) is
bought back.
"""

from trading.intents import Decision, Intent, IntentKind, Step
from trading.orders import Refusal, build_market
from trading.snapshot import Snapshot


def plan_cancel_entries(snap: Snapshot) -> list[Decision]:
    out = []
    for o in snap.open_orders:
        if o.is_entry:
            out.append(Decision(Step.RISK, o.symbol, "cancel", f"halted: cancel the open entry order ({o.qty:g} sh)",
                                Intent(IntentKind.CANCEL, o.symbol, (), (o.order_id,))))
    return out


def plan_flatten(snap: Snapshot, ids) -> list[Decision]:
    out = []
    for sym in sorted(set(snap.holdings) | {o.symbol for o in snap.open_orders}):
        orders = tuple(dict.fromkeys([o.order_id for o in snap.orders_for(sym)]
                                     + [o.parent_id for o in snap.orders_for(sym) if o.parent_id]))
        h = snap.holdings.get(sym)
        close = None
        if h is not None and h.qty != 0:
            side = "sell" if h.qty > 0 else "buy"
            close = build_market(sym, abs(h.qty), side, ids(sym, "flatten"), snap.session, snap.price(sym))
        sells = () if close is None or isinstance(close, Refusal) else (close,)
        if sells:
            what = f"{'sell' if h.qty > 0 else 'buy back the short of'} {abs(h.qty):g} sh at market"
        else:
            what = "no position" if close is None else f"no valid order now ({close.reason})"
        out.append(Decision(Step.RISK, sym, "flatten", f"flatten command: cancel {len(orders)} order(s), {what}",
                            Intent(IntentKind.FLATTEN, sym, sells, orders), level="warning"))
    return out
