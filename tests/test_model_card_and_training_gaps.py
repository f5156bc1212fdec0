"""The model card guards the unpickling, and the card written by training proves the purge gaps it used.

A joblib file runs code when it is loaded. These tests load a file that records its own unpickling, so
"refused" means refused before any of its code ran, not just refused in the end.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import joblib
import pytest
import sklearn

from models import meta_model
from models.features import FEATURE_NAMES, FeatureParams
from models.meta_model import ModelError, load_meta_model
from trading.settings import Settings

PARAMS = FeatureParams.from_settings(Settings.defaults())


def _record_unpickling(marker: str) -> str:
    Path(marker).write_text("this model file's code ran")
    return "an estimator"


class Tripwire:
    """Pickles to a call of _record_unpickling: unpickling it leaves the marker file behind."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return _record_unpickling, (self.marker,)


def good_card(path: Path) -> dict:
    return {"format": 2, "kind": "ensemble", "sha256": meta_model.sha256_file(path),
            "created": datetime.now(UTC).isoformat(),
            "feature_names": list(FEATURE_NAMES), "feature_params": PARAMS.as_dict(),
            "versions": {"sklearn": sklearn.__version__},
            "training_window": {"start": "2021-01-04", "end": "2023-06-30"},
            "metrics": {"overall": {"auc": 0.55}}, "label": {"horizon_bars": 70}}


@pytest.fixture
def tripwire(tmp_path, monkeypatch):
    """(model path, marker path, joblib.load calls): a model file whose unpickling is recorded twice over."""
    marker = tmp_path / "unpickled"
    path = tmp_path / "meta_model.joblib"
    joblib.dump(Tripwire(marker), path)
    calls = []
    real_load = joblib.load

    def spy(*args, **kwargs):
        calls.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(meta_model.joblib, "load", spy)
    return path, marker, calls


def write_card(path: Path, card) -> None:
    path.with_suffix(".json").write_text(json.dumps(card))


def test_the_tripwire_runs_its_code_when_a_good_card_lets_it_load(tripwire):
    path, marker, calls = tripwire
    write_card(path, good_card(path))
    model = load_meta_model(path, PARAMS)
    assert model.estimator == "an estimator" and marker.exists() and len(calls) == 1  # the probe below has teeth


def _without(card: dict, dotted: str) -> dict:
    keys = dotted.split(".")
    node = card
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]
    return card


@pytest.mark.parametrize("field", ["sha256", "format", "created", "feature_names", "feature_params",
                                   "versions.sklearn", "versions", "training_window.start", "training_window.end",
                                   "training_window", "metrics.overall", "metrics"])
def test_a_card_missing_a_required_field_is_refused_before_anything_is_unpickled(tripwire, field):
    path, marker, calls = tripwire
    write_card(path, _without(good_card(path), field))
    with pytest.raises(ModelError, match="is not loaded") as err:
        load_meta_model(path, PARAMS)
    assert field.split(".")[0] in str(err.value), "the message names what is missing"
    assert "python -m models.train" in str(err.value), "and how to fix it"
    assert calls == [] and not marker.exists(), "nothing was unpickled"


@pytest.mark.parametrize("edit, message", [
    (lambda c: {**c, "sha256": "0" * 64}, "the file changed since training"),
    (lambda c: {**c, "sha256": ""}, "sha256"),
    (lambda c: {**c, "created": "last tuesday"}, "not an ISO date"),
    (lambda c: {**c, "versions": "1.6"}, "versions"),
    (lambda c: {**c, "feature_params": ["rsi_period", 14]}, "features were computed with"),
    (lambda c: [c], "not a model card"),
    (lambda c: {**c, "gate": {"min_expected_r": "0.2"}}, "gate.min_expected_r '0.2' is not a number"),
    (lambda c: {**c, "format": 1}, "format 1 is not 2"),
])
def test_a_card_that_does_not_vouch_for_the_file_is_refused_before_anything_is_unpickled(tripwire, edit, message):
    path, marker, calls = tripwire
    write_card(path, edit(good_card(path)))
    with pytest.raises(ModelError, match=message):
        load_meta_model(path, PARAMS)
    assert calls == [] and not marker.exists()


def test_a_file_changed_after_its_card_was_written_is_not_unpickled(tripwire):
    path, marker, calls = tripwire
    write_card(path, good_card(path))
    path.write_bytes(path.read_bytes() + b"\0")  # appended after training
    with pytest.raises(ModelError, match="the file changed since training"):
        load_meta_model(path, PARAMS)
    assert calls == [] and not marker.exists()


