"""The decision log: one readable line per decision (logged), the same records kept for reports, and
each iteration's batch written to the journal in one transaction. Subscribers (the alerts) get every
row as it is recorded; one that fails is logged and never stops the log."""

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime

import pandas as pd

from trading.intents import Decision

logger = logging.getLogger("trader.decisions")
# notes (lines about the run, not a decision on a symbol), with the actions alerts key on
NOTE_ACTIONS = ("note", "outage", "outage_end", "stream_down", "stream_up")
RECORDED = ("confidence", "source", "rsi", "breadth", "pnl_pct", "qty", "price", "gate", "verdict", "intent",
            "expected_r")


class DecisionLog:
    def __init__(self, journal=None, keep: int | None = None) -> None:
        """`keep`: how many recent records stay in memory (live: the journal has them all, and a bot that runs
        for months must not grow with every line); None keeps all (a backtest's report writes them out)."""
        self.journal = journal
        self.records: list[dict] | deque[dict] = deque(maxlen=keep) if keep else []
        self._subscribers: list[Callable[[dict], None]] = []

    def subscribe(self, callback: Callable[[dict], None]) -> None:
        """Call `callback(row)` with every decision row from now on, once it is journaled."""
        self._subscribers.append(callback)

    def _publish(self, rows: list[dict]) -> None:
        for callback in self._subscribers:
            for row in rows:
                try:
                    callback(row)
                except Exception:  # a subscriber (alerts) must never stop the decisions: logged with its traceback
                    logger.exception("decision subscriber %r failed on a %s row", callback, row.get("action"))

    def _row(self, now: datetime, d: Decision) -> dict:
        row = {"time": now, "step": d.step.value, "symbol": d.symbol or "", "action": d.action, "level": d.level,
               "reason": d.reason,
               "order_ids": ";".join(o.client_order_id for o in d.intent.orders) if d.intent else ""}
        row.update({k: d.data[k] for k in RECORDED if k in d.data})
        return row

    def record(self, now: datetime, decision: Decision) -> None:
        self.record_iteration(now, [decision], None)

    def record_iteration(self, now: datetime, decisions: list[Decision], sample: dict | None,
                         note: str = "") -> None:
        rows = [self._row(now, d) for d in decisions]
        # one log record per run of same-level lines (utils/logging_setup prefixes each line with its level)
        stamp, run, run_level = f"{now:%Y-%m-%d %H:%M}", [], None
        for d in decisions:
            level = logging.WARNING if d.level == "warning" else logging.INFO
            if not logger.isEnabledFor(level):  # a line is only built when it is written somewhere
                continue
            if run and level != run_level:
                logger.log(run_level, "\n".join(run))
                run = []
            run_level = level
            run.append(f"{stamp} {d.line()}")
        if run:
            logger.log(run_level, "\n".join(run))
        if note:
            rows.append({"time": now, "step": "risk", "symbol": "", "action": "note", "level": "info", "reason": note})
        self.records.extend(rows)
        if self.journal is not None:
            self.journal.record_iteration(now, rows, sample)
        self._publish(rows)

    def note(self, now: datetime, step: str, text: str, level: str = "info", action: str = "note") -> None:
        """A line outside the plan. `action` names what happened when something reads it (the alerts: outage,
        outage_end); a plain note is "note"."""
        logger.log(logging.WARNING if level == "warning" else logging.INFO, f"{now:%Y-%m-%d %H:%M} {text}")
        row = {"time": now, "step": step, "symbol": "", "action": action, "level": level, "reason": text}
        self.records.append(row)
        if self.journal is not None:
            self.journal.record_iteration(now, [row], None)
        self._publish([row])

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records)

    def count(self, action: str) -> int:
        return sum(1 for r in self.records if r["action"] == action)
