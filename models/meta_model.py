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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn

from models.features import FEATURE_NAMES, FeatureParams

logger = logging.getLogger("trader.model")
CARD_FORMAT = 1


class ModelError(ValueError):
    """The model file or its card cannot be trusted or used; the message says why and what to do."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


@dataclass
class MetaModel:
    """ConfidenceModel backed by the calibrated classifier; one predict_proba call per iteration."""

    path: Path
    card: dict
    estimator: object
    max_age_days: float
    block_when_stale: bool
    _warned_day: object = None

    @property
    def name(self) -> str:
        return f"model:{self.path.name}"

    def describe(self) -> str:
        w = self.card["training_window"]
        return (f"meta-model {self.path.name} (trained {self.card['created'][:10]} on {w['start']} .. {w['end']}, "
                f"walk-forward AUC {_fmt(self.card['metrics']['overall'].get('auc'))})")

    @property
    def created(self) -> datetime:
        return _aware(datetime.fromisoformat(self.card["created"]))  # a naive time is UTC, as train writes it

    def gate(self, now: datetime) -> str | None:
        """None when the model may gate entries; a reason to block them otherwise. Warns once a day
        while the model is older than MAX_MODEL_AGE_DAYS."""
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

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        missing = [f for f in FEATURE_NAMES if f not in rows.columns]
        if missing:
            raise ValueError(f"feature column(s) missing from the market rows: {', '.join(missing[:5])}")
        x = rows[list(FEATURE_NAMES)].astype(float)
        complete = np.isfinite(x.to_numpy()).all(axis=1)
        out = np.full(len(rows), np.nan)  # a candidate without complete features never passes the gate
        if complete.any():
            out[complete] = self.estimator.predict_proba(x[complete])[:, 1]
        return out


def load_meta_model(model_path: str | Path, params: FeatureParams, max_age_days: float = 30.0,
                    block_when_stale: bool = False) -> MetaModel | None:
    """The model at `model_path`, or None when there is no model file (rule-based confidence then)."""
    path = Path(model_path)
    if not path.exists():
        return None
    cpath = card_path(path)
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
    problems = check_card(card, path, params)
    if problems:
        raise ModelError(f"{path} is not loaded:\n  - " + "\n  - ".join(problems)
                         + "\nRetrain with: python -m models.train (or remove the file to use the rule-based "
                           "confidence).")
    estimator = joblib.load(path)
    return MetaModel(path, card, estimator, max_age_days, block_when_stale)


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
        problems.append(f"card format {card.get('format')!r} is not {CARD_FORMAT}")
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
                            settings.max_model_age_days, settings.block_entries_on_stale_model)
    return model if model is not None else RuleConfidence(settings.rsi_oversold)


def threshold_warning(model, threshold: float) -> str | None:
    """A warning when CONFIDENCE_THRESHOLD is above every out-of-sample probability the model gave in
    validation: with it the gate passes nothing and the bot makes no new entries (the probability that
    +TAKE_PROFIT_PCT comes before -STOP_LOSS_PCT is a small number; the rule score is not)."""
    if not isinstance(model, MetaModel):
        return None
    oos = model.card.get("oos_probability") or {}
    top = oos.get("max")
    if top is None or threshold <= top:
        return None
    hint = (f"the training report's best out-of-sample threshold was {model.card['suggested_threshold']:.2f}"
            if model.card.get("suggested_threshold") is not None else "the training report found no threshold "
            "with an edge")
    return (f"CONFIDENCE_THRESHOLD={threshold:g} is above every out-of-sample probability of {model.path.name} "
            f"(highest {top:.2f}, 99th percentile {oos.get('p99', top):.2f}; break-even for this bracket "
            f"{model.card.get('breakeven_probability', float('nan')):.2f}): no candidate will pass and the bot "
            f"will make no new entries. {hint[0].upper() + hint[1:]}; set CONFIDENCE_THRESHOLD deliberately, "
            "or remove the model file for the rule-based score")


def overlap_warning(model, source: str, start, end) -> str | None:
    """A warning when a backtest runs on the data the model was trained on (results are in-sample)."""
    if not isinstance(model, MetaModel) or model.card.get("data", {}).get("source") != source:
        return None
    w = model.card["training_window"]
    if str(start) <= w["end"] and str(end) >= w["start"]:
        return (f"the meta-model was trained on {w['start']} .. {w['end']} of the same data: the overlapping part "
                "of this backtest is in-sample")
    return None
