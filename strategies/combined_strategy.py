"""CombinedStrategy: the Lumibot subclass. It only wires: gather a snapshot, plan, review, execute, record.

All decisions are plain functions in `trading/steps/` (protect, exit policy, trim, hedge, enter) over
the snapshot, reviewed by the risk controller (`trading/risk/`) and carried out by the executor
(`trading/execution/`) through a venue that says where the snapshot comes from and how orders are
confirmed: Lumibot's backtester (backtest/venue.py), or Alpaca through Lumibot's broker
(broker/alpaca_venue.py).
Parameters (passed by the backtest runner or the live launcher):
  settings        trading.settings.Settings (required)
  indicator_book  an IndicatorBook computed once per series (backtests)
  bar_period      bar length of the data (pandas Timedelta); default one hour
  scorer          a ConfidenceModel; default the rule-based score
  cost_basis      {symbol: price} for starting positions whose cost the broker does not know
  journal / journal_path   the trade journal (default: JOURNAL_PATH)
  gateway         a broker.gateway.AlpacaGateway: trade live through Alpaca (else the backtester)
  dry_run         live only: decide, log and journal everything, send nothing
  clock           live only: a callable returning now (tests step a simulated clock); default the wall clock
"""

import dataclasses
import logging
import math
import threading

import pandas as pd
from lumibot.strategies import Strategy

from backtest.venue import BacktestVenue
from broker.alpaca_venue import AlpacaVenue
from broker.errors import BrokerUnavailable
from broker.fills import FillWatcher
from broker.reconcile import reconcile
from broker.snapshot import session_now
from models.features import FEATURE_HISTORY_BARS, FeatureParams
from models.meta_model import MetaModel
from models.model_warnings import threshold_warning
from ops.alerts import Alerter, NullAlerter
from ops.strategy_alerts import StrategyAlerts
from strategies.lumibot_books import LumibotBooks
from strategies.model_life import ModelLifeBot
from strategies.operated import OperatedBot
from strategies.streaming import StreamingBot
from trading.confidence import RuleConfidence
from trading.execution.executor import Executor
from trading.execution.venue import enum_value as _value
from trading.indicators import MIN_HISTORY_BARS, IndicatorBook
from trading.intents import Decision, Intent, IntentKind, Step
from trading.order_ids import OrderIds, floor_time
from trading.records.decision_log import DecisionLog
from trading.records.journal import Journal
from trading.records.ledger import Fill, Ledger
from trading.records.runs import record_start
from trading.records.status import mark_outage
from trading.risk import build_risk
from trading.settings import Settings, sleeptime_minutes
from trading.sizing import kelly_risk_cap
from trading.snapshot import Snapshot
from trading.steps.entry_filters import spread_note
from trading.steps.planner import plan_iteration
from trading.steps.protection import plan_protection

logger = logging.getLogger("trader.strategy")
STRATEGY_ID = "combined"
LIVE_RECORDS_KEPT = 5_000  # decision lines kept in memory by a live bot (tools and tests read the recent ones)


