"""The meta-model: leakage, labels, walk-forward, the card-checked round trip, and the gate."""

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from marketdata.builtin import generate, inverse_map
from models import meta_model
from models.dataset import build_dataset
from models.ensemble import MEMBERS, assess_predictions
from models.exit_sim import ExitPolicy
from models.features import FEATURE_HISTORY_BARS, FEATURE_NAMES, FeatureParams
from models.meta_model import ModelError, load_meta_model
from models.model_files import write_model
from models.model_warnings import threshold_warning
from models.train import train
from models.validation import walk_forward
from trading.confidence import RuleConfidence
from trading.indicators import IndicatorBook, completed_bars, market_frames
from trading.order_ids import OrderIds
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
    policy = ExitPolicy.from_settings(S, HOUR)
    universe = tuple(s for s in S.universe if s in m.bars)
    ds = build_dataset(m.bars, universe, PARAMS, S.rsi_oversold, policy, date(2021, 1, 4), date(2023, 6, 30))
    result = train(ds, policy, {"ensemble_agreement": 0.5}, n_splits=3, progress=False)
    out = tmp_path_factory.mktemp("model")
    card = card_for(overall=result["report"]["ensemble"], folds=result["folds"])
    path = write_model(out / "meta_model.joblib", result["model"], card)
    return path, ds, m


def card_for(**extra) -> dict:
    import sklearn

    return {"format": 2, "kind": "ensemble", "created": datetime.now(UTC).isoformat(),
            "feature_names": list(FEATURE_NAMES), "feature_params": PARAMS.as_dict(),
            "versions": {"sklearn": sklearn.__version__},
            "training_window": {"start": "2021-01-04", "end": "2023-06-30"},
            "data": {"source": "test"}, "metrics": {"overall": extra.pop("overall", {"auc": None})},
            "label": {"horizon_bars": 70}, "gate": {"min_expected_r": extra.pop("min_expected_r", None)}, **extra}


def test_train_save_load_score_round_trip(trained):
    path, ds, _ = trained
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["sha256"] == meta_model.sha256_file(meta_model.model_file(path, card))
    model = load_meta_model(path, PARAMS)
    table = model.assess(ds.X.iloc[:50])
    assert list(table.columns) == ["expected_r", "agreement", "uncertainty", "stop_pct"] and len(table) == 50
    assert np.isfinite(table.to_numpy()).all() and table["agreement"].isin([0, 1 / 3, 2 / 3, 1]).all()
    assert (table["stop_pct"] > 0).all() and table["stop_pct"].nunique() > 1, "the stop model, per candidate"
    members = model.estimator.predict_members(ds.X.iloc[:50])
    assert members.shape == (50, len(MEMBERS)) and len({tuple(c) for c in members.T}) == len(MEMBERS)
    np.testing.assert_allclose(table["expected_r"], members.mean(axis=1))
    np.testing.assert_allclose(table["uncertainty"], members.std(axis=1))
    np.testing.assert_allclose(model.score(ds.X.iloc[:50]), members.mean(axis=1))
    with_nan = ds.X.iloc[:3].copy()
    with_nan.iloc[1, 0] = np.nan
    assert model.assess(with_nan).iloc[1].isna().all(), "incomplete features never pass the gate"


def test_the_gate_threshold_is_min_expected_r_else_the_cards_else_zero(trained):
    path, *_ = trained
    card = card_for(min_expected_r=0.25, oos_expected_r={"max": 0.6})
    assert meta_model.MetaModel(path, card, None, 30, False).min_expected_r == 0.25
    assert meta_model.MetaModel(path, card, None, 30, False, override=-0.1).min_expected_r == -0.1
    assert meta_model.MetaModel(path, card_for(), None, 30, False).min_expected_r == 0.0
    assert "from the card" in meta_model.MetaModel(path, card, None, 30, False).describe()


