"""Feature drift (models/drift.py): the recent candidates' features against the training reference the card
keeps. A shifted feature is flagged, an unshifted one is not, too few rows say nothing, and the installed model
says it once a day."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from models.drift import MIN_ROWS, PSI_DRIFT, PSI_WATCH, drift_report, psi, reference


def frame(n: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"rsi": rng.normal(25, 4, n), "atr_pct": rng.lognormal(-4, 0.3, n) * scale,
                         "spy_ret": rng.normal(0, 0.01, n) + shift})


def test_a_shifted_feature_is_flagged_and_the_others_are_not():
    ref = reference(frame(5_000, seed=1))
    same = drift_report(ref, frame(500, seed=2))
    assert same is not None and not same.drifted and max(same.psi.values()) < PSI_WATCH
    assert "stable" in same.describe()
    moved = drift_report(ref, frame(500, seed=3, shift=0.01))  # SPY's return one standard deviation higher
    assert list(moved.drifted) == ["spy_ret"] and moved.psi["spy_ret"] >= PSI_DRIFT
    assert moved.psi["rsi"] < PSI_WATCH and moved.psi["atr_pct"] < PSI_WATCH
    assert "1 of 3 features drifted" in moved.describe() and "retrain" in moved.describe()
    wider = drift_report(ref, frame(500, seed=4, scale=1.15))  # volatility 15% higher: worth watching
    assert PSI_WATCH <= wider.psi["atr_pct"] < PSI_DRIFT and list(wider.watch) == ["atr_pct"]


def test_too_few_rows_or_no_reference_say_nothing():
    ref = reference(frame(1_000, seed=1))
    assert drift_report(ref, frame(MIN_ROWS - 1, seed=2, shift=1.0)) is None
    assert drift_report(ref, frame(MIN_ROWS, seed=2, shift=1.0)) is not None
    assert drift_report({}, frame(500, seed=2)) is None


def test_psi_is_zero_for_the_training_shares_and_finite_with_empty_bins():
    values = np.arange(1_000, dtype=float)
    ref = reference(pd.DataFrame({"x": values}))["x"]
    assert len(ref["edges"]) == 9 and ref["shares"] == pytest.approx([0.1] * 10)
    assert psi(ref, values) == pytest.approx(0.0, abs=1e-12)
    far = psi(ref, np.full(200, 5_000.0))  # everything in the top bin
    assert np.isfinite(far) and far > 1.0
    assert np.isnan(psi(ref, np.array([np.nan, np.inf])))
    constant = reference(pd.DataFrame({"c": np.ones(100)}))["c"]  # one distinct value: one edge, two bins
    assert psi(constant, np.ones(50)) == pytest.approx(0.0, abs=1e-12)


def test_the_installed_model_says_once_a_day_when_its_inputs_drift(tmp_path, caplog):
    from models.features import FEATURE_NAMES
    from models.meta_model import load_meta_model
    from tests.test_meta_model import PARAMS, constant_model

    rng = np.random.default_rng(5)
    train_x = pd.DataFrame(rng.normal(0, 1, (2_000, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    path = constant_model(tmp_path, (0.5, 0.5, 0.5), drift_reference=reference(train_x))
    model = load_meta_model(path, PARAMS)
    now = datetime(2024, 3, 4, 15, tzinfo=UTC)
    shifted = pd.DataFrame(rng.normal(0, 1, (300, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    shifted[FEATURE_NAMES[0]] += 1.0
    model.assess(shifted)
    with caplog.at_level("INFO", logger="trader.model"):
        model.gate(now)
        model.gate(now + timedelta(hours=1))
        model.gate(now + timedelta(days=1))
    drifted = [r for r in caplog.records if "drifted" in r.getMessage()]
    assert len(drifted) == 2 and all(r.levelname == "WARNING" for r in drifted), "once a day, as a warning"
    assert f"{FEATURE_NAMES[0]} " in drifted[0].getMessage()
    assert model.watch.drift().drifted.keys() == {FEATURE_NAMES[0]}
    status = model.watch.status()["drift"]  # what the status record shows: the day's reading
    assert status["drifted"].keys() == {FEATURE_NAMES[0]} and status["candidates"] == 300


def test_the_recent_candidates_survive_a_restart_through_the_journal(tmp_path):
    """The drift window is kept in the journal after each close: a bot restarted the next morning reads the same
    drift at once instead of waiting for another few hundred candidates; a model with other features takes
    nothing back, and what the new process records since the restart is never pushed out by the old rows."""
    from models.features import FEATURE_NAMES
    from models.meta_model import load_meta_model
    from models.model_watch import DRIFT_WINDOW
    from strategies.model_life import WATCH_STATE, restore_watch
    from tests.test_meta_model import PARAMS, constant_model
    from trading.records.journal import Journal

    rng = np.random.default_rng(6)
    train_x = pd.DataFrame(rng.normal(0, 1, (2_000, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    path = constant_model(tmp_path, (0.5, 0.5, 0.5), drift_reference=reference(train_x))
    shifted = pd.DataFrame(rng.normal(0, 1, (300, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    shifted[FEATURE_NAMES[0]] += 1.0
    before = load_meta_model(path, PARAMS)
    before.assess(shifted)
    journal = Journal(tmp_path / "journal.sqlite")
    journal.set_state(WATCH_STATE, before.watch.window())  # what the bot saves after the close
    journal.close()

    after = load_meta_model(path, PARAMS)  # the restarted bot
    assert after.watch.drift() is None, "nothing recorded yet: too few rows to read drift"
    assert restore_watch(Journal(tmp_path / "journal.sqlite"), after) == 300
    assert after.watch.drift().psi == pytest.approx(before.watch.drift().psi)
    assert after.watch.drift().drifted.keys() == {FEATURE_NAMES[0]}

    other = load_meta_model(path, PARAMS)
    other.watch.features = tuple(reversed(other.watch.features))  # same names, another order: not the same inputs
    assert other.watch.restore(before.watch.window()) == 0
    busy = load_meta_model(path, PARAMS)
    busy.assess(pd.DataFrame(rng.normal(0, 1, (DRIFT_WINDOW - 100, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES)))
    assert busy.watch.restore(before.watch.window()) == 100, "only room left: what it saw since restart stays"
    assert busy.watch.window()["rows"][:100] == before.watch.window()["rows"][-100:], "the old rows come first"