# ---------------------------------------------------------------------------------------------- training gaps
GAP = 35  # not the default horizon (70), so a gap hard-wired anywhere shows


@pytest.fixture(scope="module")
def trained_card(tmp_path_factory):
    from models.train import main

    out = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODEL_HORIZON_BARS", str(GAP))
        mp.setenv("TIME_EXIT_HOURS", "30")  # not the default: the label follows the user's exit policy
        code = main(["--data", "builtin", "--start", "2021-01-04", "--end", "2022-12-30", "--splits", "3",
                     "--out", str(out), "--env-file", str(out / "no.env")])
    assert code == 0
    return json.loads((out / "meta_model.json").read_text())


def test_the_card_records_every_walk_forward_fold_with_the_label_horizon_as_its_gap(trained_card):
    card = trained_card
    assert card["label"]["horizon_bars"] == GAP and card["validation"]["gap_bars"] == GAP
    folds = card["metrics"]["folds"]
    assert len(folds) == 3
    ends = []
    for f in folds:
        (train_start, train_end), (test_start, test_end) = f["train_bars"], f["test_bars"]
        assert train_start == 0 and train_start < train_end < test_start < test_end, "expanding, time-ordered"
        assert test_start - train_end >= GAP, f"fold {f['fold']}: only {test_start - train_end} bars between"
        assert f["gap_bars"] == test_start - train_end
        assert f["train"].split("..")[1] < f["test"].split("..")[0], "the dates agree: train ends before test"
        ends.append(test_end)
    assert ends == sorted(ends)


def test_each_fold_is_judged_with_a_threshold_chosen_on_earlier_folds_only(monkeypatch):
    """A threshold tuned on the candidates it is then reported on would flatter the gate: the threshold of
    fold k may only see the out-of-sample predictions of folds 1..k-1 (and the card's proposal all of them)."""
    from dataclasses import replace
    from datetime import date

    import pandas as pd

    from marketdata.builtin import generate, inverse_map
    from models import train as train_module
    from models.dataset import build_dataset
    from models.exit_sim import ExitPolicy

    s = Settings.defaults()
    m = generate(s.all_symbols(), inverse_map(s.inverse_etfs), "2021-01-04", "2022-12-30", seed=4)
    policy = ExitPolicy.from_settings(s, pd.Timedelta(hours=1))
    ds = build_dataset(m.bars, tuple(s.universe), PARAMS, s.rsi_oversold, policy, date(2021, 1, 4),
                       date(2022, 12, 30))
    seen = []
    real = train_module.choose_threshold
    monkeypatch.setattr(train_module, "choose_threshold", lambda e, r: seen.append(len(r)) or real(e, r))
    result = train_module.train(ds, replace(policy, horizon_bars=GAP), {}, n_splits=4, progress=False)
    judged = [f for f in result["folds"] if "skipped" not in f]
    assert len(judged) >= 3
    earlier = [sum(f["n_test"] for f in judged[:k]) for k in range(1, len(judged))]
    assert seen[:-1] == earlier, "fold k's threshold saw exactly the folds before it"
    assert seen[-1] == sum(f["n_test"] for f in judged) == result["report"]["ensemble"]["n"]
    assert judged[0]["threshold"] == 0.0, "the first fold has no history: the default gate"


def test_the_card_holds_the_proposed_gate_and_out_of_sample_figures_with_intervals(trained_card):
    card = trained_card
    assert card["format"] == 2 and card["kind"] == "ensemble" and card["members"] == ["lgbm", "linear", "forest"]
    assert card["label"]["kind"] == "realised R" and card["label"]["policy"]["time_exit_hours"] == 30
    ref = card["drift_reference"]  # what the live bot's drift check compares with: every feature, ten bins at most
    assert set(ref) == set(card["feature_names"]) and all(len(f["shares"]) <= 10 for f in ref.values())
    assert all(sum(f["shares"]) == pytest.approx(1.0) for f in ref.values())
    gate = card["gate"]
    assert "min_expected_r" in gate and gate["default"] == 0.0
    if gate["min_expected_r"] is not None:
        assert card["oos_expected_r"]["p10"] <= gate["min_expected_r"] <= card["oos_expected_r"]["max"]
    for rep in (card["metrics"]["overall"], *card["metrics"]["members"].values()):
        lo, hi = rep["auc_ci"]
        assert lo <= rep["auc"] <= hi and rep["n"] == card["metrics"]["overall"]["n"] > 0
        assert rep["n_passed"] + (rep["n"] - rep["n_passed"]) == rep["n"]
