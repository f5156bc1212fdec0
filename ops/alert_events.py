"""What is worth an alert: the event catalogue, and plain functions from the bot's own records to events.

Decision rows (trading/records/decision_log.py: time, step, symbol, action, level, reason, gate, ...)
map to events through one table, `RULES`, on (step, action, gate): the text of a line is never parsed.
Closed trades (trading/records/ledger.py) give the stop and take-profit fills with their P&L and R.
What became of an order (placed, rejected with Alpaca's message) is read from the journal's orders
table once the iteration has sent it (`OrderOutcomes`). Levels: info (routine), warning (the owner
should know, may need to act), critical (trading is impaired or a position is at risk now).
"""

import json
import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class EventSpec:
    level: str
    title: str
    when: str  # for the README's table
    per_symbol: bool = True  # dedupe key is event + symbol; False: one key for the event whatever the symbol


EVENTS: dict[str, EventSpec] = {
    "bot_started": EventSpec("info", "Bot started", "the bot starts: paper or LIVE, masked account, equity "
                             "(warning when it trades real money)"),
    "bot_stopped": EventSpec("warning", "Bot stopped", "the bot stops (Ctrl-C, SIGTERM, or an error: critical)"),
    "bot_not_started": EventSpec("critical", "Bot did not start", "`live_trader.py` refused to start: the model file "
                                 "cannot be trusted, Alpaca did not answer, or live money was not opted into; why",
                                 per_symbol=False),
    "order_rejected": EventSpec("warning", "Order rejected", "Alpaca refused an order: its message"),
    "unprotected": EventSpec("warning", "Position unprotected", "step 1 found a position without a server-side "
                             "stop (an OCO is being placed)"),
    "protection_placed": EventSpec("info", "Protection placed", "that OCO was accepted: stop and target"),
    "protection_failed": EventSpec("critical", "Protection failed", "that OCO was refused or got no answer, or "
                                   "no valid OCO exists for the position"),
    "software_stop": EventSpec("critical", "Software stop", "a position at or past its stop with no server-side "
                               "stop is sold at market"),
    "short_position": EventSpec("warning", "Short position", "a short this long-only bot never meant to hold"),
    "stop_filled": EventSpec("warning", "Stop filled", "a stop (initial, breakeven or trailing) filled: P&L and R"),
    "take_profit_filled": EventSpec("info", "Take-profit filled", "a take-profit filled: P&L and R"),
    "risk_reducing": EventSpec("warning", "REDUCING", "a loss limit: no new entries or hedges; rule, until when"),
    "risk_halted": EventSpec("critical", "HALTED", "protective orders only: halt command, kill-switch file, weekly "
                             "loss; rule, until when"),
    "circuit_breaker": EventSpec("critical", "Circuit breaker", "equity fell CIRCUIT_BREAKER_PCT from the recent "
                                 "peak: entries paused, until when"),
    "risk_resumed": EventSpec("warning", "Resumed", "a hold ended or the resume command lifted it"),
    "flattened": EventSpec("warning", "Flattened", "the flatten command completed: no positions, no orders"),
    "broker_outage": EventSpec("critical", "Broker unreachable", "Alpaca stopped answering: iterations skipped",
                               per_symbol=False),
    "broker_back": EventSpec("warning", "Broker back", "Alpaca answers again: positions re-read, protection "
                             "re-checked", per_symbol=False),
    "stale_data": EventSpec("warning", "Stale data", "the feed (or a symbol) lags: no new exposure", per_symbol=False),
    "model_blocked": EventSpec("warning", "Entries blocked by the model", "the meta-model is stale (with "
                               "BLOCK_ENTRIES_ON_STALE_MODEL) or failed to score", per_symbol=False),
    "model_stale": EventSpec("warning", "Model stale", "the meta-model is older than MAX_MODEL_AGE_DAYS "
                             "(checked at start and after each close)", per_symbol=False),
    "model_drift": EventSpec("warning", "Model inputs drifted", "a feature's PSI against training >= 0.25 over the "
                             "recent candidates (checked at start and after each close)", per_symbol=False),
    "model_decayed": EventSpec("warning", "Model edge decayed", "the trades since training average two standard "
                               "errors below its out-of-sample record, or their realised R falls as its expected R "
                               "rises (calibration; checked at start and after each close)",
                               per_symbol=False),
    "model_fallback": EventSpec("warning", "Entries on the rule score", "MODEL_DEGRADED_ACTION=fallback while the "
                                "model's edge is decayed", per_symbol=False),
    "model_changed": EventSpec("warning", "Model changed", "the bot picked up a new champion (a scheduled retrain "
                               "promoted it, a hand-trained one, or a rollback): old and new versions",
                               per_symbol=False),
    "retrain_failed": EventSpec("warning", "Retrain failed", "a scheduled retrain failed (bad data, too few "
                                "candidates, a crash) or its new champion was refused: the old model stays, and why",
                                per_symbol=False),
    "daily_summary": EventSpec("info", "Daily summary", "after the close: equity, day P&L, trades, open positions "
                               "with protection, gates that blocked entries (sent whatever ALERT_LEVEL with "
                               "ALERT_DAILY_SUMMARY=true)", per_symbol=False),
}


