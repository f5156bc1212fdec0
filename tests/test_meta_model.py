"""The meta-model: leakage, labels, walk-forward, the card-checked round trip, and the gate."""

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from marketdata.builtin import generate, inverse_map
from models import meta_model
from models.features import FEATURE_HISTORY_BARS, FEATURE_NAMES, FeatureParams
from models.labels import LabelSpec, bracket_outcomes
from models.meta_model import ModelError, load_meta_model
from models.train import build_dataset, train, write_model
from models.validation import walk_forward
from trading.confidence import RuleConfidence
from trading.indicators import IndicatorBook, completed_bars, market_frames
from trading.orders import OrderIds
from trading.settings import Settings
from trading.snapshot import Snapshot
from trading.steps.entries import plan_entries
from trading.steps.planner import plan_iteration

S = Settings.defaults()
PARAMS = FeatureParams.from_settings(S)
HOUR = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def market():
    return generate(S.all_symbols(), inverse_map(S.inverse_etfs), "2023-01-03", "2023-12-29", seed=5)


# ---------------------------------------------------------------------------------------------- leakage
def test_no_feature_and_no_decision_at_t_depends_on_later_bars(market):
    t = market.bars["SPY"].index[1200]
    full = IndicatorBook(market_frames(market.bars, 14, PARAMS), HOUR).as_of(t)
    changed = {s: df.copy() for s, df in market.bars.items()}
    for df in changed.values():
        later = df.index > t - HOUR  # every bar that had not ended by t, including the one starting at t
        df.loc[later, ["open", "high", "low", "close"]] *= 0.5
        df.loc[later, "volume"] *= 10
    deleted = {s: df[df.index <= t - HOUR] for s, df in market.bars.items()}
    for other in (changed, deleted):
        pd.testing.assert_frame_equal(full, IndicatorBook(market_frames(other, 14, PARAMS), HOUR).as_of(t))
    assert set(FEATURE_NAMES) <= set(full.columns)
    assert full.loc[list(S.universe), list(FEATURE_NAMES)].notna().all().all()

    def decisions(rows):
        snap = Snapshot(now=t, cash=50_000, portfolio_value=100_000, holdings={}, open_orders=(), market=rows)
        return [(d.symbol, d.action, d.reason) for d in plan_iteration(snap, S, RuleConfidence(30)).decisions]

    later = IndicatorBook(market_frames(changed, 14, PARAMS), HOUR).as_of(t)
    assert decisions(full) == decisions(later)


def test_live_window_features_equal_the_precomputed_series(market):
    book = IndicatorBook(market_frames(market.bars, 14, PARAMS), HOUR)
    index = market.bars["SPY"].index
    for i in (FEATURE_HISTORY_BARS + 5, len(index) - 3):
        now = index[i]
        window = {s: completed_bars(df, now, HOUR).iloc[-FEATURE_HISTORY_BARS:] for s, df in market.bars.items()}
        live = IndicatorBook(market_frames(window, 14, PARAMS), HOUR).as_of(now)
        full = book.as_of(now)
        cols = list(FEATURE_NAMES)
        np.testing.assert_allclose(live.loc[list(S.universe), cols].to_numpy(float),
                                   full.loc[list(S.universe), cols].to_numpy(float), rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------------------------- labels
def bars(rows):
    idx = pd.date_range("2024-03-04 09:30", periods=len(rows), freq="h", tz="America/New_York")
    return pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx)


SPEC = LabelSpec(horizon_bars=3, stop_pct=0.05, target_pct=0.15)


@pytest.mark.parametrize("path, label, r", [
    ([(100, 100, 100, 100), (100, 101, 99, 100), (100, 116, 99, 115), (115, 115, 90, 90)], 1, 3.0),  # target first
    ([(100, 100, 100, 100), (100, 101, 94, 95), (95, 120, 95, 118), (118, 118, 118, 118)], 0, -1.0),  # stop first
    ([(100, 100, 100, 100), (100, 102, 98, 101), (101, 103, 99, 102), (102, 104, 101, 103)], 0, 0.6),  # neither
    ([(100, 100, 100, 100), (100, 116, 94, 100), (100, 100, 100, 100), (100, 100, 100, 100)], 0, -1.0),  # both
    ([(100, 100, 100, 100), (100, 101, 99, 100), (90, 91, 89, 90), (90, 90, 90, 90)], 0, -2.0),  # gap through stop
])
def test_labels_on_hand_made_paths(path, label, r):
    y, rr = bracket_outcomes(bars(path), np.array([0]), SPEC)
    assert y[0] == label and rr[0] == pytest.approx(r)


