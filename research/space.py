"""The declared search space of a sweep: settings by name, each a range Optuna samples from.

`--param NAME=LOW:HIGH` (or `LOW:HIGH:log`, or `LOW:HIGH:int`) replaces or adds one; without any, the default
space below is searched. Every sampled combination is validated by the settings' own rules (cross-field rules
included) before a trial runs, so a sweep never backtests settings the bot would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from trading.settings_specs import MACHINE_GROUPS, SPECS

KNOWN = {s.env for s in SPECS if s.group not in MACHINE_GROUPS}  # what a sweep may vary: what a profile may hold


@dataclass(frozen=True)
class Param:
    name: str  # the setting's variable name, e.g. STOP_LOSS_PCT
    low: float
    high: float
    kind: str = "float"  # float, log or int

    def suggest(self, trial) -> float | int:
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")


DEFAULT_SPACE = (
    Param("STOP_LOSS_PCT", 0.02, 0.10),
    Param("TAKE_PROFIT_PCT", 0.04, 0.30),
    Param("RSI_OVERSOLD", 20, 40, "int"),
    Param("CONFIDENCE_THRESHOLD", 0.4, 0.8),
    Param("BEARISH_THRESHOLD", 0.5, 0.8),
    Param("RISK_PER_TRADE_PCT", 0.0025, 0.02, "log"),
)


def parse_param(text: str) -> Param:
    """NAME=LOW:HIGH[:log|:int] -> Param; ValueError naming the problem and the fix."""
    name, sep, rng = text.partition("=")
    name = name.strip().upper()
    if not sep or name not in KNOWN:
        raise ValueError(f"--param {text!r}: write NAME=LOW:HIGH with NAME a strategy, risk or cost setting (e.g. "
                         "STOP_LOSS_PCT=0.02:0.1)")
    parts = rng.split(":")
    kind = parts[2].strip().lower() if len(parts) == 3 else "float"
    try:
        low, high = float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        raise ValueError(f"--param {text!r}: LOW and HIGH must be numbers (e.g. {name}=0.02:0.1)") from None
    if len(parts) > 3 or kind not in ("float", "log", "int") or not low < high or (kind == "log" and low <= 0):
        raise ValueError(f"--param {text!r}: need LOW < HIGH (both > 0 for :log) and an optional :log or :int")
    return Param(name, low, high, kind)


def build_space(texts: list[str] | None) -> tuple[Param, ...]:
    if not texts:
        return DEFAULT_SPACE
    params = {p.name: p for p in (parse_param(t) for t in texts)}
    return tuple(params.values())
