"""The risk layer's value objects: a mode, a hold (why the mode is in force and until when) and a verdict."""

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum


class Mode(IntEnum):
    ACTIVE = 0  # everything allowed
    REDUCING = 1  # no new entries or hedges; exits and protection allowed
    HALTED = 2  # protective orders only (protect, stops, full exits)


@dataclass(frozen=True)
class Hold:
    mode: Mode
    gate: str  # daily_loss, weekly_loss, circuit_breaker, kill_switch, manual
    reason: str
    until: datetime | None  # None: until the human resumes

    def as_dict(self) -> dict:
        return {"mode": int(self.mode), "gate": self.gate, "reason": self.reason,
                "until": self.until.isoformat() if self.until else None}

    @classmethod
    def from_dict(cls, d: dict) -> "Hold":
        until = datetime.fromisoformat(d["until"]) if d.get("until") else None
        return cls(Mode(d["mode"]), d["gate"], d["reason"], until)


class Action(StrEnum):
    ALLOW = "allow"
    RESIZE = "resize"
    DENY = "deny"


@dataclass(frozen=True)
class Verdict:
    action: Action
    gate: str = ""
    reason: str = ""
    factor: float = 1.0  # for RESIZE: the share of the size that may go through

    @classmethod
    def allow(cls) -> "Verdict":
        return cls(Action.ALLOW)

    @classmethod
    def deny(cls, gate: str, reason: str) -> "Verdict":
        return cls(Action.DENY, gate, reason, 0.0)

    @classmethod
    def resize(cls, gate: str, reason: str, factor: float) -> "Verdict":
        return cls(Action.RESIZE, gate, reason, factor)
