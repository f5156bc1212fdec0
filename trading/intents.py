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
    TRIM = "trim"
    HEDGE = "hedge"
    ENTRY = "entry"
    PLAN = "plan"


class IntentKind(StrEnum):
    PROTECT = "protect"  # attach an OCO to an unprotected position
    EXIT = "exit"  # close a position at market (software stop, target already passed)
    TRIM = "trim"  # cancel legs, sell the excess, re-protect the rest
    HEDGE = "hedge"  # buy an inverse ETF with a bracket
    UNHEDGE = "unhedge"  # cancel legs, sell the inverse ETF
    ENTER = "enter"  # new bracket entry


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    symbol: str
    orders: tuple[Order, ...]
    cancel_order_ids: tuple[str, ...] = ()


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
