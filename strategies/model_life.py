"""The running bot's side of the model's life: a new champion is picked up at the start of an iteration, and
with RETRAIN_EVERY a retrain is started after the close in a process of its own. A mixin of CombinedStrategy.

The retrain never runs in the bot's process (a fit takes seconds to minutes; an iteration must not wait for
it) nor during market hours (models/schedule.py refuses then too). What it did reaches the decision log
and the alerts once: promoted, kept beside the champion, or failed with the champion left in place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from models.features import FEATURE_HISTORY_BARS, FeatureParams
from models.meta_model import MetaModel, ModelError, card_path, load_confidence
from models.registry import ModelStore
from models.schedule import is_due, read_state

ROOT = Path(__file__).resolve().parent.parent


def card_signature(settings) -> tuple | None:
    """What changes when the champion's card is replaced (an atomic rename: a new inode and time)."""
    try:
        st = card_path(Path(settings.model_path)).stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class ModelLifeBot:
    _retrain: subprocess.Popen | None = None
    _card_sig: tuple | None = None
    _retrain_seen: int | None = None
    _refused_sig: tuple | None = None

    def _start_model_life(self) -> None:
        self._card_sig = card_signature(self.settings)
        self._retrain_seen = read_state(self._store()).get("id")  # an old outcome is not news

    def _store(self) -> ModelStore:
        return ModelStore(self.settings.model_path, self.settings.models_kept)

    def _model_life(self, now, closed: bool) -> None:
        """Each live iteration: say what a finished retrain did, pick up a new champion, and after the close
        start a retrain when one may be due."""
        if not self.venue.live:
            return
        self._report_retrain(now)
        self._pick_up_champion(now)
        if closed and self._retrain is None and is_due(self.settings.retrain_every, read_state(self._store()), now)[0]:
            self._launch_retrain(now)  # the child checks again (the exchange calendar, the lock) before training

    def after_market_closes(self) -> None:  # Lumibot's hook, once after each session
        with self._iteration_lock:  # never in the middle of an iteration or a stream action
            self._model_life(self.now(), True)

    def _launch_retrain(self, now) -> None:
        log = Path(self.settings.model_path).parent / "retrain.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "models.train", "--schedule", "--once", "--at", now.isoformat(),
               "--env-file", os.devnull]  # the settings come whole in the environment
        with open(log, "a") as out:  # the child keeps its own handle; the bot does not wait for it
            self._retrain = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                             env=_child_env(self.settings), start_new_session=True)

    def _report_retrain(self, now) -> None:
        if self._retrain is not None and self._retrain.poll() is not None:
            self._retrain = None
        state = read_state(self._store())
        if not state or state.get("id") == self._retrain_seen:
            return
        self._retrain_seen = state.get("id")
        kind = state.get("outcome")
        action = {"promoted": "model-promoted", "failed": "retrain-failed"}.get(kind, "retrain")
        self.decision_log.note(now, "plan", f"scheduled retrain {kind}: {state.get('why')}",
                               "warning" if kind == "failed" else "info", action=action)

    def _pick_up_champion(self, now) -> None:
        sig = card_signature(self.settings)
        if sig == self._card_sig or sig == self._refused_sig or sig is None:
            return
        old = self.scorer.describe()
        try:
            new = load_confidence(self.settings)
        except ModelError as exc:
            self._refused_sig = sig  # said once per card
            self.decision_log.note(now, "plan", f"the new champion at {self.settings.model_path} is refused, "
                                   f"{old} stays: {exc.one_line()}", "warning", action="retrain-failed")
            return
        self._card_sig = sig
        if not isinstance(new, MetaModel) or getattr(self.scorer, "version", None) == new.version:
            return
        if not isinstance(self.scorer, MetaModel):  # features need a longer history than the rule score
            self.venue.history_bars = FEATURE_HISTORY_BARS
            self.venue.bars = type(self.venue.bars)(self.venue.gw, self.bar_period, FEATURE_HISTORY_BARS)
        self.scorer = self.alerts.scorer = new
        self.features = FeatureParams.from_settings(self.settings)
        self.decision_log.note(now, "plan", f"model changed: {old} -> {new.describe()}; in effect from this "
                               "iteration", action="model-changed")


def _child_env(settings) -> dict[str, str]:
    """The bot's settings, every one, for the retrain process (its keys read Alpaca's history with
    RETRAIN_DATA=alpaca): passed in the child's environment, never written anywhere."""
    from trading.settings import as_text
    from trading.settings_specs import SPECS

    base = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_")}
    return {**base, **{s.env: as_text(getattr(settings, s.attr)) for s in SPECS}}
