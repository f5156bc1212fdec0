"""Fills in, trades out: open trades with their exit-policy state, closed trades with why they ended.

Every order the strategy submits is registered with its role (entry, hedge, protect, trim, exit,
partial, unhedge, flatten); bracket and OCO legs get theirs from their type (limit = take-profit,
stop = stop). A buy opens a trade; sells close it first-in first-out. An open trade carries what the
exit policy needs (initial stop, so 1R; current stop and target; high and low since entry; whether
breakeven and the partial were taken). A closed trade records entry, exit, exit reason, P&L, R
multiple, MFE and MAE (in R) and whether a hedge was on. With a journal attached, every change is
written through in the same transaction as its fill. `on_close` (the alerts) hears of every closed trade
once it is written; one that fails is logged and never stops the fill's bookkeeping.
"""

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

import pandas as pd

logger = logging.getLogger("trader.ledger")
SHORT_CLOSING_ROLES = ("cover", "flatten")  # buys that only ever close a short
EXIT_REASON = {"stop": "stop", "target": "take_profit", "exit": "software_stop", "trim": "trim",
               "unhedge": "hedge_unwind", "partial": "partial", "time-exit": "time", "model-exit": "model",
               "flatten": "manual", "unknown": "manual"}
CLOSED_COLUMNS = ["symbol", "kind", "qty", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason",
                  "pnl_usd", "return_pct", "r_multiple", "mfe_r", "mae_r", "hedged"]


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
    """An open trade (one per symbol: the strategy never adds to a position)."""

    symbol: str
    qty: float
    price: float  # entry
    time: datetime
    kind: str  # entry, hedge or legacy
    initial_stop: float | None = None  # defines 1R
    stop: float | None = None  # current protective stop
    target: float | None = None
    highest: float = 0.0
    lowest: float = 0.0
    breakeven_done: bool = False
    partial_done: bool = False
    trailing: bool = False
    stop_reason: str = "stop"  # what a stop fill means now: stop, breakeven or trailing
    hours_held: float = 0.0  # trading hours since entry (one bar period per iteration)

    def __post_init__(self) -> None:
        self.highest = self.highest or self.price
        self.lowest = self.lowest or self.price

    @property
    def risk_per_share(self) -> float | None:
        if self.initial_stop is None or self.initial_stop >= self.price:
            return None
        return self.price - self.initial_stop

    def r_at(self, price: float) -> float | None:
        r = self.risk_per_share
        return None if r is None else (price - self.price) / r

    def as_dict(self) -> dict:
        # a shallow copy: every field is a scalar (dataclasses.asdict deep-copies, per lot per iteration)
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "Lot":
        d = dict(d)
        d["time"] = pd.Timestamp(d["time"]).to_pydatetime()
        return cls(**d)


