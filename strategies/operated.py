"""What the bot shows and takes while it runs: its status for the API and the dashboard, written to the journal
after each iteration, and run-time settings changes (the API's settings endpoint) applied at the start of one.
A mixin of CombinedStrategy, kept apart so the strategy module stays the wiring of the iteration."""

import pandas as pd

from broker.errors import BrokerUnavailable
from models.schedule import life_line
from trading.records.status import build_status, write_status
from trading.settings import SettingsError, sleeptime_minutes
from trading.settings_runtime import OVERRIDES_KEY, RUNTIME_SETTINGS
from trading.settings_specs import SPECS
from trading.snapshot import Snapshot


class OperatedBot:
    def _write_status(self, snap: Snapshot, now, acted: bool) -> Snapshot:
        """What the API and the dashboard show. After an iteration that sent orders, positions and orders are
        re-read, so a position the iteration just protected does not show unprotected for an hour. Returns the
        snapshot shown."""
        if acted and self.venue.live:
            try:
                snap = self.venue.after_orders(snap)
            except BrokerUnavailable:
                pass  # the status shows the iteration's start; the next one re-reads
        if self.venue.live:
            mode = ("paper" if self.settings.alpaca_paper else "LIVE") + (" dry run" if self.venue.dry_run else "")
            next_at = pd.Timestamp(now) + pd.Timedelta(minutes=sleeptime_minutes(self.sleeptime))
        else:
            mode, next_at = "backtest", None
        status = build_status(snap, self.settings, mode=mode, strategy=self.name, risk_mode=self.risk.mode.name,
                              risk_why=self.risk.describe(), iterations=self.iterations, next_at=next_at,
                              model=self.scorer.describe(), model_created=getattr(self.scorer, "created", None),
                              session=self.session, started=self.started, account=self.account_label,
                              streams=self.streams.status() if self.streams is not None else None,
                              model_watch=watch.status() if (watch := getattr(self.scorer, "watch", None)) else None)
        status["model"]["life"] = life_line(self.settings)  # the champion and the last retrain (models/schedule.py)
        write_status(self.journal, status, now)
        return snap

    def _apply_setting_changes(self, now) -> None:
        """Run-time changes written to the journal (the API's settings endpoint) take effect here, at the start
        of an iteration, validated again against the settings the bot started with."""
        state = self.journal.get_state(OVERRIDES_KEY)
        if not state or state.get("id") == self._settings_id:
            return
        self._settings_id = state.get("id")
        values = {k: v for k, v in state["values"].items() if k in RUNTIME_SETTINGS}
        try:
            new = self.base_settings.with_changes(values)
        except SettingsError as exc:
            self.decision_log.note(now, "plan", "run-time settings change refused, the settings stay as they are: "
                                   + "; ".join(exc.problems), "warning")
            return
        old = self.settings
        moved = [f"{s.env} {getattr(old, s.attr)} -> {getattr(new, s.attr)}" for s in SPECS
                 if getattr(old, s.attr) != getattr(new, s.attr)]
        self.settings = self.executor.settings = new
        if hasattr(self.risk, "s"):
            self.risk.s = new
        if moved:
            self.decision_log.note(now, "plan", f"settings changed ({state.get('source', 'journal')}): "
                                   + ", ".join(moved) + "; in effect from this iteration")

    def on_strategy_end(self) -> None:
        """A backtest's journal ends with the bot's status, so the API and dashboard browse it like a live one."""
        if not self.venue.live and self._last_snapshot is not None:
            self._write_status(self.snapshot_from_lumibot(self.get_datetime()), self.now(), False)

