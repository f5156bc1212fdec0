"""Settings changed while the bot runs (the API's settings endpoint), kept in the journal.

Only a whitelist can change at run time: thresholds, caps and risk limits that the bot reads afresh every
iteration. Symbols, the model, the schedule, files and the broker stay as started (changing them means a
restart). A change is validated by the same Settings rules as start-up (cross-field checks included) against
the settings the bot started with plus every change so far, persisted in the journal (so a restart keeps it),
journaled with its old and new value, and applied by the bot at its next iteration.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from trading.settings import Settings, SettingsError, as_text
from trading.settings_specs import SPECS

OVERRIDES_KEY = "settings_overrides"
RUNTIME_SETTINGS = (
    "CONFIDENCE_THRESHOLD", "MAX_POSITION_PCT", "TRIM_BUFFER_PCT", "MAX_ENTRY_PCT", "MIN_CASH_RESERVE",
    "NEAR_STOP_WARNING_PCT", "BEARISH_THRESHOLD", "BEARISH_EXIT_THRESHOLD", "HEDGE_LEVERAGED_BREADTH",
    "BREADTH_ENTRY_GATE", "ENABLE_LEVERAGED_HEDGE", "HEDGE_TECH_SHARE", "MAX_INVERSE_ALLOCATION",
    "DAILY_LOSS_LIMIT_PCT", "WEEKLY_LOSS_LIMIT_PCT", "CIRCUIT_BREAKER_PCT", "CIRCUIT_BREAKER_HOURS",
    "MAX_POSITIONS", "MAX_GROSS_EXPOSURE_PCT", "MAX_ORDERS_PER_ITERATION", "STALE_BARS", "FLATTEN_ON_HALT",
    "RISK_PER_TRADE_PCT", "KELLY_FRACTION", "BREAKEVEN_AT_R", "PARTIAL_AT_R", "TRAIL_AFTER_R", "TRAIL_ATR_MULT",
    "TIME_EXIT_HOURS",
)
_ATTR = {s.env: s.attr for s in SPECS}


def overrides(journal) -> dict[str, str]:
    """The run-time changes on file: {SETTING: value as text}."""
    state = journal.get_state(OVERRIDES_KEY)
    return dict(state["values"]) if state else {}


def effective(base: Settings, journal) -> Settings:
    """The settings the bot started with plus the changes on file. A change that no longer validates against
    a new start-up file raises SettingsError (the start-up message names it)."""
    changes = overrides(journal)
    return base.with_changes(changes) if changes else base


def change(journal, base: Settings, changes: Mapping[str, object], source: str, now: datetime) -> list[dict]:
    """Validate and persist a change; returns [{setting, old, new}] for what moved. Raises SettingsError
    (nothing persisted) for a setting that is unknown or not changeable at run time, or a value out of range."""
    if not changes:
        raise SettingsError("no settings given", ("no settings given: send at least one, e.g. "
                                                  "{\"CONFIDENCE_THRESHOLD\": 0.55}",))
    bad = [k for k in changes if k not in RUNTIME_SETTINGS]
    if bad:
        problems = tuple(
            f"{k} is not a setting; see .env.example for the names" if k not in _ATTR else
            f"{k} cannot change while the bot runs (set it in .env and restart); changeable: "
            + ", ".join(RUNTIME_SETTINGS) for k in bad)
        raise SettingsError("; ".join(problems), problems)
    odd = [k for k, v in changes.items() if not isinstance(v, (str, int, float, bool))]
    if odd:
        problems = tuple(f"{k}: give a number, true/false or text, not {type(changes[k]).__name__}" for k in odd)
        raise SettingsError("; ".join(problems), problems)
    texts = {k: as_text(v) for k, v in changes.items()}
    current = overrides(journal)
    before = base.with_changes(current) if current else base
    after = base.with_changes({**current, **texts})  # the start-up rules, cross-field checks included
    moved = [{"setting": k, "old": getattr(before, _ATTR[k]), "new": getattr(after, _ATTR[k])} for k in texts
             if getattr(before, _ATTR[k]) != getattr(after, _ATTR[k])]
    if moved:
        values = {**current, **{m["setting"]: as_text(m["new"]) for m in moved}}
        with journal.batch():  # the new values and their record land together
            journal.set_state(OVERRIDES_KEY, {"values": values, "id": now.isoformat(), "source": source}, now)
            journal.record_control(now, source, "settings", "; ".join(f"{m['setting']} {m['old']} -> {m['new']}"
                                                                     for m in moved), "ok: effective next iteration")
    return moved
