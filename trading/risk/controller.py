"""The risk controller: a graded state machine between the plan and the broker.

Each iteration `observe` applies the human's commands and the kill-switch file, ends expired holds,
takes the equity reading (held back if it jumps implausibly) and checks the loss limits and the
circuit breaker. `review` then lets each intent through, shrinks it, or denies it with the gate that
did it: HALTED allows only protective intents (protect, stops, full exits), REDUCING no new entries or
hedges, and new exposure must pass stale data, orders per iteration, concurrency and gross exposure,
and is resized by the losing-streak and recovery factors. Risk can veto or shrink, never create. The
state (holds, equity references, the last command applied) is saved in the journal after every
change, so a restart while HALTED stays HALTED. RISK_ENABLED=false swaps in NullRiskController.
"""

import dataclasses
import math
from datetime import datetime

import pandas as pd

from trading.intents import Decision, Intent, IntentKind, Step
from trading.orders import BracketOrder
from trading.risk.circuit_breaker import circuit_breaker
from trading.risk.equity import EquityTracker
from trading.risk.exposure import gross_exposure, max_positions, orders_per_iteration
from trading.risk.kill_switch import COMMAND_KEY, command_hold, kill_switch_file
from trading.risk.loss_limits import daily_loss, weekly_loss
from trading.risk.sizing_factors import losing_streak, recovery
from trading.risk.stale_data import stale_data
from trading.risk.verdict import Action, Hold, Mode, Verdict
from trading.snapshot import Snapshot

STATE_KEY = "risk"
HOUR = pd.Timedelta(hours=1)


class NullRiskController:
    """No risk layer: everything the planners decide goes through."""

    mode = Mode.ACTIVE
    flatten_pending = False
    holds: list = []

    def observe(self, snap: Snapshot, results: list[float]) -> list[Decision]:
        return []

    def review(self, decisions: list[Decision], snap: Snapshot) -> list[Decision]:
        return decisions

    def flatten_done(self, now) -> None:
        pass

    def describe(self) -> str:
        return "risk controller off (RISK_ENABLED=false)"


