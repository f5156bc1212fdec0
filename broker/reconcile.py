"""Start-up reconciliation: before the first iteration, make the journal agree with the broker.

- Orders the journal left in doubt ("sending": the process died between writing and sending;
  "unknown": the submit failed without a clear answer) are looked up by client order id: found means
  sent, not found means not sent. Live iterations settle these first too.
- Every open order at Alpaca is matched to the journal by client order id and watched for fills;
  orders the bot did not place are reported.
- Fills that happened while the bot was down are recorded from the watch list.
- A position the journal does not know is adopted as unprotected, so step 1 checks and protects it;
  a trade the journal thinks is open but Alpaca does not hold was closed while the bot was away.
"""

from datetime import datetime

from broker.fills import FillWatcher
from broker.gateway import AlpacaGateway
from broker.snapshot import open_orders
from trading.order_ids import role_from_client_id
from trading.records.journal import Journal
from trading.records.ledger import Fill, Ledger


def resolve_in_doubt(gateway: AlpacaGateway, journal: Journal, watcher: FillWatcher) -> list[str]:
    """Orders whose fate the journal does not know, settled by looking them up by client order id:
    "sending" (the process died while sending) and "unknown" (the submit failed in a way that may have
    reached Alpaca: a timeout, a 5xx, a reset). Found: sent, watched for fills. Not found: not sent."""
    lines = []
    rows = journal.conn.execute("SELECT client_order_id, status FROM orders WHERE status IN ('sending', 'unknown')")
    for cid, status in rows.fetchall():
        found = gateway.order_by_client_id(cid)
        why = "was being sent when the bot stopped" if status == "sending" else "had no answer from Alpaca"
        if found is None:
            journal.update_order(cid, status="not sent")
            lines.append(f"{cid}: {why}; Alpaca has no such order (not sent)")
        else:
            journal.update_order(cid, broker_order_id=str(found.id), status=str(getattr(found.status, "value", "")))
            watcher.track(str(found.id), found.symbol, str(found.side.value), role_from_client_id(cid) or "unknown")
            lines.append(f"{cid}: {why}; Alpaca has it ({found.status.value})")
    return lines


def reconcile(gateway: AlpacaGateway, journal: Journal, ledger: Ledger, watcher: FillWatcher,
              now: datetime) -> list[str]:
    lines = resolve_in_doubt(gateway, journal, watcher)

    raw = gateway.open_orders()
    ours = foreign = 0
    for o in raw:
        if journal.order_by_client_id(o.client_order_id):
            ours += 1
            journal.update_order(o.client_order_id, broker_order_id=str(o.id), status=str(o.status.value))
        else:
            foreign += 1
            lines.append(f"{o.symbol}: open {o.side.value} {o.type.value} order {o.client_order_id} was not placed "
                         "by this bot (left as it is)")
    watcher.track_open(raw)
    lines += [f"while the bot was down: {n}" for n in watcher.sync(gateway, ledger, raw, now)]

    positions = {p.symbol: p for p in gateway.positions() if float(p.qty) != 0}
    trades = ledger.open_trades()
    adopted = []
    for sym, p in positions.items():
        if sym not in trades and float(p.qty) > 0:  # a short is never a trade of this long-only bot: step 1 covers it
            ledger.open_lot(sym, float(p.qty), float(p.avg_entry_price), now, "legacy")
            ledger.update(sym)
            adopted.append(sym)
    closed_away = [sym for sym in trades if sym not in positions]
    for sym in closed_away:
        lot = trades[sym]
        prices = gateway.latest_prices([sym])
        ledger.record_fill(Fill(now, sym, "sell", lot.qty, prices.get(sym, lot.price), "unknown", f"away-{sym}"))
    protected = {o.symbol for o in open_orders(raw) if o.is_protective_stop}
    unprotected = sorted(set(positions) - protected)
    lines.insert(0, f"reconciled with Alpaca: {len(positions)} position(s) ({len(unprotected)} without a stop"
                    f"{': ' + ', '.join(unprotected) if unprotected else ''}), {len(raw)} open order(s) "
                    f"({ours} placed by this bot, {foreign} not)"
                    + (f"; adopted {', '.join(adopted)}" if adopted else "")
                    + (f"; closed while away: {', '.join(closed_away)}" if closed_away else ""))
    return lines