class CombinedStrategy(LumibotBooks, ModelLifeBot, OperatedBot, StreamingBot, Strategy):
    parameters: dict = {}

    def initialize(self) -> None:
        p = self.parameters
        self.settings: Settings = p["settings"]
        self.sleeptime = p.get("sleeptime") or self.settings.sleeptime
        self.book: IndicatorBook | None = p.get("indicator_book")
        self.bar_period = pd.Timedelta(p.get("bar_period") or pd.Timedelta(hours=1))
        self.rule_scorer = RuleConfidence(self.settings.rsi_oversold)  # also MODEL_DEGRADED_ACTION=fallback's
        self.scorer = p.get("scorer") or self.rule_scorer
        self.features = FeatureParams.from_settings(self.settings) if isinstance(self.scorer, MetaModel) else None
        self.cost_basis: dict[str, float] = dict(p.get("cost_basis") or {})
        self.journal = p.get("journal") or Journal(p.get("journal_path") or self.settings.journal_path)
        self.base_settings = self.settings  # as started; run-time changes (the API) are applied on top
        self._settings_id = None
        self.account_label = p.get("account_label", "")
        self.started = None
        # live: the journal keeps every line; memory keeps the recent ones (a soak grew without bound)
        self.decision_log = DecisionLog(self.journal, LIVE_RECORDS_KEPT if p.get("gateway") is not None else None)
        self.ledger = Ledger(journal=self.journal, hedged=self._hedged_now)
        restored = self.ledger.restore()
        self.risk = build_risk(self.settings, self.journal, self.bar_period)
        self.session = "regular"
        self.iterations = 0
        self.stopping = False  # set on shutdown: finish the intent in hand, start no other
        self._exec_lock = threading.Lock()  # shutdown waits for the intent in hand to finish
        self._iteration_lock = threading.RLock()  # a stream message waits for the iteration in hand
        self._last_snapshot: Snapshot | None = None
        self._kelly_note = ""
        self._closed_noted = False
        self._skipped = 0  # iterations skipped in the current broker outage
        self._run_recorded = False
        self.clock = p.get("clock")
        now = self.now()
        self.started = now
        gateway = p.get("gateway")
        # alerts (ALERT_URLS): live only; an alerter passed in (tests, benches) replaces the one from the settings
        alerter = p.get("alerter") or (Alerter.from_settings(self.settings, self.journal) if gateway is not None
                                       else NullAlerter())
        self.alerts = StrategyAlerts(alerter, self.journal, self.now, self.scorer,
                                     self.settings.alert_daily_summary).attach(self.decision_log, self.ledger)
        if gateway is None:
            self.venue = BacktestVenue(self, p.get("costs"))
        else:
            history = FEATURE_HISTORY_BARS if self.features else MIN_HISTORY_BARS
            self.venue = AlpacaVenue(self, gateway, FillWatcher(self.journal), bool(p.get("dry_run")), history)
        self.executor = Executor(self.venue, self.journal, self.ledger, self.decision_log, self.settings, STRATEGY_ID,
                                 self.now)
        self.decision_log.note(now, "plan", f"CombinedStrategy starts: every {self.sleeptime}, confidence from "
                               f"{self.scorer.describe()}; risk {self.risk.describe()}"
                               + (f"; {restored} open trade(s) restored from the journal" if restored else "")
                               + ("; DRY RUN: nothing is sent" if p.get("dry_run") else ""))
        for warning in (threshold_warning(self.scorer),
                        spread_note(self.settings, gateway is not None)):
            if warning:
                self.decision_log.note(now, "plan", warning, "warning")
        if gateway is not None:
            self._start_model_life()
            self._reconcile(now)
            self.alerts.started(self.settings, gateway, bool(p.get("dry_run")))  # paper or LIVE, masked account
            self._start_streams()
        self._apply_setting_changes(now)
        for sym, cost in self.cost_basis.items():
            pos = self.get_position(sym)
            if pos is not None and float(pos.quantity) > 0 and sym not in self.ledger.open_trades():
                self.ledger.open_lot(sym, float(pos.quantity), cost, now, "legacy")

    def _reconcile(self, now) -> None:
        try:
            lines = reconcile(self.venue.gw, self.journal, self.ledger, self.venue.watcher, now)
        except BrokerUnavailable as exc:
            lines = [f"start-up reconciliation postponed: {exc}"]
        for line in lines:
            self.decision_log.note(now, "plan", line)

    # ------------------------------------------------------------------ the iteration
    def now(self):
        return self.clock() if self.clock is not None else self.get_datetime()

    def on_trading_iteration(self) -> None:
        with self._iteration_lock:
            self._iterate()

    def _iterate(self) -> None:
        now = self.now()
        try:
            snap = self._live_snapshot(now) if self.venue.live else self.venue.snapshot(now)
        except BrokerUnavailable as exc:
            self._skipped += 1
            if self._skipped == 1:  # once per outage; the broker's own log says when it answers again
                self.decision_log.note(now, "plan", f"broker unreachable, skipping this iteration (and the next "
                                       f"ones until it answers): {exc}", "warning", action="outage")
            mark_outage(self.journal, now, self._skipped)
            return
        if self._skipped:
            self.decision_log.note(now, "plan", f"broker answering again after {self._skipped} skipped "
                                   "iteration(s): positions and orders re-read, protection re-checked",
                                   action="outage_end")
            self._skipped = 0
        if snap is None:
            return
        self._last_snapshot = snap
        if self.venue.live and not self._run_recorded:  # what this run started from, for `live_trader.py diff`
            record_start(self.journal, self.settings, snap, int(self.bar_period / pd.Timedelta(minutes=1)), now)
            self._run_recorded = True
        self._apply_setting_changes(now)
        with self.journal.batch():  # the iteration's bookkeeping is one transaction: all of it or none
            decisions = self._decide(snap, now)
            self.ledger.persist_marks()
        acted = False
        for d in decisions:
            if self.stopping:
                self.decision_log.note(now, "plan", "shutting down: the remaining intents are not started")
                break
            if d.intent is not None:
                acted = True
                try:
                    with self._exec_lock:
                        if self.stopping:  # checked under the lock: shutdown's protection check may have run
                            break
                        self.execute(d.intent, snap)
                except BrokerUnavailable as exc:
                    self.decision_log.note(now, d.step.value, f"{d.symbol}: broker unreachable mid-intent ({exc}); "
                                           "the next iteration re-checks protection", "warning")
                    break
        if self.executor.unsettled:
            try:
                with self._exec_lock:
                    self.executor.settle(snap)
            except BrokerUnavailable as exc:
                self.decision_log.note(now, "protect", f"broker unreachable while settling cancels ({exc}); the "
                                       "next iteration re-checks protection", "warning")
        self.alerts.end_iteration(now)  # what became of the orders sent: rejected, protection placed or failed
        self.iterations += 1
        if self.venue.live:
            self._follow_held(self._write_status(snap, now, acted))

    def _decide(self, snap: Snapshot, now) -> list[Decision]:
        """Marks, risk state, the plan and its review, and the decision records: everything but the orders."""
        s = self.settings
        if s.reentry_days:  # backtest or live, the snapshot carries what the ledger knows of recent take-profits
            snap = dataclasses.replace(snap, take_profits=self.ledger.take_profits())
        highs, lows = snap.bar_range()
        self.ledger.mark(highs, lows, hours=min(self.bar_period / pd.Timedelta(hours=1), 6.5))
        notes = self.risk.observe(snap, self.journal.recent_results(max(s.losing_streak, 1)))
        kelly_cap, kelly_note = kelly_risk_cap(self.journal.r_multiples(), s, snap.portfolio_value)
        flatten = self.risk.flatten_pending
        if flatten and not snap.holdings and not snap.open_orders:
            # done only when the broker shows it done: a sale refused or a cancel unconfirmed is tried again
            self.risk.flatten_done(snap.now)
            notes.append(Decision(Step.RISK, None, "flattened", "flatten complete: no positions, no open orders; "
                                  "HALTED until `python live_trader.py resume`"))
            flatten = False
        scorer = self.scorer
        if isinstance(scorer, MetaModel):  # its live record: the trades entered since it was trained
            scorer.observe_results(self.journal.entry_r_since(scorer.created),
                                   self.journal.entry_predictions_since(scorer.created))
            why = scorer.fallback(snap.now)
            if why:
                notes.append(Decision(Step.ENTRY, None, "fallback", why, level="warning", data={"gate": "model"}))
                scorer = self.rule_scorer
        slot = floor_time(now, sleeptime_minutes(self.sleeptime)) if self.venue.live else None
        self.executor.slot = slot
        plan = plan_iteration(snap, s, scorer, strategy_name=STRATEGY_ID, trades=self.ledger.open_trades(),
                              kelly_cap_usd=kelly_cap, mode=self.risk.mode, flatten=flatten, id_time=slot)
        decisions = notes + self.risk.review(plan.decisions, snap)
        inverse = sum(snap.value(x) for x in snap.holdings if x in s.inverse_symbols)
        long = sum(snap.value(x) for x in snap.holdings if x not in s.inverse_symbols)
        spy = snap.price("SPY")  # the benchmark the dashboard draws beside the equity curve
        sample = dict(time=snap.now, portfolio_value=snap.portfolio_value, cash=snap.cash, long_value=long,
                      inverse_value=inverse, positions=len(snap.holdings), risk_mode=self.risk.mode.name,
                      benchmark=spy if math.isfinite(spy) else None)
        if kelly_note and kelly_note.split(" (")[0] != self._kelly_note:  # log the Kelly cap when it changes
            self._kelly_note = kelly_note.split(" (")[0]
        else:
            kelly_note = ""
        self.decision_log.record_iteration(snap.now, decisions, sample, kelly_note)
        self.ledger.sample(**sample)
        return decisions

    def _live_snapshot(self, now) -> Snapshot | None:
        gw = self.venue.gw
        clock = gw.clock()
        self.session = session_now(clock, now, self.settings.enable_extended_hours)
        self._model_life(now, closed=self.session != "regular")  # a new champion; after the close, a retrain
        # orders that only work in the regular session are not sent once it has closed mid-iteration
        self.executor.session_ends = pd.Timestamp(clock.next_close) if self.session == "regular" else None
        if self.session is None:
            if not self._closed_noted:
                self.decision_log.note(now, "plan", "market closed (Alpaca clock): nothing to do until it opens")
                self._closed_noted = True
                self.alerts.market_closed(now)  # the daily summary, once per trading day
            return None
        self._closed_noted = False
        for line in self.venue.sync_fills(now):
            self.decision_log.note(now, "plan", line)
        return self.venue.snapshot(now)

    def _hedged_now(self) -> bool:
        snap = self._last_snapshot
        return bool(snap and any(x in self.settings.inverse_symbols for x in snap.holdings))

    # ------------------------------------------------------------------ execution
    def execute(self, intent: Intent, snap: Snapshot) -> None:
        self.executor.execute(intent, snap)

    # ------------------------------------------------------------------ callbacks
    def on_filled_order(self, position, order, price, quantity, multiplier) -> None:
        if self.venue.live:
            return  # live fills are reconciled from the broker (FillWatcher): one source, no double count
        side = "buy" if str(order.side).startswith("buy") else "sell"
        role = self.ledger.role_of(order.identifier, order.parent_identifier, _value(order.order_type))
        self.ledger.record_fill(Fill(self.get_datetime(), order.asset.symbol, side, float(quantity), float(price),
                                     role, order.identifier))

    def on_abrupt_closing(self) -> None:
        """Ctrl-C / SIGTERM: start no new intent; every position keeps (or gets) its protection."""
        self.stopping = True
        with self._exec_lock:  # the intent in hand (if any) finishes first: never a half-done trim
            self.protect_all()
        self.stop_streams()

    def protect_all(self) -> None:
        """Step 1 alone on a fresh snapshot: attach protection wherever a stop is missing."""
        if not self.venue.live:
            return
        now = self.now()
        try:
            snap = self.venue.snapshot(now)
        except BrokerUnavailable as exc:
            self.decision_log.note(now, "protect", f"shutdown protection check impossible: {exc}", "warning")
            return
        result = plan_protection(snap, self.settings, OrderIds(STRATEGY_ID, floor_time(now, 1)))
        for d in result.decisions:
            self.decision_log.record(now, d)
            if d.intent is not None and d.intent.kind == IntentKind.PROTECT:
                self.execute(d.intent, snap)
        self.alerts.end_iteration(now)
