"""What a venue is: where the strategy's snapshot comes from and where its orders go.

Two venues exist: the backtester (backtest/venue.py) and Alpaca (broker/alpaca_venue.py). Both submit
orders through Lumibot (`strategy.submit_order`), so the order a backtest places is the order Lumibot's
Alpaca broker sends live; they differ in what is read and how it is confirmed. The executor
(trading/execution/executor.py) talks to either through this interface only.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from trading.execution.resize import BrokerPosition
from trading.orders import StopUpdate
from trading.snapshot import Snapshot


@dataclass(frozen=True)
class Submitted:
    ok: bool
    broker_id: str | None = None
    status: str = ""
    note: str = ""  # why not, or how it was found
    lumibot_order: object = None
    response: dict | None = None  # the broker's answer, as the journal keeps it


def enum_value(x) -> str:
    """An enum's value (alpaca-py and Lumibot hand back enums for side, type, status), a plain string as it
    is, and "" for a missing field."""
    return str(getattr(x, "value", x) or "")


class Venue(Protocol):
    live: bool

    def snapshot(self, now: datetime) -> Snapshot: ...

    def sync_fills(self, now: datetime) -> list[str]: ...

    def cancel(self, order_ids: tuple[str, ...]) -> bool:
        """Cancel and wait until the broker confirms them gone; False when not confirmed in time."""

    def position(self, symbol: str) -> BrokerPosition:
        """The symbol's position now, with the shares no open order holds."""

    def submit(self, order, role: str) -> Submitted: ...

    def move_stop(self, update: StopUpdate) -> Submitted: ...