@dataclass(frozen=True)
class AlertEvent:
    event: str
    level: str
    title: str
    text: str
    key: str


def make(event: str, text: str, symbol: str = "", level: str | None = None, key: str | None = None) -> AlertEvent:
    spec = EVENTS[event]
    title = f"{spec.title}: {symbol}" if symbol else spec.title
    default_key = f"{event}:{symbol}" if symbol and spec.per_symbol else event
    return AlertEvent(event, level or spec.level, title, text, key or default_key)


@dataclass(frozen=True)
class Rule:
    step: str | None  # None: any step
    action: str
    event: str
    gate: str | None = None  # only rows with this gate (None: any gate)


# first match wins: the circuit breaker's REDUCING before the generic one
RULES: tuple[Rule, ...] = (
    Rule("risk", "reducing", "circuit_breaker", gate="circuit_breaker"),
    Rule("risk", "reducing", "risk_reducing"),
    Rule("risk", "halted", "risk_halted"),
    Rule("risk", "resume", "risk_resumed"),
    Rule("risk", "flattened", "flattened"),
    Rule("plan", "outage", "broker_outage"),
    Rule("plan", "outage_end", "broker_back"),
    Rule("plan", "data", "stale_data"),
    Rule(None, "denied", "stale_data", gate="stale_data"),
    Rule("entry", "blocked", "model_blocked"),
    Rule("entry", "fallback", "model_fallback"),
    Rule("plan", "model-changed", "model_changed"),
    Rule("plan", "retrain-failed", "retrain_failed"),
    Rule("protect", "protect", "unprotected"),
    Rule("protect", "software-stop", "software_stop"),
    Rule("protect", "cover", "short_position"),
    Rule("protect", "short", "short_position"),
    Rule("protect", "skip", "protection_failed"),
)


def event_for(row: dict) -> AlertEvent | None:
    """The alert a decision row calls for, or None."""
    for r in RULES:
        if r.action == row.get("action") and r.step in (None, row.get("step")) and r.gate in (None, row.get("gate")):
            return make(r.event, f"{_stamp(row.get('time'))}{row.get('reason', '')}", row.get("symbol") or "")
    return None


STOP_EXITS = ("stop", "breakeven", "trailing")


def closed_trade_event(trade: dict) -> AlertEvent | None:
    """A stop or take-profit fill (a closed-trade record of the ledger), with its P&L and R."""
    reason = trade.get("exit_reason")
    if reason not in (*STOP_EXITS, "take_profit"):
        return None
    event = "take_profit_filled" if reason == "take_profit" else "stop_filled"
    r = trade.get("r_multiple")
    r_text = f", {r:+.2f}R" if r is not None and math.isfinite(r) else ""
    what = "hedge " if trade.get("kind") == "hedge" else ""
    text = (f"{_stamp(trade.get('exit_time'))}{trade['symbol']}: {what}{reason.replace('_', '-')} filled, "
            f"{trade['qty']:g} sh {trade['entry_price']:,.2f} -> {trade['exit_price']:,.2f}: P&L "
            f"{_usd(trade['pnl_usd'])} ({trade['return_pct']:+.1%}{r_text})")
    return make(event, text, trade["symbol"], key=f"{event}:{trade['symbol']}:{_stamp(trade.get('exit_time'))}")


FAILED = ("rejected", "unknown", "failed")  # the executor's statuses for an order that is not at the broker
NOT_SENT = ("sending", "dry-run", "dead-duplicate")  # not (yet) an outcome: nothing to say


