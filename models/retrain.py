"""One retrain: a challenger trained on the latest data, judged against the champion, promoted or kept beside it.

The duel (promotion.py) needs candidates neither model has seen: those after the champion's training
window (without a champion, the last quarter of the data, against the trivial gates alone). The
challenger judged there is trained on the bars before that window only; the model that is kept (and
promoted when it won) is the same recipe trained on the whole window, recent days included, with its
own walk-forward report in its card like any trained model. Nothing here runs during market hours or
inside the bot's process (schedule.py).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from models.dataset import Dataset, build_dataset
from models.exit_sim import ExitPolicy
from models.features import FeatureParams
from models.meta_model import DEFAULT_MIN_EXPECTED_R, ModelError, load_meta_model
from models.model_files import plot_validation
from models.promotion import MIN_WINDOW_CANDIDATES, TRIVIAL, duel, gate_passes, verdict
from models.registry import ModelStore, RegistryError


@dataclass(frozen=True)
class Outcome:
    outcome: str  # promoted, kept, postponed, skipped or failed
    why: str
    version: str | None = None  # the challenger's, when one was trained
    champion: str | None = None  # the champion afterwards
    seconds: float = 0.0
    data_end: str | None = None

    def line(self) -> str:
        return f"retrain {self.outcome}: {self.why}"

    def as_dict(self) -> dict:
        return asdict(self)


def retrain(settings, market, start: date, end: date, store: ModelStore, splits: int = 5,
            shuffle_labels: bool = False, say=print) -> Outcome:
    """Train a challenger on `market` over [start, end] and promote it if it beats the champion on the same
    candidates. `shuffle_labels`: a placebo (the labels permuted), which must never win. TrainingError when the
    data cannot make a model; the champion is untouched then."""
    from models.train import make_card, train

    t0 = time.perf_counter()
    params = FeatureParams.from_settings(settings)
    policy = ExitPolicy.from_settings(settings, market.bar_period)
    universe = tuple(s for s in settings.universe if s in market.bars)
    gates = {"ensemble_agreement": settings.ensemble_agreement, "max_uncertainty": settings.max_uncertainty}
    bounds = (settings.stop_model_min_pct, settings.stop_model_max_pct)
    ds = build_dataset(market.bars, universe, params, settings.rsi_oversold, policy, start, end)
    judged_against = store.champion_version()  # promotion checks it is still the champion (a rollback meanwhile)
    champion, champion_note = _champion(settings, store, params)
    w0 = window_start(ds, champion)
    window = ds.times >= w0
    span = (f"{w0:%Y-%m-%d}", f"{ds.times[-1]:%Y-%m-%d}")
    if window.sum() < MIN_WINDOW_CANDIDATES:
        return Outcome("postponed", f"only {int(window.sum())} candidates since {span[0]} (the champion's training "
                       f"ended before); the duel needs {MIN_WINDOW_CANDIDATES}, judged again at the next retrain",
                       champion=store.champion_version(), data_end=str(end))
    say(f"Challenger judged on {int(window.sum())} candidates of {span[0]} .. {span[1]}{champion_note}; trained on "
        f"the bars before them.")
    pre = build_dataset(market.bars, universe, params, settings.rsi_oversold, policy, start,
                        (w0 - pd.Timedelta(days=1)).date())
    judged = train(_placebo(pre) if shuffle_labels else pre, policy, gates, bounds, splits, progress=False)
    threshold = settings.min_expected_r if settings.min_expected_r is not None else (
        DEFAULT_MIN_EXPECTED_R if judged["proposed"] is None else judged["proposed"])
    X, r, days = ds.X[window], ds.r[window], ds.times[window].normalize().asi8
    takes = gate_passes(judged["model"], X, threshold, gates)
    rivals = [(TRIVIAL[0], np.ones(len(r), dtype=bool)), (TRIVIAL[1], np.zeros(len(r), dtype=bool))]
    if champion is not None:
        rivals.insert(0, (f"the champion {champion.version}",
                          gate_passes(champion.estimator, X, champion.min_expected_r, gates)))
    say("Training the challenger on the whole window ...")
    full = _placebo(ds) if shuffle_labels else ds
    result = train(full, policy, gates, bounds, splits, progress=False)
    card = make_card(settings, splits, market, start, end, universe, policy, params, full, result, gates)
    with tempfile.TemporaryDirectory() as tmp:
        plot = Path(tmp) / "validation.png"
        plot_validation(plot, result["oos"], result["proposed"])
        version = store.add(result["model"], {**card, "train_seconds": time.perf_counter() - t0,
                                              "placebo": shuffle_labels}, plot)
    duels = [duel(r, days, held, takes, (name, f"challenger {version}"), span) for name, held in rivals]
    promote, why = verdict(duels, settings.promote_min_gain)
    if promote:
        try:
            store.promote(version, why, expect=judged_against)
        except RegistryError as exc:
            promote, why = False, f"not promoted: {exc}"
    store.record(version, {"verdict": "promoted" if promote else "kept", "why": why,
                           "duels": [d.as_dict() for d in duels]})
    store.prune()  # MODELS_KEPT counts the challengers kept too
    return Outcome("promoted" if promote else "kept", why, version, store.champion_version(),
                   time.perf_counter() - t0, str(end))


def window_start(ds: Dataset, champion) -> pd.Timestamp:
    """Where the duel's candidates begin: after the champion's training window, but never before the data's
    midpoint (the challenger judged there needs bars to learn from); without a champion, the last quarter."""
    n = len(ds.timeline)
    floor = ds.timeline[n // 2] if champion is not None else ds.timeline[(3 * n) // 4]
    if champion is None:
        return floor
    after = pd.Timestamp(champion.card["training_window"]["end"]) + pd.Timedelta(days=1)
    after = after.tz_localize(ds.timeline.tz) if after.tzinfo is None else after
    return max(floor, after)


def _champion(settings, store: ModelStore, params: FeatureParams):
    """(the champion as the bot would load it, a note); (None, why) when there is none or it cannot be used."""
    if store.champion() is None:
        return None, " against the trivial gates (no champion yet)"
    try:
        model = load_meta_model(settings.model_path, params, min_expected_r=settings.min_expected_r)
    except ModelError as exc:
        return None, f" against the trivial gates (the champion cannot be used: {exc.one_line()})"
    return model, f" against the champion {model.version}"


def _placebo(ds: Dataset, seed: int = 0) -> Dataset:
    return replace(ds, r=np.random.default_rng(seed).permutation(ds.r))