def test_a_threshold_above_every_validation_prediction_or_no_edge_is_called_out(trained):
    path, *_ = trained
    card = card_for(min_expected_r=0.2, oos_expected_r={"p50": -0.1, "p90": 0.05, "max": 0.29})
    assert threshold_warning(meta_model.MetaModel(path, card, None, 30, False)) is None
    text = threshold_warning(meta_model.MetaModel(path, card, None, 30, False, override=0.5))
    assert "above every out-of-sample expected R" in text and "highest +0.290" in text and "no new entries" in text
    no_edge = threshold_warning(meta_model.MetaModel(path, card_for(oos_expected_r={"max": 1}), None,
                                                                30, False))
    assert "no usable edge" in no_edge and "expected R >= 0" in no_edge
    assert threshold_warning(RuleConfidence(30)) is None


def test_tampered_file_is_refused(trained, tmp_path):
    path, *_ = trained
    copy = tmp_path / "meta_model.joblib"
    card = json.loads(path.with_suffix(".json").read_text())
    copy.write_bytes(meta_model.model_file(path, card).read_bytes() + b"\0")
    (tmp_path / "meta_model.json").write_text(json.dumps({**card, "model_file": "meta_model.joblib"}))
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
    card = json.loads(path.with_suffix(".json").read_text())
    copy.write_bytes(meta_model.model_file(path, card).read_bytes())
    card["versions"]["sklearn"] = "0.24.2"
    (tmp_path / "meta_model.json").write_text(json.dumps({**card, "model_file": "meta_model.joblib"}))
    with pytest.raises(ModelError, match="major versions differ"):
        load_meta_model(copy, PARAMS)
    (tmp_path / "meta_model.json").unlink()
    with pytest.raises(ModelError, match="has no model card"):
        load_meta_model(copy, PARAMS)
    assert load_meta_model(tmp_path / "absent.joblib", PARAMS) is None


# ---------------------------------------------------------------------------------------------- the gate
class ConstantEnsemble:
    """Members that predict fixed R values for every candidate; counts its calls."""

    def __init__(self, members):
        self.members, self.calls = list(members), 0

    def predict_members(self, X):
        return np.tile(self.members, (len(X), 1))

    def assess(self, X, threshold):
        self.calls += 1
        return assess_predictions(self.predict_members(X), threshold)


class ConstantStops:
    def __init__(self, stop_pct):
        self.stop_pct = stop_pct

    def predict(self, X):
        return np.full(len(X), self.stop_pct)


def constant_model(tmp_path, members, created: datetime | None = None, stop_pct: float | None = None, **card):
    card = card_for(**card)
    if created:
        card["created"] = created.isoformat()
    estimator = ConstantEnsemble(members)
    if stop_pct is not None:
        estimator.stop_model_ = ConstantStops(stop_pct)
    return write_model(tmp_path / "meta_model.joblib", estimator, card)


def entries(model, market, settings=S, stride=10):
    book = IndicatorBook(market_frames(market.bars, 14, PARAMS), HOUR)
    out = []
    for t in market.bars["SPY"].index[300:1500:stride]:
        rows = book.as_of(t)
        snap = Snapshot(now=t, cash=100_000, portfolio_value=100_000, holdings={}, open_orders=(), market=rows)
        calls_before = model.estimator.calls
        found = plan_entries(snap, settings, model, 99_000, set(), OrderIds("t", t))
        judged = [d for d in found if d.action in ("enter", "skip")]
        assert model.estimator.calls - calls_before == (1 if judged else 0), "one batched call per iteration"
        assert all("model:meta_model.joblib" in d.reason for d in judged)
        out += found
    return out


