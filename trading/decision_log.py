"""The decision log: one readable line per decision (logged), and the same records kept for reports."""

import logging
from datetime import datetime

import pandas as pd

from trading.intents import Decision

logger = logging.getLogger("trader.decisions")


class DecisionLog:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def record(self, now: datetime, decision: Decision, extra: str = "") -> None:
        line = f"{now:%Y-%m-%d %H:%M} {decision.line()}{extra}"
        logger.log(logging.WARNING if decision.level == "warning" else logging.INFO, line)
        row = {"time": now, "step": decision.step.value, "symbol": decision.symbol or "", "action": decision.action,
               "level": decision.level, "reason": decision.reason + extra,
               "order_ids": ";".join(o.client_order_id for o in decision.intent.orders) if decision.intent else ""}
        for key in ("confidence", "source", "rsi", "breadth", "pnl_pct", "qty", "price"):
            if key in decision.data:
                row[key] = decision.data[key]
        self.records.append(row)

    def note(self, now: datetime, step: str, text: str, level: str = "info") -> None:
        logger.log(logging.WARNING if level == "warning" else logging.INFO, f"{now:%Y-%m-%d %H:%M} {text}")
        self.records.append({"time": now, "step": step, "symbol": "", "action": "note", "level": level,
                             "reason": text})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.records)

    def count(self, action: str) -> int:
        return sum(1 for r in self.records if r["action"] == action)