class OrderOutcomes:
    """Orders of the decisions that carried an intent, looked up in the journal after the iteration sent
    them: a rejection (with Alpaca's message), and for step 1's OCOs, protection placed or failed."""

    def __init__(self) -> None:
        self.pending: dict[str, dict] = {}  # client order id -> its decision row

    def watch(self, row: dict) -> None:
        for cid in (row.get("order_ids") or "").split(";"):
            if cid:
                self.pending[cid] = row

    def resolve(self, journal) -> list[AlertEvent]:
        events = []
        pending, self.pending = self.pending, {}
        for cid, row in pending.items():
            order = journal.order_by_client_id(cid)
            if order is None or order["status"] in NOT_SENT:
                continue  # never sent (the iteration stopped first): the next plan decides again
            protect = row.get("step") == "protect" and row.get("action") == "protect"
            sym = order["symbol"] or row.get("symbol") or ""
            if order["status"] in FAILED:
                why = _answer(order)
                if protect:
                    events.append(make("protection_failed", f"{sym}: the OCO {cid} was not placed: {why}", sym))
                elif order["status"] == "rejected":
                    events.append(make("order_rejected", f"{sym}: {order['intent']} order {cid} ({order['side']} "
                                       f"{order['qty']:g} sh, {order['order_type']}): {why}", sym))
            elif protect:
                request = _json(order.get("request"))
                stop = request.get("stop_loss", {}).get("stop_price")
                target = request.get("take_profit", {}).get("limit_price")
                events.append(make("protection_placed", f"{sym}: OCO {order['qty']:g} sh, stop {stop}, target "
                                   f"{target} ({cid})", sym))
        return events


def bot_started(banner: str, live: bool) -> AlertEvent:
    return make("bot_started", f"bot started: {banner}", level="warning" if live else None)


def bot_not_started(why: str) -> AlertEvent:
    return make("bot_not_started", f"the bot did not start and is not trading: {why}")


def bot_stopped(banner: str, error: BaseException | None = None) -> AlertEvent:
    if error is not None:
        return make("bot_stopped", f"bot stopped by an error ({type(error).__name__}: {error}); {banner}",
                    level="critical")
    return make("bot_stopped", f"bot stopped; every position was checked for protection; {banner}")


def model_stale_event(scorer, now: datetime) -> AlertEvent | None:
    """The meta-model (models/meta_model.MetaModel) past MAX_MODEL_AGE_DAYS, or None (also for the rule score)."""
    created, max_age = getattr(scorer, "created", None), getattr(scorer, "max_age_days", None)
    if created is None or max_age is None:
        return None
    age = (now - created).total_seconds() / 86400
    if age <= max_age:
        return None
    blocks = "entries are blocked" if getattr(scorer, "block_when_stale", False) else "entries still use it"
    return make("model_stale", f"{scorer.name} is {age:.0f} days old (MAX_MODEL_AGE_DAYS={max_age:g}); {blocks}. "
                "Retrain with: python -m models.train")


def model_watch_events(scorer) -> list[AlertEvent]:
    """What the installed model's watch sees (models/model_watch.py): drifted inputs, a decayed edge; [] for the
    rule score or when all is well."""
    watch = getattr(scorer, "watch", None)
    if watch is None:
        return []
    out = []
    report = watch.drift()
    if report is not None and report.drifted:
        out.append(make("model_drift", report.describe()))
    if watch.verdict is not None and watch.verdict.degraded:
        action = {"warn": "entries still use it", "stop": "new entries are blocked",
                  "fallback": "entries are judged by the rule-based score"}.get(watch.action, watch.action)
        out.append(make("model_decayed", f"{scorer.name}: {watch.verdict.describe()}; {action} "
                        f"(MODEL_DEGRADED_ACTION={watch.action}). Retrain with: python -m models.train"))
    cal = getattr(watch, "calibration", None)
    if cal is not None and cal.inverted:  # its best-rated trades did worst: a ranking gone wrong, whatever the mean
        out.append(make("model_decayed", f"{scorer.name}: {cal.describe()}. Retrain with: python -m models.train",
                        key="model_decayed:calibration"))
    return out


def _answer(order: dict) -> str:
    """Alpaca's answer as the executor journaled it: its note ("rejected by Alpaca (422: ...)") or message."""
    response = _json(order.get("response"))
    return str(response.get("note") or response.get("message") or order["status"])


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _stamp(t) -> str:
    return f"{t:%Y-%m-%d %H:%M} " if isinstance(t, datetime) else ""


def _usd(x: float) -> str:
    return f"{'-' if x < 0 else '+'}${abs(x):,.2f}"

