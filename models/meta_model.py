"""The installed meta-model: load it only when its card vouches for it, and gate entries with it.

A joblib file runs code when it is loaded, so nothing is unpickled until the card next to it
(`meta_model.json`) has been checked: the file's sha256 must be the one recorded at training, the
feature list must be the one the running code computes, the scikit-learn major version must match,
and the feature parameters (RSI period, bellwethers, ...) must equal the running settings. Any
mismatch stops start-up with a message that says what differs and how to fix it.
"""

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn

from models.features import FEATURE_NAMES, FeatureParams
from models.model_watch import ModelWatch

logger = logging.getLogger("trader.model")
CARD_FORMAT = 2  # 2: the realised-R ensemble (1 was a calibrated bracket classifier)
DEFAULT_MIN_EXPECTED_R = 0.0  # the gate when the card proposes no threshold: a positive expected value


class ModelError(ValueError):
    """The model file or its card cannot be trusted or used; the message says why and what to do."""

    def one_line(self) -> str:
        """The message on one line (its problems joined), for a decision log line or an alert."""
        return " ".join(line.strip() for line in str(self).splitlines())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def model_file(model_path: Path, card: dict) -> Path:
    """The file the card vouches for: MODEL_PATH itself, or the version the champion's card names
    (models/registry.py), which must lie inside MODEL_PATH's folder."""
    name = card.get("model_file")
    if not isinstance(name, str) or "/" not in name:
        return Path(model_path)
    folder = Path(model_path).parent.resolve()
    target = (folder / name).resolve()
    if folder not in target.parents:
        raise ModelError(f"the card's model_file {name!r} points outside {folder}; it is not loaded")
    return target