def test_candidates_without_a_full_horizon_get_no_label():
    y, _ = bracket_outcomes(bars([(100, 100, 100, 100)] * 3), np.array([0]), SPEC)
    assert np.isnan(y[0])


# ---------------------------------------------------------------------------------------------- walk-forward
@pytest.mark.parametrize("n, splits, gap", [(1000, 5, 70), (300, 3, 10), (5000, 8, 140)])
def test_walk_forward_tests_come_after_train_plus_gap(n, splits, gap):
    folds = walk_forward(n, splits, gap)
    assert len(folds) == splits
    for f in folds:
        assert f.train_bars[0] == 0, "expanding window"
        assert f.test_bars[0] >= f.train_bars[1] - 1 + gap + 1, "every test bar is after every train bar + gap"
        assert f.test_bars[0] < f.test_bars[1] <= n
    starts = [f.test_bars[0] for f in folds]
    assert starts == sorted(starts), "folds move forward in time"


def test_walk_forward_refuses_windows_too_short_for_the_gap():
    with pytest.raises(ValueError, match="too few for 5 folds with a gap of 70 bars"):
        walk_forward(420, 5, 70)  # 70-bar test folds x 5 + a 70-bar gap leave nothing to train on
    assert len(walk_forward(500, 5, 70)) == 5


