"""The running bot's side of the model's life: a new champion is picked up at the start of an iteration, and
with RETRAIN_EVERY a retrain is started after the close in a process of its own. A mixin of CombinedStrategy.

The retrain never runs in the bot's process (a fit takes seconds to minutes; an iteration must not wait for
it) nor during market hours (models/schedule.py refuses then too, and a child still running at the open is
stopped). What it did reaches the decision log and the alerts once: promoted, kept beside the champion, or
failed with the champion left in place. Nothing here may stop the trading: any failure of this housekeeping
is said once and the bot goes on with the model in hand.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd

from models.features import FEATURE_HISTORY_BARS, FeatureParams
from models.meta_model import MetaModel, ModelError, card_path, load_confidence
from models.model_warnings import threshold_warning
from models.registry import ModelStore
from models.schedule import is_due, read_state, session_state

ROOT = Path(__file__).resolve().parent.parent
WATCH_STATE = "model_watch_window"  # journal state: the drift watch's recent candidates, kept across restarts
RETRAIN_LIMIT = pd.Timedelta(hours=3)  # a retrain still running after this is stopped (a hung fit holds the lock)
NOT_FOR_THE_CHILD = ("ALERT_URLS", "API_TOKEN")  # secrets a retrain has no use for


def card_signature(settings) -> tuple | None:
    """What changes when the champion's card is replaced (an atomic rename: a new inode and time)."""
    try:
        st = card_path(Path(settings.model_path)).stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class ModelLifeBot:
    _retrain: subprocess.Popen | None = None
    _retrain_started = None  # when the child was started (the bot's clock)
    _retrain_close = None  # the close it was started after: one launch per close
    _retrain_before = None  # retrain.json's id before it started: no new id, no outcome
    _card_sig: tuple | None = None
    _retrain_seen = None
    _refused_sig: tuple | None = None
    _life_error: str | None = None
    _watch_saved: int | None = None  # the watch's `recorded` count at the last save

    def _start_model_life(self) -> None:
        try:
            self._card_sig = card_signature(self.settings)
            self._retrain_seen = read_state(self._store()).get("id")  # an old outcome is not news
            taken = restore_watch(self.journal, self.scorer)
            if taken:
                self.decision_log.note(self.now(), "plan", f"model watch: the features of {taken} recent "
                                       "candidates taken back from the journal (drift is read over them)")
        except Exception as exc:  # noqa: BLE001 - never a reason not to trade
            self._life_failed(self.now(), exc)

    def _store(self) -> ModelStore:
        return ModelStore(self.settings.model_path, self.settings.models_kept)

    def _model_life(self, now, closed: bool) -> None:
        """Each live iteration: say what a finished retrain did, pick up a new champion, after the close start a
        retrain when one is due, and stop one still running at the open."""
        if not self.venue.live:
            return
        try:
            if not closed and self._retrain is not None and self._retrain.poll() is None:
                self._stop_retrain(now, "the market opened")
            self._report_retrain(now)
            self._pick_up_champion(now)
            if closed:
                self._save_watch()
                self._maybe_launch(now)
        except Exception as exc:  # noqa: BLE001 - the model's housekeeping must never stop the trading
            self._life_failed(now, exc)

    def after_market_closes(self) -> None:  # Lumibot's hook, once after each session
        with self._iteration_lock:  # never in the middle of an iteration or a stream action
            self._model_life(self.now(), True)

    def _save_watch(self) -> None:
        watch = getattr(self.scorer, "watch", None)
        if watch is not None and watch.recorded != self._watch_saved:  # after the close, when it changed
            self.journal.set_state(WATCH_STATE, watch.window())
            self._watch_saved = watch.recorded

    def _life_failed(self, now, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if text != self._life_error:  # said once, not every iteration
            self._life_error = text
            self.decision_log.note(now, "plan", f"model housekeeping failed ({text}); trading goes on with "
                                   f"{self.scorer.describe()}", "warning", action="retrain-failed")

    # ---------------------------------------------------------------- retraining
    def _maybe_launch(self, now) -> None:
        if self._retrain is not None or self.settings.retrain_every is None:
            return
        close = session_state(now)[1]
        if close == self._retrain_close:
            return  # started once after this close already, whatever became of it
        state = read_state(self._store())
        if not is_due(self.settings.retrain_every, state, now)[0]:
            return
        self._retrain_close, self._retrain_before, self._retrain_started = close, state.get("id"), now
        log = Path(self.settings.model_path).parent / "retrain.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "models.train", "--schedule", "--once", "--at", pd.Timestamp(now).isoformat(),
               "--env-file", os.devnull]  # the settings come whole in the environment
        with open(log, "a") as out:  # the child keeps its own handle; the bot does not wait for it
            # the bot's working folder: relative paths (MODEL_PATH, csv:DIR, the bar cache) mean the same files
            self._retrain = subprocess.Popen(cmd, cwd=os.getcwd(), stdout=out, stderr=subprocess.STDOUT,
                                             env=_child_env(self.settings), start_new_session=True)

    def _stop_retrain(self, now, why: str) -> None:
        try:
            os.killpg(self._retrain.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self._retrain.wait(timeout=30)
        self._retrain = None
        self.decision_log.note(now, "plan", f"scheduled retrain stopped: {why}; the champion stays (see "
                               f"{Path(self.settings.model_path).parent / 'retrain.log'})", "warning",
                               action="retrain-failed")

    def _report_retrain(self, now) -> None:
        state = read_state(self._store())
        if self._retrain is not None:
            code = self._retrain.poll()
            if code is None:
                if pd.Timestamp(now) - pd.Timestamp(self._retrain_started) > RETRAIN_LIMIT:
                    self._stop_retrain(now, f"still running after {RETRAIN_LIMIT}")
                return
            self._retrain = None
            if state.get("id") == self._retrain_before:  # killed, or it could not start: it wrote nothing
                self.decision_log.note(now, "plan", f"scheduled retrain ended (exit code {code}) without an outcome;"
                                       f" the champion stays (see {Path(self.settings.model_path).parent}/"
                                       "retrain.log)", "warning", action="retrain-failed")
        if not state or state.get("id") == self._retrain_seen:
            return
        self._retrain_seen = state.get("id")
        kind = state.get("outcome")
        action = {"promoted": "model-promoted", "failed": "retrain-failed"}.get(kind, "retrain")
        self.decision_log.note(now, "plan", f"scheduled retrain {kind}: {state.get('why')}",
                               "warning" if kind == "failed" else "info", action=action)

    # ---------------------------------------------------------------- the champion
    def _pick_up_champion(self, now) -> None:
        sig = card_signature(self.settings)
        if sig == self._card_sig or sig == self._refused_sig or sig is None:
            return
        old = self.scorer.describe()
        try:
            new = load_confidence(self.settings)
        except (ModelError, OSError) as exc:  # OSError: a version pruned or unreadable under our feet
            self._refused_sig = sig  # said once per card
            why = exc.one_line() if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
            self.decision_log.note(now, "plan", f"the new champion at {self.settings.model_path} is refused, "
                                   f"{old} stays: {why}", "warning", action="retrain-failed")
            return
        self._card_sig = sig
        if not isinstance(new, MetaModel) or getattr(self.scorer, "version", None) == new.version:
            return
        if not isinstance(self.scorer, MetaModel):  # features need a longer history than the rule score
            self.venue.history_bars = FEATURE_HISTORY_BARS
            self.venue.bars = type(self.venue.bars)(self.venue.gw, self.bar_period, FEATURE_HISTORY_BARS)
        if getattr(self.scorer, "watch", None) is not None:  # the market's recent candidates outlive the model
            new.watch.restore(self.scorer.watch.window())
        self.scorer = self.alerts.scorer = new
        self._watch_saved = None
        self.features = FeatureParams.from_settings(self.settings)
        self.decision_log.note(now, "plan", f"model changed: {old} -> {new.describe()}; in effect from this "
                               "iteration", action="model-changed")
        warning = threshold_warning(new)
        if warning:
            self.decision_log.note(now, "plan", warning, "warning")


def restore_watch(journal, scorer) -> int:
    """The drift watch's window saved after an earlier close, given back to this model's watch (same features);
    the rows taken back (0 without a meta-model or a saved window)."""
    watch = getattr(scorer, "watch", None)
    return watch.restore(journal.get_state(WATCH_STATE)) if watch is not None and journal is not None else 0


def _child_env(settings) -> dict[str, str]:
    """The bot's settings for the retrain process (its Alpaca keys read the history with RETRAIN_DATA=alpaca):
    passed in the child's environment, never written anywhere; the package importable from any folder."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_") and k not in NOT_FOR_THE_CHILD}
    path = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p)
    mine = {k: v for k, v in settings.as_env().items() if k not in NOT_FOR_THE_CHILD}
    return {**base, "PYTHONPATH": path, **mine}