@dataclass
class Ledger:
    journal: object = None  # trading.records.journal.Journal
    hedged: callable = lambda: False  # whether a hedge is on now (recorded on closed trades)
    roles: dict[str, str] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    trades: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    _lots: dict[str, deque] = field(default_factory=dict)
    pending_levels: dict[str, tuple[float, float]] = field(default_factory=dict)  # symbol -> (stop, target)
    on_close: Callable[[dict], None] | None = None  # told of each closed trade once it is recorded
    last_exit: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # entries: symbol -> (reason, when)

    # ------------------------------------------------------------------ restore
    def restore(self) -> int:
        """Reload open trades, and each symbol's last exit (a take-profit REENTRY_DAYS may buy again), from the
        journal after a restart."""
        if self.journal is None:
            return 0
        self.last_exit.update(self.journal.last_exits())
        for sym, state in self.journal.open_trades().items():
            self._lots[sym] = deque([Lot.from_dict(state)])
        return len(self._lots)

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

    def open_lot(self, symbol: str, qty: float, price: float, time: datetime, kind: str,
                 stop: float | None = None, target: float | None = None) -> Lot:
        lot = Lot(symbol, qty, price, time, kind, initial_stop=stop, stop=stop, target=target)
        self._lots.setdefault(symbol, deque()).append(lot)
        return lot

    def record_fill(self, fill: Fill) -> list[dict]:
        self.fills.append(fill)
        closed: list[dict] = []
        if fill.side == "buy" and fill.role in SHORT_CLOSING_ROLES:
            pass  # buying back a short the strategy never meant to hold: no long trade opens
        elif fill.side == "buy":
            stop, target = self.pending_levels.pop(fill.symbol, (None, None))
            lots = self._lots.get(fill.symbol)
            if lots and lots[-1].kind == ("hedge" if fill.role == "hedge" else "entry") and lots[-1].time == fill.time:
                lots[-1].qty += fill.qty  # a partial fill of the same order
            else:
                self.open_lot(fill.symbol, fill.qty, fill.price, fill.time,
                              "hedge" if fill.role == "hedge" else "entry", stop, target)
        else:
            remaining = fill.qty
            lots = self._lots.get(fill.symbol, deque())
            while remaining > 1e-9 and lots:
                lot = lots[0]
                take = min(lot.qty, remaining)
                closed.append(self._close(lot, take, fill))
                lot.qty -= take
                remaining -= take
                if lot.qty <= 1e-9:
                    lots.popleft()
            if not lots:
                self._lots.pop(fill.symbol, None)
        self.trades.extend(closed)
        for trade in closed:
            if trade["kind"] == "entry":
                self.last_exit[trade["symbol"]] = (trade["exit_reason"], trade["exit_time"])
        if self.journal is not None:
            self.journal.record_fill(fill.time, fill.order_id, fill.symbol, fill.side, fill.qty, fill.price,
                                     fill.role, closed, {fill.symbol: self._state(fill.symbol)})
        for trade in closed if self.on_close is not None else ():
            try:
                self.on_close(trade)
            except Exception:  # a listener (alerts) must never stop the fills being recorded: logged, traceback too
                logger.exception("closed-trade listener failed on %s", trade["symbol"])
        return closed

    def adopt(self, symbol: str, qty: float, entry: float, time: datetime, stop: float, target: float) -> None:
        """A position the bot did not open (legacy or found at the broker) gets a trade record when it is
        protected, so the exit policy and the journal know its levels."""
        if symbol in self._lots:
            lot = self._lots[symbol][0]
            lot.stop, lot.target = stop, target
            lot.initial_stop = lot.initial_stop or stop
        else:
            lot = self.open_lot(symbol, qty, entry, time, "legacy", stop, target)
        self._save(symbol)

    def update(self, symbol: str, **changes) -> None:
        """Change an open trade's state (stop moved, breakeven or partial taken) and persist it."""
        for lot in self._lots.get(symbol, ()):
            for k, v in changes.items():
                setattr(lot, k, v)
            if lot.initial_stop is None and lot.stop is not None and lot.stop < lot.price:
                lot.initial_stop = lot.stop  # an adopted position gets its 1R from its first protection
        self._save(symbol)

    def mark(self, highs: dict[str, float], lows: dict[str, float], hours: float = 0.0) -> None:
        """Track the high and low since entry (trailing stops, MFE, MAE) and the trading hours held."""
        for sym, lots in self._lots.items():
            for lot in lots:
                lot.hours_held += hours
                if sym in highs and highs[sym] == highs[sym]:
                    lot.highest = max(lot.highest, highs[sym])
                if sym in lows and lows[sym] == lows[sym]:
                    lot.lowest = min(lot.lowest, lows[sym])

    def persist_marks(self) -> None:
        if self.journal is not None and self._lots:
            self.journal.save_open_trades({sym: self._state(sym) for sym in self._lots})

    def sample(self, **values) -> None:
        self.samples.append(values)

    # ------------------------------------------------------------------ helpers
    def _state(self, symbol: str) -> dict | None:
        lots = self._lots.get(symbol)
        return lots[0].as_dict() if lots else None

    def _save(self, symbol: str) -> None:
        if self.journal is not None:
            self.journal.save_open_trades({symbol: self._state(symbol)})

    def _close(self, lot: Lot, qty: float, fill: Fill) -> dict:
        reason = EXIT_REASON.get(fill.role, fill.role)
        if reason == "stop" and lot.stop_reason != "stop":
            reason = lot.stop_reason  # a moved stop: breakeven or trailing
        risk = lot.risk_per_share
        return {
            "symbol": lot.symbol, "kind": lot.kind, "qty": qty, "entry_time": lot.time, "entry_price": lot.price,
            "exit_time": fill.time, "exit_price": fill.price, "exit_reason": reason,
            "pnl_usd": (fill.price - lot.price) * qty, "return_pct": fill.price / lot.price - 1.0,
            "r_multiple": (fill.price - lot.price) / risk if risk else None,
            "mfe_r": (max(lot.highest, fill.price) - lot.price) / risk if risk else None,
            "mae_r": (min(lot.lowest, fill.price) - lot.price) / risk if risk else None,
            "hedged": bool(self.hedged()),
        }

    # ------------------------------------------------------------------ outputs
    def open_lots(self) -> list[Lot]:
        return [lot for lots in self._lots.values() for lot in lots if lot.qty > 1e-9]

    def take_profits(self) -> dict[str, datetime]:
        """Symbols whose last trade ended at its take-profit, and when (REENTRY_DAYS)."""
        return {sym: when for sym, (reason, when) in self.last_exit.items() if reason == "take_profit"}

    def open_trades(self) -> dict[str, Lot]:
        return {sym: lots[0] for sym, lots in self._lots.items() if lots}

    def trades_frame(self, mark: dict[str, float] | None = None, at: datetime | None = None) -> pd.DataFrame:
        """Closed trades, plus trades still open marked at `mark` prices with exit_reason 'open'."""
        rows = list(self.trades)
        for lot in self.open_lots() if mark else []:
            px = mark.get(lot.symbol)
            if px is None:
                continue
            risk = lot.risk_per_share
            rows.append({"symbol": lot.symbol, "kind": lot.kind, "qty": lot.qty, "entry_time": lot.time,
                         "entry_price": lot.price, "exit_time": at, "exit_price": px, "exit_reason": "open",
                         "pnl_usd": (px - lot.price) * lot.qty, "return_pct": px / lot.price - 1.0,
                         "r_multiple": (px - lot.price) / risk if risk else None,
                         "mfe_r": (lot.highest - lot.price) / risk if risk else None,
                         "mae_r": (lot.lowest - lot.price) / risk if risk else None, "hedged": False})
        return pd.DataFrame(rows, columns=CLOSED_COLUMNS)

    def fills_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(f) for f in self.fills],
                            columns=["time", "symbol", "side", "qty", "price", "role", "order_id"])

    def samples_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.samples)