@pytest.mark.parametrize("members, env, gate", [
    ((0.5, 0.4, 0.6), {}, None),  # every member expects a gain: enter
    ((-0.5, -0.4, -0.6), {}, "expected_r"),  # expects a loss: below the default threshold of 0
    ((0.5, 0.4, 0.6), {"MIN_EXPECTED_R": "0.55"}, "expected_r"),  # the user's threshold wins over the card's
    ((0.9, 0.9, -2.1), {}, "expected_r"),  # two of three expect a gain, but the mean (-0.10) does not
    ((0.9, 0.6, -1.0), {}, None),  # mean +0.17, two of three agree: a majority is enough by default
    ((0.9, 0.6, -1.0), {"ENSEMBLE_AGREEMENT": "1"}, "agreement"),
    ((0.5, 0.4, 0.6), {"ENSEMBLE_AGREEMENT": "1"}, None),  # all agree: 100% is enough for a limit of 100%
    ((0.9, 0.6, -1.0), {"MAX_UNCERTAINTY": "0.5"}, "uncertainty"),  # spread 0.82R
])
def test_the_model_gate_on_expected_r_agreement_and_uncertainty(tmp_path, market, members, env, gate):
    model = load_meta_model(constant_model(tmp_path, members), PARAMS,
                            min_expected_r=float(env["MIN_EXPECTED_R"]) if "MIN_EXPECTED_R" in env else None)
    model.estimator.calls = 0
    settings = Settings.load(dotenv_path=tmp_path / "none.env", environ={k: v for k, v in env.items()
                                                                        if k != "MIN_EXPECTED_R"})
    found = [d for d in entries(model, market, settings) if d.action in ("enter", "skip")]
    gates = {d.data.get("gate") for d in found if d.action == "skip"} - {"cash"}
    assert found, "the market has candidates"
    if gate is None:
        assert any(d.action == "enter" for d in found) and gates <= {None}
        enter = next(d for d in found if d.action == "enter")
        assert enter.data["expected_r"] == pytest.approx(np.mean(members)) and "agree" in enter.reason
    else:
        assert not any(d.action == "enter" for d in found) and gates == {gate}


def test_the_cards_threshold_gates_and_full_agreement_sizes_up(tmp_path, market):
    strict = load_meta_model(constant_model(tmp_path, (0.3, 0.3, 0.3), min_expected_r=0.35), PARAMS)
    strict.estimator.calls = 0
    assert not any(d.action == "enter" for d in entries(strict, market))
    (tmp_path / "b").mkdir()
    sizes, small = {}, Settings.load(dotenv_path=tmp_path / "none.env", environ={"RISK_PER_TRADE_PCT": "0.002"})
    for members in ((0.3, 0.3, 0.3), (0.5, 0.5, -0.1)):
        model = load_meta_model(constant_model(tmp_path / "b", members, min_expected_r=0.0), PARAMS)
        model.estimator.calls = 0
        enter = next(d for d in entries(model, market, small, stride=40) if d.action == "enter")
        sizes[members] = enter.data["qty"] * (enter.data["price"] - enter.data["stop"])
    assert sizes[(0.3, 0.3, 0.3)] == pytest.approx(1.5 * sizes[(0.5, 0.5, -0.1)], rel=0.05)


def test_stale_model_warns_daily_and_blocks_when_configured(tmp_path, caplog):
    created = datetime(2024, 1, 1, tzinfo=UTC)
    path = constant_model(tmp_path, (0.5, 0.5, 0.5), created=created)
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


@pytest.mark.parametrize("predicted, stop_pct", [(0.03, 0.03), (0.5, 0.12), (0.001, 0.02)])
def test_model_stops_set_each_bracket_within_the_bounds(tmp_path, market, predicted, stop_pct):
    settings = Settings.load(dotenv_path=tmp_path / "none.env", environ={"STOP_MODE": "model"})
    model = load_meta_model(constant_model(tmp_path, (0.5, 0.5, 0.5), stop_pct=predicted), PARAMS)
    model.estimator.calls = 0
    enters = [d for d in entries(model, market, settings, stride=40) if d.action == "enter"]
    assert enters
    for d in enters:
        order = d.intent.orders[0]
        ref = float(order.reference_price)
        assert float(order.stop_loss) == pytest.approx(ref * (1 - stop_pct), rel=2e-4)
        assert float(order.take_profit) == pytest.approx(ref * (1 + 3 * stop_pct), rel=2e-4), "3:1 as fixed"


