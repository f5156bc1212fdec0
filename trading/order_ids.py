"""The bot's own names for its orders: a client order id per (strategy, symbol, intent, bar), so the same
decision on the same bar always carries the same id and a restart or a retry cannot send it twice (Alpaca
refuses a reused id, A8); and the role of an order read back from its id (entry, protect, trim ...), which
is how fills and reconciliation tell the bot's orders apart from the owner's."""

import hashlib
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

MAX_CLIENT_ORDER_ID = 128  # Alpaca's limit (A8)


def client_order_id(strategy: str, symbol: str, intent: str, bar_time: datetime, salt: str = "") -> str:
    """Deterministic id from (strategy, symbol, intent, bar time): the same decision on the same bar
    always gets the same id, so a restart cannot send it twice (Alpaca refuses a reused id)."""
    stamp = bar_time.strftime("%Y%m%dT%H%M")
    digest = hashlib.sha256(f"{strategy}|{symbol}|{intent}|{bar_time.isoformat()}|{salt}".encode()).hexdigest()[:10]
    cid = f"{strategy[:12]}-{symbol}-{intent}-{stamp}-{digest}"
    return cid[:MAX_CLIENT_ORDER_ID]


ROLE_OF_INTENT = {"enter": "entry", "hedge": "hedge", "protect": "protect", "exit": "exit", "trim": "trim",
                  "trim-oco": "protect", "unhedge": "unhedge", "partial": "partial", "partial-oco": "protect",
                  "time-exit": "time-exit", "model-exit": "model-exit", "flatten": "flatten", "reprotect": "protect",
                  "cover": "cover"}


def role_from_client_id(cid: str | None) -> str | None:
    """The role of one of the bot's own orders, read back from its client order id
    (strategy-SYMBOL-intent-YYYYmmddTHHMM-hash); None for ids the bot did not make."""
    parts = (cid or "").split("-")
    if len(parts) < 5:
        return None
    return ROLE_OF_INTENT.get("-".join(parts[2:-2]))


@dataclass(frozen=True)
class OrderIds:
    """Client order ids for one iteration: `ids("AAPL", "enter")` is the same on every run of that bar."""

    strategy: str
    bar_time: datetime

    def __call__(self, symbol: str, intent: str) -> str:
        return client_order_id(self.strategy, symbol, intent, self.bar_time)


def floor_time(now, sleeptime_minutes: float) -> pd.Timestamp:
    """The iteration's slot (e.g. the hour): a restart within the same slot produces the same client order
    ids, so Alpaca refuses a second copy of any order already sent."""
    return pd.Timestamp(now).floor(f"{max(int(sleeptime_minutes), 1)}min")
