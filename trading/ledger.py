"""Fills in, round-trip trades out: which order did what, and why each position was closed.

Every order the strategy submits is registered with its role (entry, hedge, protect, trim, exit,
unhedge); bracket and OCO legs inherit a role from their type (limit leg = take-profit, stop leg =
stop). Sells close lots first-in first-out, so each closed trade carries its entry, its exit and the
reason it ended: stop, take_profit, software_stop, trim, hedge_unwind (or open at the end).
"""

from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime

import pandas as pd

EXIT_REASON = {"stop": "stop", "target": "take_profit", "exit": "software_stop", "trim": "trim",
               "unhedge": "hedge_unwind"}


@dataclass(frozen=True)
class Fill:
    time: datetime
    symbol: str
    side: str  # buy or sell
    qty: float
    price: float
    role: str
    order_id: str


@dataclass
class Lot:
    symbol: str
    qty: float
    price: float
    time: datetime
    kind: str  # entry, hedge or legacy


class Ledger:
    def __init__(self) -> None:
        self.roles: dict[str, str] = {}
        self.fills: list[Fill] = []
        self.trades: list[dict] = []
        self.samples: list[dict] = []
        self._lots: dict[str, deque[Lot]] = {}

    # ------------------------------------------------------------------ inputs
    def register(self, order_id: str, role: str) -> None:
        self.roles[order_id] = role

    def role_of(self, order_id: str, parent_id: str | None, order_type: str) -> str:
        if order_id in self.roles:
            return self.roles[order_id]
        if parent_id is not None:
            if order_type == "limit":
                return "target"
            if order_type in ("stop", "stop_limit", "trailing_stop"):
                return "stop"
        return "unknown"

    def open_lot(self, symbol: str, qty: float, price: float, time: datetime, kind: str) -> None:
        self._lots.setdefault(symbol, deque()).append(Lot(symbol, qty, price, time, kind))

    def record_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        if fill.side == "buy":
            kind = "hedge" if fill.role == "hedge" else "entry"
            self.open_lot(fill.symbol, fill.qty, fill.price, fill.time, kind)
            return
        remaining = fill.qty
        lots = self._lots.get(fill.symbol, deque())
        while remaining > 1e-9 and lots:
            lot = lots[0]
            take = min(lot.qty, remaining)
            self._close(lot, take, fill)
            lot.qty -= take
            remaining -= take
            if lot.qty <= 1e-9:
                lots.popleft()

    def sample(self, **values: float | datetime) -> None:
        """One row of the exposure series (time, portfolio value, cash, long and inverse value)."""
        self.samples.append(values)

    def _close(self, lot: Lot, qty: float, fill: Fill) -> None:
        pnl = (fill.price - lot.price) * qty
        self.trades.append({
            "symbol": lot.symbol, "kind": lot.kind, "qty": qty,
            "entry_time": lot.time, "entry_price": lot.price,
            "exit_time": fill.time, "exit_price": fill.price,
            "exit_reason": EXIT_REASON.get(fill.role, fill.role),
            "pnl_usd": pnl, "return_pct": fill.price / lot.price - 1.0,
        })

    # ------------------------------------------------------------------ outputs
    def open_lots(self) -> list[Lot]:
        return [lot for lots in self._lots.values() for lot in lots if lot.qty > 1e-9]

    def trades_frame(self, mark: dict[str, float] | None = None, at: datetime | None = None) -> pd.DataFrame:
        """Closed trades, plus lots still open marked at `mark` prices with exit_reason 'open'."""
        rows = list(self.trades)
        for lot in self.open_lots() if mark else []:
            px = mark.get(lot.symbol)
            if px is None:
                continue
            rows.append({"symbol": lot.symbol, "kind": lot.kind, "qty": lot.qty, "entry_time": lot.time,
                         "entry_price": lot.price, "exit_time": at, "exit_price": px, "exit_reason": "open",
                         "pnl_usd": (px - lot.price) * lot.qty, "return_pct": px / lot.price - 1.0})
        columns = ["symbol", "kind", "qty", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason",
                   "pnl_usd", "return_pct"]
        return pd.DataFrame(rows, columns=columns)

    def fills_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(f) for f in self.fills],
                            columns=["time", "symbol", "side", "qty", "price", "role", "order_id"])

    def samples_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.samples)