class RiskController:
    def __init__(self, settings, journal=None, bar_period: pd.Timedelta = HOUR):
        self.s, self.journal, self.bar_period = settings, journal, pd.Timedelta(bar_period)
        self.equity = EquityTracker()
        self._saved: tuple[dict, float | None] | None = None  # what is on file, to skip unchanged writes
        self.holds: list[Hold] = []
        self.command_id = None
        self.flatten_pending = False
        self.factors: list[Verdict] = []
        self._restore()

    # ------------------------------------------------------------------ state
    @property
    def mode(self) -> Mode:
        return max((h.mode for h in self.holds), default=Mode.ACTIVE)

    def describe(self) -> str:
        if not self.holds:
            return "ACTIVE"
        return f"{self.mode.name}: " + "; ".join(
            f"{h.gate} ({h.reason}{', until ' + f'{h.until:%Y-%m-%d %H:%M}' if h.until else ', until resumed'})"
            for h in self.holds)

    def _restore(self) -> None:
        state = self.journal.get_state(STATE_KEY) if self.journal is not None else None
        if not state:
            return
        self.equity = EquityTracker(**state["equity"])
        self.holds = [Hold.from_dict(h) for h in state["holds"]]
        self.command_id = state.get("command_id")
        self.flatten_pending = bool(state.get("flatten_pending"))

    def _save(self, now: datetime) -> None:
        """Persist the state when it changed. The last confirmed equity alone moves every iteration; it is
        written again once it moved 0.5% from the copy on file (a restart compares its first reading with
        it, and only a move past EQUITY_JUMP_PCT asks for confirmation)."""
        if self.journal is None:
            return
        state = {"equity": self.equity.as_dict(), "holds": [h.as_dict() for h in self.holds],
                 "command_id": self.command_id, "flatten_pending": self.flatten_pending}
        rest = {**state, "equity": {**state["equity"], "confirmed": None}}
        confirmed, saved = self.equity.confirmed, self._saved
        if saved is not None and rest == saved[0] and (confirmed == saved[1] or (
                confirmed and saved[1] and abs(confirmed / saved[1] - 1) < 0.005)):
            return
        self.journal.set_state(STATE_KEY, state, now)
        self._saved = (rest, confirmed)

    def _add(self, hold: Hold, notes: list[Decision]) -> None:
        if any(h.gate == hold.gate for h in self.holds):
            return
        self.holds.append(hold)
        until = f"until {hold.until:%Y-%m-%d %H:%M}" if hold.until else "until resumed"
        notes.append(Decision(Step.RISK, None, hold.mode.name.lower(), f"{hold.gate}: {hold.reason}; {until}",
                              level="warning", data={"gate": hold.gate}))

    # ------------------------------------------------------------------ each iteration
    def observe(self, snap: Snapshot, results: list[float]) -> list[Decision]:
        now, notes = snap.now, []
        self._apply_command(notes)
        ks = kill_switch_file(self.s.kill_switch_file)
        if ks:
            self._add(ks, notes)
        for h in [h for h in self.holds if h.until is not None and _aware(h.until) <= _aware(now)]:
            self.holds.remove(h)
            notes.append(Decision(Step.RISK, None, "resume", f"{h.gate} ended ({h.reason})"))
        note = self.equity.observe(now, snap.portfolio_value, self.s.equity_jump_pct, self.s.recent_peak_days)
        if note:
            notes.append(Decision(Step.RISK, None, "equity", note, level="warning"))
        for hold in (daily_loss(now, self.equity, self.s.daily_loss_limit_pct),
                     weekly_loss(now, self.equity, self.s.weekly_loss_limit_pct),
                     circuit_breaker(now, self.equity, self.s.circuit_breaker_pct, self.s.circuit_breaker_hours)):
            if hold and not any(h.gate == hold.gate for h in self.holds):
                self._add(hold, notes)
                if hold.gate == "circuit_breaker":
                    self.equity.reset_recent_peak()
                if hold.mode == Mode.HALTED and self.s.flatten_on_halt:
                    self.flatten_pending = True
        self.factors = [v for v in (losing_streak(results, self.s.losing_streak),
                                    recovery(self.equity, self.s.recovery_drawdown_pct)) if v.action != Action.ALLOW]
        self._save(now)
        return notes

    def _apply_command(self, notes: list[Decision]) -> None:
        cmd = self.journal.get_state(COMMAND_KEY) if self.journal is not None else None
        if not cmd or cmd.get("id") == self.command_id:
            return
        self.command_id = cmd.get("id")
        name = cmd.get("command")
        if name == "resume":
            lifted = [h.gate for h in self.holds]
            self.holds, self.flatten_pending = [], False
            notes.append(Decision(Step.RISK, None, "resume", f"resume command: lifted {', '.join(lifted) or 'nothing'}"
                                  + ("; the kill-switch file still exists, so the bot halts again"
                                     if kill_switch_file(self.s.kill_switch_file) else "")))
            return
        hold = command_hold(name)
        if hold:
            self._add(hold, notes)
            if name == "flatten":
                self.flatten_pending = True

    def flatten_done(self, now: datetime) -> None:
        self.flatten_pending = False
        self._save(now)

    # ------------------------------------------------------------------ review
    def review(self, decisions: list[Decision], snap: Snapshot) -> list[Decision]:
        mode = self.mode
        inverse = set(self.s.inverse_symbols)
        held = sum(1 for sym in snap.holdings if sym not in inverse)
        long_value = sum(snap.value(sym) for sym in snap.holdings if sym not in inverse) + snap.open_buy_notional()
        freshest = snap.freshest_bar
        approved_opens = approved_entries = 0
        out = []
        for d in decisions:
            i = d.intent
            if i is None:
                out.append(d)
                continue
            if mode == Mode.HALTED and not i.protective:
                out.append(_denied(d, Verdict.deny(self._gate(), f"{mode.name}: protective orders only")))
                continue
            if mode == Mode.REDUCING and i.opens_exposure:
                out.append(_denied(d, Verdict.deny(self._gate(), "REDUCING: no new entries or hedges")))
                continue
            if snap.feed_stale and i.opens_exposure:
                out.append(_denied(d, Verdict.deny("stale_data", "the whole data feed is behind the clock")))
                continue
            if not i.opens_exposure:
                out.append(d)
                continue
            verdicts = [stale_data(snap.bar_time(i.symbol),
                                   freshest, self.bar_period, self.s.stale_bars),
                        orders_per_iteration(approved_opens, self.s.max_orders_per_iteration)]
            order = i.orders[0]
            if i.kind == IntentKind.ENTER:
                verdicts += [max_positions(held, approved_entries, self.s.max_positions),
                             gross_exposure(long_value, order.notional, snap.portfolio_value,
                                            self.s.max_gross_exposure_pct), *self.factors]
            reviewed = _apply(d, verdicts)
            out.append(reviewed)
            if reviewed.intent is not None:
                approved_opens += 1
                if i.kind == IntentKind.ENTER:
                    approved_entries += 1
                    long_value += reviewed.intent.orders[0].notional
        return out

    def _gate(self) -> str:
        top = max(self.holds, key=lambda h: h.mode, default=None)
        return top.gate if top else "risk"


def _apply(d: Decision, verdicts: list[Verdict]) -> Decision:
    denied = next((v for v in verdicts if v.action == Action.DENY), None)
    if denied:
        return _denied(d, denied)
    resizes = [v for v in verdicts if v.action == Action.RESIZE]
    if not resizes:
        return d
    factor = math.prod(v.factor for v in resizes)
    order = d.intent.orders[0]
    if not isinstance(order, BracketOrder):
        return d
    qty = math.floor(order.qty * factor + 1e-9)
    why = "; ".join(f"{v.gate}: {v.reason}" for v in resizes)
    if qty < 1:
        return _denied(d, Verdict.deny(resizes[0].gate, f"resized below one share ({why})"))
    new = dataclasses.replace(order, qty=qty)
    intent = Intent(d.intent.kind, d.intent.symbol, (new,), d.intent.cancel_order_ids, d.intent.trade_update)
    return dataclasses.replace(d, intent=intent, reason=f"{d.reason} | risk: {order.qty} -> {qty} sh ({why})",
                               data={**d.data, "gate": resizes[0].gate, "verdict": "resize", "qty": qty,
                                     "notional": new.notional})


def _denied(d: Decision, v: Verdict) -> Decision:
    return dataclasses.replace(d, action="denied", intent=None, level="warning",
                               reason=f"{d.reason} | risk: denied by {v.gate}: {v.reason}",
                               data={**d.data, "gate": v.gate, "verdict": "deny", "intent": d.action})


def _aware(t: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts if ts.tzinfo else ts.tz_localize("America/New_York")


def build_risk(settings, journal=None, bar_period: pd.Timedelta = HOUR):
    return RiskController(settings, journal, bar_period) if settings.risk_enabled else NullRiskController()