def test_stop_mode_model_without_a_stop_model_refuses_to_start(tmp_path):
    from models.meta_model import load_confidence

    base = {"STOP_MODE": "model", "MODEL_PATH": str(tmp_path / "meta_model.joblib")}
    with pytest.raises(ModelError, match=r"STOP_MODE=model.*no model at.*python -m models.train.*STOP_MODE=fixed"):
        load_confidence(Settings.load(dotenv_path=tmp_path / "none.env", environ=base))
    constant_model(tmp_path, (0.5, 0.5, 0.5))
    with pytest.raises(ModelError, match="has none"):
        load_confidence(Settings.load(dotenv_path=tmp_path / "none.env", environ=base))
    constant_model(tmp_path, (0.5, 0.5, 0.5), stop_pct=0.04)
    assert load_confidence(Settings.load(dotenv_path=tmp_path / "none.env", environ=base)).name.startswith("model:")


def test_training_compares_the_stops_and_can_label_with_its_own_stop_model(trained):
    from dataclasses import replace

    _, ds, _ = trained
    policy = ExitPolicy.from_settings(S, HOUR)
    fixed = train(ds, policy, {}, n_splits=3, progress=False)
    stops = fixed["stops"]
    assert stops["candidates"] == fixed["report"]["ensemble"]["n"]
    assert stops["fixed"]["avg_stop"] == pytest.approx(S.stop_loss_pct)
    assert 0.02 <= stops["model"]["avg_stop"] <= 0.12 and stops["model"]["avg_stop"] != stops["fixed"]["avg_stop"]
    assert fixed["model"].stop_model_ is not None
    modelled = train(ds, replace(policy, stop_mode="model"), {}, n_splits=3, progress=False)
    assert modelled["report"]["ensemble"]["avg_r_all"] == pytest.approx(stops["model"]["avg_r"])
    assert modelled["report"]["ensemble"]["avg_r_all"] != pytest.approx(fixed["report"]["ensemble"]["avg_r_all"])


def test_a_model_answer_with_a_missing_agreement_or_spread_never_passes(market):
    class Partial:
        name, min_expected_r = "model:meta_model.joblib", 0.0

        def __init__(self, agreement, spread):
            self.agreement, self.spread, self.calls, self.estimator = agreement, spread, 0, self

        def gate(self, now):
            return None

        def assess(self, rows):
            self.calls += 1
            return pd.DataFrame({"expected_r": 0.5, "agreement": self.agreement, "uncertainty": self.spread},
                                index=rows.index)

    capped = S.with_changes({"MAX_UNCERTAINTY": "1"})
    for agreement, spread, gate in ((np.nan, 0.1, "agreement"), (1.0, np.nan, "uncertainty"), (1.0, 0.1, None)):
        found = [d for d in entries(Partial(agreement, spread), market, capped, stride=40)
                 if d.action in ("enter", "skip")]
        assert found and {d.data.get("gate") for d in found} - {"cash"} == {gate}


@pytest.mark.parametrize("er, ag, un, agree, spread, gate", [
    (0.2, 1.0, 0.0, 0.5, 0.0, ""),  # exactly at MIN_EXPECTED_R (0.2): passes
    (0.1999, 1.0, 0.0, 0.5, 0.0, "expected_r"),
    (0.3, 0.5, 0.0, 0.5, 0.0, ""),  # exactly the agreement asked for
    (0.3, 1 / 3, 0.0, 0.5, 0.0, "agreement"),
    (0.3, 1.0, 0.4, 0.5, 0.4, ""),  # exactly the spread allowed
    (0.3, 1.0, 0.41, 0.5, 0.4, "uncertainty"),
    (0.3, 1.0, 9.0, 0.5, 0.0, ""),  # MAX_UNCERTAINTY 0: off
    (np.nan, 1.0, 0.0, 0.5, 0.0, "expected_r"),
    (0.1, 0.0, 9.0, 0.5, 0.4, "expected_r"),  # the first gate failed is the one named
])
def test_the_ensemble_gate_rule_at_its_boundaries(er, ag, un, agree, spread, gate):
    from models.ensemble import failed_gates

    assert failed_gates([er], [ag], [un], 0.2, agree, spread).tolist() == [gate]