@dataclass
class MetaModel:
    """The ensemble behind the entry gate; one batched prediction per iteration.

    `assess` gives each candidate's expected R, agreement and uncertainty; the gate's threshold is
    MIN_EXPECTED_R when set, else the card's proposal, else DEFAULT_MIN_EXPECTED_R."""

    path: Path
    card: dict
    estimator: object
    max_age_days: float
    block_when_stale: bool
    override: float | None = None  # MIN_EXPECTED_R
    _warned_day: object = None
    watch: ModelWatch = field(init=False, repr=False)  # drift and decay, said daily (models/model_watch.py)

    def __post_init__(self) -> None:
        self.watch = ModelWatch(self.card, tuple(FEATURE_NAMES))

    @property
    def name(self) -> str:
        return f"model:{self.path.name}"

    @property
    def min_expected_r(self) -> float:
        proposed = (self.card.get("gate") or {}).get("min_expected_r")
        return self.override if self.override is not None else (
            DEFAULT_MIN_EXPECTED_R if proposed is None else float(proposed))

    def threshold_source(self) -> str:
        if self.override is not None:
            return "MIN_EXPECTED_R"
        return "the card" if (self.card.get("gate") or {}).get("min_expected_r") is not None else "default"

    @property
    def version(self) -> str:
        return str(self.card.get("version") or "unversioned")

    def describe(self) -> str:
        w = self.card["training_window"]
        return (f"meta-model {self.version} (trained {self.card['created'][:10]} on {w['start']} .. {w['end']}, "
                f"walk-forward AUC {_fmt(self.card['metrics']['overall'].get('auc'))}; gate expected R >= "
                f"{self.min_expected_r:+.3f} from {self.threshold_source()})")

    @property
    def created(self) -> datetime:
        return _aware(datetime.fromisoformat(self.card["created"]))  # a naive time is UTC, as train writes it

    def gate(self, now: datetime) -> str | None:
        """None when the model may gate entries; a reason to block them otherwise. Warns once a day
        while the model is older than MAX_MODEL_AGE_DAYS, and says what its watch sees (drift, decay)."""
        self.watch.daily(_aware(now).date())
        decayed = self.watch.blocks()
        if decayed:
            return decayed
        age = (_aware(now) - self.created).total_seconds() / 86400
        if age <= self.max_age_days:
            return None
        day = _aware(now).date()
        if self._warned_day != day:
            self._warned_day = day
            logger.warning("meta-model is %.0f days old (MAX_MODEL_AGE_DAYS=%g): retrain with python -m models.train",
                           age, self.max_age_days)
        if self.block_when_stale:
            return f"the meta-model is {age:.0f} days old (> MAX_MODEL_AGE_DAYS={self.max_age_days:g})"
        return None

    def assess(self, rows: pd.DataFrame, record: bool = True) -> pd.DataFrame:
        """expected_r, agreement and uncertainty per row (and stop_pct when the model has a stop model); NaN for a
        row without complete features (it never passes the gate). `record`: the rows are entry candidates, kept
        for the drift watch (open trades re-scored for EXIT_CONFIDENCE are not)."""
        missing = [f for f in FEATURE_NAMES if f not in rows.columns]
        if missing:
            raise ValueError(f"feature column(s) missing from the market rows: {', '.join(missing[:5])}")
        x = rows[list(FEATURE_NAMES)].astype(float)
        complete = np.isfinite(x.to_numpy()).all(axis=1)
        stops = getattr(self.estimator, "stop_model_", None)
        columns = ["expected_r", "agreement", "uncertainty"] + (["stop_pct"] if stops is not None else [])
        out = pd.DataFrame(np.nan, index=rows.index, columns=columns)
        if complete.any():
            if record:
                self.watch.record(x[complete].to_numpy())
            a = self.estimator.assess(x[complete], self.min_expected_r)
            out.loc[complete, "expected_r"] = a.expected_r
            out.loc[complete, "agreement"] = a.agreement
            out.loc[complete, "uncertainty"] = a.uncertainty
            if stops is not None:  # STOP_MODE=model: the stop distance, bounded by the settings at use
                out.loc[complete, "stop_pct"] = stops.predict(x[complete])
        return out

    def fallback(self, now: datetime) -> str | None:
        """Why entries are judged by the rule-based score instead of this model now (MODEL_DEGRADED_ACTION=
        fallback and its edge decayed), else None."""
        self.watch.daily(_aware(now).date())
        if self.watch.falls_back():
            return f"{self.watch.verdict.describe()}: entries judged by the rule-based score meanwhile " \
                   "(MODEL_DEGRADED_ACTION=fallback)"
        return None

    def observe_results(self, results: list[float], predictions: list[tuple[float, float]] | None = None) -> None:
        """R multiples of the trades entered since the model was trained, oldest first (the decay watch); and,
        when given, their (expected R at entry, realised R) pairs (the calibration watch)."""
        self.watch.observe(results, predictions)

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        """The expected R (what candidates are ranked by)."""
        return self.assess(rows)["expected_r"].to_numpy()