def test_training_on_a_window_too_short_says_what_to_change(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    r = subprocess.run([sys.executable, "-m", "models.train", "--data", "builtin", "--start", "2023-06-01",
                        "--end", "2023-08-01", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-1500:]
    assert "use a longer window" in r.stderr and not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------- round trip
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    m = generate(S.all_symbols(), inverse_map(S.inverse_etfs), "2021-01-04", "2023-06-30", seed=3)
    spec = LabelSpec(70, S.stop_loss_pct, S.take_profit_pct)
    universe = tuple(s for s in S.universe if s in m.bars)
    ds = build_dataset(m.bars, universe, PARAMS, S.rsi_oversold, spec, date(2021, 1, 4), date(2023, 6, 30))
    model, rows, overall, _, _ = train(ds, spec, 0.6, n_splits=3, progress=False)
    out = tmp_path_factory.mktemp("model")
    card = card_for(model_kind="trained", overall=overall, rows=rows)
    path = write_model(out, model, card)
    return path, ds, m


def card_for(**extra) -> dict:
    import sklearn

    return {"format": 1, "created": datetime.now(UTC).isoformat(), "feature_names": list(FEATURE_NAMES),
            "feature_params": PARAMS.as_dict(), "versions": {"sklearn": sklearn.__version__},
            "training_window": {"start": "2021-01-04", "end": "2023-06-30"},
            "data": {"source": "test"}, "metrics": {"overall": extra.pop("overall", {"auc": None})},
            "label": {"horizon_bars": 70}, **extra}


def test_train_save_load_score_round_trip(trained):
    path, ds, _ = trained
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["sha256"] == meta_model.sha256_file(path)
    model = load_meta_model(path, PARAMS)
    p = model.score(ds.X.iloc[:50])
    assert p.shape == (50,) and np.all((p >= 0) & (p <= 1))
    with_nan = ds.X.iloc[:3].copy()
    with_nan.iloc[1, 0] = np.nan
    assert np.isnan(model.score(with_nan)[1]), "incomplete features never pass the gate"


def test_a_threshold_above_every_validation_probability_is_called_out(trained):
    path, *_ = trained
    card = {"oos_probability": {"p50": 0.04, "p90": 0.1, "p99": 0.21, "max": 0.29}, "suggested_threshold": None,
            "breakeven_probability": 0.25}
    model = meta_model.MetaModel(path, card, None, 30, False)
    text = meta_model.threshold_warning(model, 0.6)
    assert "CONFIDENCE_THRESHOLD=0.6 is above every out-of-sample probability" in text
    assert "highest 0.29" in text and "no new entries" in text and "found no threshold with an edge" in text
    assert meta_model.threshold_warning(model, 0.25) is None
    assert meta_model.threshold_warning(RuleConfidence(30), 0.99) is None


def test_tampered_file_is_refused(trained, tmp_path):
    path, *_ = trained
    copy = tmp_path / "meta_model.joblib"
    copy.write_bytes(path.read_bytes() + b"\0")
    (tmp_path / "meta_model.json").write_text(path.with_suffix(".json").read_text())
    with pytest.raises(ModelError, match="the file changed since training"):
        load_meta_model(copy, PARAMS)


def test_changed_feature_list_and_settings_are_refused(trained, monkeypatch):
    path, *_ = trained
    monkeypatch.setattr(meta_model, "FEATURE_NAMES", (*FEATURE_NAMES, "new_feature"))
    with pytest.raises(ModelError, match="feature list does not match the running code"):
        load_meta_model(path, PARAMS)
    monkeypatch.undo()
    other = FeatureParams(10, PARAMS.rsi_overbought, PARAMS.bellwethers)
    with pytest.raises(ModelError, match=r"rsi_period=14.*the settings say 10"):
        load_meta_model(path, other)


def test_other_sklearn_major_and_missing_card_are_refused(trained, tmp_path):
    path, *_ = trained
    copy = tmp_path / "meta_model.joblib"
    copy.write_bytes(path.read_bytes())
    card = json.loads(path.with_suffix(".json").read_text())
    card["versions"]["sklearn"] = "0.24.2"
    (tmp_path / "meta_model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="major versions differ"):
        load_meta_model(copy, PARAMS)
    (tmp_path / "meta_model.json").unlink()
    with pytest.raises(ModelError, match="has no model card"):
        load_meta_model(copy, PARAMS)
    assert load_meta_model(tmp_path / "absent.joblib", PARAMS) is None


# ---------------------------------------------------------------------------------------------- the gate
def constant_model(tmp_path, p_win: float, created: datetime | None = None):
    X = pd.DataFrame(np.zeros((10, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    y = np.array([1] * round(10 * p_win) + [0] * (10 - round(10 * p_win)))
    card = card_for()
    if created:
        card["created"] = created.isoformat()
    return write_model(tmp_path, DummyClassifier(strategy="prior").fit(X, y), card)


class CountingEstimator:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def predict_proba(self, X):
        self.calls += 1
        return self.inner.predict_proba(X)


@pytest.mark.parametrize("p_win, enters", [(0.9, True), (0.1, False)])
def test_gate_with_a_constant_model(tmp_path, market, p_win, enters):
    model = load_meta_model(constant_model(tmp_path, p_win), PARAMS)
    model.estimator = CountingEstimator(model.estimator)
    book = IndicatorBook(market_frames(market.bars, 14, PARAMS), HOUR)
    entered = 0
    for t in market.bars["SPY"].index[300:1500:10]:
        rows = book.as_of(t)
        snap = Snapshot(now=t, cash=100_000, portfolio_value=100_000, holdings={}, open_orders=(), market=rows)
        calls_before = model.estimator.calls
        out = plan_entries(snap, S, model, 99_000, set(), OrderIds("t", t))
        candidates = [d for d in out if d.action in ("enter", "skip")]
        assert model.estimator.calls - calls_before == (1 if candidates else 0), "one batched call per iteration"
        entered += sum(d.action == "enter" for d in out)
        assert all("model:meta_model.joblib" in d.reason for d in candidates)
    assert (entered > 0) is enters


def test_stale_model_warns_daily_and_blocks_when_configured(tmp_path, caplog):
    created = datetime(2024, 1, 1, tzinfo=UTC)
    path = constant_model(tmp_path, 0.9, created=created)
    now = created + timedelta(days=45)
    warn_only = load_meta_model(path, PARAMS, max_age_days=30, block_when_stale=False)
    with caplog.at_level("WARNING", logger="trader.model"):
        assert warn_only.gate(now) is None
        assert warn_only.gate(now + timedelta(hours=1)) is None
        assert warn_only.gate(now + timedelta(days=1)) is None
    assert caplog.text.count("days old") == 2, "one warning per day"
    blocking = load_meta_model(path, PARAMS, max_age_days=30, block_when_stale=True)
    assert "45 days old" in blocking.gate(now)
    assert blocking.gate(created + timedelta(days=10)) is None
