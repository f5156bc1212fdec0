"""What the planners return: decisions, each with its reason, some carrying an intent to execute.

An intent is a small recipe: cancel these orders (and wait until they are gone), then submit these
orders in sequence. The strategy executes intents; it never decides anything itself.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trading.orders import Order


class Step(StrEnum):
    PROTECT = "protect"
    EXITS = "exits"
    TRIM = "trim"
    HEDGE = "hedge"
    ENTRY = "entry"
    PLAN = "plan"
    RISK = "risk"


class IntentKind(StrEnum):
    PROTECT = "protect"  # attach an OCO to an unprotected position
    EXIT = "exit"  # close a position at market (software stop, target already passed)
    TRIM = "trim"  # cancel legs, sell the excess, re-protect the rest
    HEDGE = "hedge"  # buy an inverse ETF with a bracket
    UNHEDGE = "unhedge"  # cancel legs, sell the inverse ETF
    ENTER = "enter"  # new bracket entry
    MOVE_STOP = "move-stop"  # replace a resting stop leg in place (breakeven, trailing): never unprotected
    PARTIAL = "partial"  # cancel legs, sell part, re-protect the rest
    TIME_EXIT = "time-exit"  # close a trade that made no progress
    MODEL_EXIT = "model-exit"  # close a trade the meta-model, re-scored, no longer expects to pay (EXIT_CONFIDENCE)
    FLATTEN = "flatten"  # the human's flatten command: close everything, cancel everything
    CANCEL = "cancel"  # cancel open entry orders (on a halt)


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    symbol: str
    orders: tuple[Order, ...]
    cancel_order_ids: tuple[str, ...] = ()
    trade_update: dict | None = None  # changes to the open trade's state once the intent went through

    @property
    def opens_exposure(self) -> bool:
        return self.kind in (IntentKind.ENTER, IntentKind.HEDGE)

    @property
    def protective(self) -> bool:
        """Allowed even when HALTED: attaching protection, closing positions, tightening a stop."""
        return self.kind in (IntentKind.PROTECT, IntentKind.EXIT, IntentKind.MOVE_STOP, IntentKind.FLATTEN,
                             IntentKind.TIME_EXIT, IntentKind.MODEL_EXIT, IntentKind.CANCEL)


@dataclass(frozen=True)
class Decision:
    """One line of the decision log: what was decided for which symbol, and why."""

    step: Step
    symbol: str | None
    action: str  # protect, software-stop, near-stop, trim, hedge, unhedge, enter, skip, hold, ...
    reason: str
    intent: Intent | None = None
    level: str = "info"  # info or warning
    data: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        sym = self.symbol or "-"
        return f"{self.step.value.upper():<7} {sym:<5} {self.action:<13} {self.reason}"


@dataclass
class Plan:
    decisions: list[Decision] = field(default_factory=list)

    def add(self, decision: Decision) -> Decision:
        self.decisions.append(decision)
        return decision

    @property
    def intents(self) -> list[Intent]:
        return [d.intent for d in self.decisions if d.intent is not None]

    def by_step(self, step: Step) -> list[Decision]:
        return [d for d in self.decisions if d.step == step]

    def actions(self, action: str) -> list[Decision]:
        return [d for d in self.decisions if d.action == action]