def load_meta_model(model_path: str | Path, params: FeatureParams, max_age_days: float = 30.0,
                    block_when_stale: bool = False, min_expected_r: float | None = None) -> MetaModel | None:
    """The model at `model_path`, or None when there is no model file (rule-based confidence then)."""
    path = Path(model_path)
    cpath = card_path(path)
    if not path.exists() and not cpath.exists():
        return None
    if not cpath.exists():
        raise ModelError(f"{path} has no model card ({cpath.name}); it is not loaded (a joblib file runs code when "
                         "loaded). Retrain with: python -m models.train, or remove the file to use the rule-based "
                         "confidence.")
    try:
        card = json.loads(cpath.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{cpath} is not valid JSON ({exc}); retrain with: python -m models.train") from None
    if not isinstance(card, dict):
        raise ModelError(f"{cpath} is not a model card (a JSON object); retrain with: python -m models.train")
    path = model_file(path, card)
    if not path.is_file():
        raise ModelError(f"{cpath.name} names the model file {path}, which does not exist; roll back with: python -m "
                         "models.train rollback, or retrain with: python -m models.train")
    problems = check_card(card, path, params)
    if problems:
        raise ModelError(f"{path} is not loaded:\n  - " + "\n  - ".join(problems)
                         + "\nRetrain with: python -m models.train (or remove the file to use the rule-based "
                           "confidence).")
    estimator = joblib.load(path)
    return MetaModel(path, card, estimator, max_age_days, block_when_stale, min_expected_r)


# Every field the loader or the running model reads (describe, gate). A card without one is refused
# here, before anything is unpickled, instead of failing later mid-session with a KeyError.
REQUIRED_FIELDS: tuple[tuple[str, ...], ...] = (
    ("format",), ("sha256",), ("created",), ("feature_names",), ("feature_params",), ("versions", "sklearn"),
    ("training_window", "start"), ("training_window", "end"), ("metrics", "overall"))


def missing_fields(card: dict) -> list[str]:
    """Dotted names of the required card fields that are absent or empty."""
    missing = []
    for keys in REQUIRED_FIELDS:
        node: object = card
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None or node == "" or node == []:
            missing.append(".".join(keys))
    return missing


def check_card(card: dict, path: Path, params: FeatureParams) -> list[str]:
    """What stops the card from vouching for the file at `path`; empty when it does. Reads the file's
    bytes for the hash, never unpickles it."""
    missing = missing_fields(card)
    problems = [f"the card has no {', '.join(missing)} (required: a card written by python -m models.train)"] \
        if missing else []
    if "created" not in missing:
        try:
            _aware(datetime.fromisoformat(str(card["created"])))
        except ValueError:
            problems.append(f"the card's created time {card['created']!r} is not an ISO date")
    if card.get("format") != CARD_FORMAT:
        problems.append(f"card format {card.get('format')!r} is not {CARD_FORMAT} (a model from an older version: "
                        "the gate now needs the realised-R ensemble)")
    digest = sha256_file(path)
    if "sha256" not in missing and card.get("sha256") != digest:
        problems.append(f"sha256 of {path.name} is {digest[:16]}..., the card records "
                        f"{str(card.get('sha256'))[:16]}...: the file changed since training")
    names = _of(card, "feature_names", list)
    if names != list(FEATURE_NAMES):
        gone = [n for n in names if n not in FEATURE_NAMES]
        new = [n for n in FEATURE_NAMES if n not in names]
        detail = f"the model expects {', '.join(gone) or 'the same names'}; the code now computes " \
                 f"{', '.join(new) or 'them in another order'}"
        problems.append(f"feature list does not match the running code ({detail})")
    proposed = _of(card, "gate", dict).get("min_expected_r")
    if proposed is not None and (isinstance(proposed, bool) or not isinstance(proposed, int | float)
                                 or not math.isfinite(proposed)):
        problems.append(f"the card's gate.min_expected_r {proposed!r} is not a number")
    trained = str(_of(card, "versions", dict).get("sklearn", "?"))
    if trained.split(".")[0] != sklearn.__version__.split(".")[0]:
        problems.append(f"trained with scikit-learn {trained}, running {sklearn.__version__} (major versions differ)")
    expected = params.as_dict()
    recorded = _of(card, "feature_params", dict)
    for key, value in expected.items():
        if recorded.get(key) != value:
            problems.append(f"features were computed with {key}={recorded.get(key)!r}, the settings say {value!r}")
    return problems


def _of(card: dict, key: str, kind: type) -> list | dict:
    """card[key] when it has the expected JSON type, else an empty one (a hand-edited card must be
    refused with a message, not crash the check)."""
    value = card.get(key)
    return value if isinstance(value, kind) else kind()


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _fmt(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def load_confidence(settings):
    """The confidence model the settings call for: the meta-model at MODEL_PATH, or the rule-based
    score when there is no file. Raises ModelError when a file is there but cannot be trusted."""
    from trading.confidence import RuleConfidence

    model = load_meta_model(settings.model_path, FeatureParams.from_settings(settings),
                            settings.max_model_age_days, settings.block_entries_on_stale_model, settings.min_expected_r)
    if model is not None:
        model.watch.action, model.watch.min_trades = settings.model_degraded_action, settings.model_watch_min_trades
    if settings.stop_mode == "model" and getattr(getattr(model, "estimator", None), "stop_model_", None) is None:
        raise ModelError(f"STOP_MODE=model takes each stop from the meta-model's stop model, but "
                         f"{'there is no model at ' + settings.model_path if model is None else settings.model_path}"
                         f"{'' if model is None else ' has none'}. Train one with: python -m models.train, or set "
                         "STOP_MODE=fixed (or atr).")
    return model if model is not None else RuleConfidence(settings.rsi_oversold)
