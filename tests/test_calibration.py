"""The model's live calibration (models/calibration.py): realised R against the expected R it gave each trade at
entry, by quantile bin and as a slope; the journal's link from each closed trade to its entry decision
(Journal.entry_predictions_since); the watch's daily reading, its status and its line."""

import json
import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from marketdata.builtin import generate, inverse_map
from models.calibration import Z_BAND, calibration, slope_and_se
from models.meta_model import load_meta_model
from models.model_watch import ModelWatch
from tests.test_meta_model import PARAMS, constant_model, entries
from trading.intents import Decision, Step
from trading.records.decision_log import DecisionLog
from trading.records.journal import Journal
from trading.records.status import model_watch_line
from trading.settings import Settings

T0 = datetime(2024, 3, 4, 15, tzinfo=UTC)


def record(n: int, slope: float, seed: int, noise: float = 1.0) -> list[tuple[float, float]]:
    """n trades with expected R spread like a gate's passes, realised = intercept + slope * expected + noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.1, 0.9, n)
    y = 0.05 + slope * x + rng.normal(0, noise, n)
    return list(zip(x.tolist(), y.tolist(), strict=True))


# ---------------------------------------------------------------------------------------------- the reading
def test_a_well_calibrated_record_rises_and_is_not_inverted():
    cal = calibration(record(300, 1.0, seed=1))
    assert cal.n == 300 and cal.scheme == "deciles" and len(cal.bins) == 10
    assert cal.slope == pytest.approx(1.0, abs=0.5) and cal.slope > 0
    assert cal.trend == "rises" and not cal.inverted
    assert [b.expected for b in cal.bins] == sorted(b.expected for b in cal.bins), "bins go up in expected R"
    assert cal.bins[-1].realised > cal.bins[0].realised, "the top decile made more than the bottom one"
    text = cal.describe()
    assert text.startswith("calibration over 300 trades (deciles): realised R rises with expected R (slope +")
    assert "top decile" in text and "bottom" in text


def test_a_record_whose_realised_r_falls_with_expected_r_is_called_inverted():
    cal = calibration(record(120, -1.5, seed=2))
    assert cal.slope < 0 and cal.inverted and cal.trend == "inverted"
    assert cal.slope + Z_BAND * cal.se < 0
    assert "FALLS" in cal.describe() and "inverted" in cal.describe()
    assert cal.bins[-1].realised < cal.bins[0].realised


def test_noise_is_seldom_called_inverted_and_a_calibrated_model_never():
    """With no relation at all, one-sided Z_BAND=2 errors: about one record in forty is called inverted."""
    flat = [calibration(record(60, 0.0, seed=s)).inverted for s in range(400)]
    assert 0 < sum(flat) / len(flat) < 0.06, sum(flat)
    assert not any(calibration(record(60, 1.0, seed=s, noise=0.5)).inverted for s in range(200))


def test_the_slope_is_least_squares_and_its_error_matches_a_bootstrap():
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.1, 0.9, 400)
    # heteroscedastic: the noise largest at the ends of the expected R, where the slope's leverage is (the plain
    # textbook error, which assumes it even, comes out too small there)
    a = np.column_stack([x, 0.7 * x + rng.normal(0, 0.2 + 4 * np.abs(x - 0.4))])
    slope, se = slope_and_se(a[:, 0], a[:, 1])
    assert slope == pytest.approx(np.polyfit(a[:, 0], a[:, 1], 1)[0])
    boot = [np.polyfit(*a[rng.integers(0, len(a), len(a))].T, 1)[0] for _ in range(2000)]
    assert se == pytest.approx(np.std(boot), rel=0.15)


def test_below_min_trades_there_is_no_reading_and_non_finite_pairs_do_not_count():
    pairs = record(49, 1.0, seed=5)
    assert calibration(pairs) is None
    assert calibration(pairs + [(float("nan"), 1.0), (0.3, float("inf"))]) is None
    assert calibration(pairs + [(0.3, 0.1)]).n == 50
    assert calibration(record(20, 1.0, seed=5), min_trades=20).n == 20
    assert calibration([]) is None


@pytest.mark.parametrize("n, bins", [(50, 5), (99, 5), (100, 10), (257, 10)])
def test_quintiles_below_100_trades_deciles_from_100(n, bins):
    cal = calibration(record(n, 1.0, seed=n))
    assert len(cal.bins) == bins and cal.scheme == ("deciles" if bins == 10 else "quintiles")
    sizes = [b.n for b in cal.bins]
    assert sum(sizes) == n and max(sizes) - min(sizes) <= 1, "equal-count (quantile) bins"
    assert all(a.expected_hi <= b.expected_lo for a, b in zip(cal.bins, cal.bins[1:], strict=False))
    a = np.array(record(n, 1.0, seed=n))
    assert sum(b.n * b.realised for b in cal.bins) == pytest.approx(a[:, 1].sum())
    assert f"({cal.scheme})" in cal.describe() and f"top {cal.scheme[:-1]}" in cal.describe()


def test_an_expected_r_that_never_varies_has_no_slope():
    cal = calibration([(0.25, r) for r in np.linspace(-1, 2, 60)])
    assert cal.slope is None and cal.trend == "flat" and not cal.inverted
    assert "no slope to judge" in cal.describe()
    json.dumps(cal.as_dict(), allow_nan=False)


# ---------------------------------------------------------------------------------------------- the journal
def entry(sym: str, expected: float) -> Decision:
    """An entry decision as trading/steps/entries.py makes a meta-model's: its expected R in the data."""
    return Decision(Step.ENTRY, sym, "enter", f"RSI 24.1, expected R {expected:+.2f} >= +0.00, 100% agree, spread "
                                              "0.00R (model:meta_model.joblib): buy 10 @ ~100.0 ($1,000; risk), "
                                              "stop 95.0, target 110.0", data={"expected_r": expected})


def closed(sym: str, entered: datetime, r, kind: str = "entry") -> dict:
    return {"symbol": sym, "kind": kind, "qty": 10, "entry_time": entered, "entry_price": 100.0,
            "exit_time": entered + timedelta(days=1), "exit_price": 100.0, "exit_reason": "stop", "pnl_usd": 10.0,
            "return_pct": 0.0, "r_multiple": r, "mfe_r": 0.0, "mae_r": 0.0, "hedged": False}


def test_each_trade_is_linked_to_its_own_entry_decision(tmp_path):
    path = tmp_path / "journal.sqlite"
    j = Journal(path)
    log = DecisionLog(j)
    h = timedelta(hours=1)
    log.record_iteration(T0, [entry("JPM", 0.30), entry("MSFT", 0.45)], None)
    skipped = Decision(Step.ENTRY, "JPM", "skip", "RSI 20.0, expected R -0.50 < +0.00 (MIN_EXPECTED_R) (model:x)",
                       data={"expected_r": -0.5})  # judged by the model, not entered: no trade of its own
    log.record_iteration(T0 + 2 * h, [skipped], None)
    log.record_iteration(T0 + 3 * h, [Decision(Step.ENTRY, "KO", "enter", "RSI 22.0, confidence 0.71 >= 0.50 "
                                                                          "(rule): buy 5 @ ~60")], None)
    log.record_iteration(T0 + 24 * h, [entry("JPM", 0.80)], None)
    trades = [closed("JPM", T0 + timedelta(minutes=1), -1.0),  # the first JPM entry
              closed("MSFT", T0 - timedelta(seconds=10), 0.5),  # the broker's clock a little behind ours: its own
              closed("JPM", T0 - timedelta(days=1), 2.0),  # before any JPM decision: left out
              closed("AAPL", T0 + h, 1.5),  # no decision at all: left out
              closed("KO", T0 + 3 * h, 0.7),  # entered by the rule-based score: no expected R, left out
              closed("JPM", T0 + 24 * h + timedelta(minutes=1), 1.2),  # the second JPM entry, not the first
              closed("JPM", T0 + 24 * h, 9.0, kind="hedge"),  # hedges are not the model's
              closed("MSFT", T0 + 25 * h, None)]  # no R
    j.record_fill(T0 + 30 * h, "f1", "JPM", "sell", 10, 100.0, "stop", trades)
    assert j.entry_predictions_since(T0 - timedelta(days=2)) == [(0.30, -1.0), (0.45, 0.5), (0.80, 1.2)]
    assert j.entry_predictions_since(T0 + h) == [(0.80, 1.2)], "entered since the model was trained"

    # kept current: a later decision and trade are read without re-reading the rest
    log.record_iteration(T0 + 48 * h, [entry("JPM", -0.05)], None)
    j.record_fill(T0 + 60 * h, "f2", "JPM", "sell", 10, 100.0, "target", [closed("JPM", T0 + 49 * h, 0.4)])
    assert j.entry_predictions_since(T0 + h) == [(0.80, 1.2), (-0.05, 0.4)]
    j.close()
    fresh = Journal(path)  # a restart reads the same from the file
    assert fresh.entry_predictions_since(T0 + h) == [(0.80, 1.2), (-0.05, 0.4)]
    assert fresh.entry_predictions_since(T0 - timedelta(days=2))[:3] == [(0.30, -1.0), (0.45, 0.5), (0.80, 1.2)]
    fresh.close()


def test_the_link_reads_the_entry_decisions_the_strategy_writes(tmp_path):
    """The real entry step's words (a meta-model scoring a built-in market), through the real decision log."""
    s = Settings.defaults()
    market = generate(s.all_symbols(), inverse_map(s.inverse_etfs), "2023-01-03", "2023-06-30", seed=5)
    model = load_meta_model(constant_model(tmp_path, (0.5, 0.25, 0.6)), PARAMS)
    model.estimator.calls = 0
    decided = [d for d in entries(model, market, stride=40) if d.action == "enter"]
    assert decided, "the market has entries"
    j = Journal(tmp_path / "journal.sqlite")
    log = DecisionLog(j)
    first = decided[0]
    log.record_iteration(T0, [first], None)
    j.record_fill(T0 + timedelta(days=2), "f1", first.symbol, "sell", 1, 1.0, "stop",
                  [closed(first.symbol, T0 + timedelta(minutes=1), -0.7)])
    assert j.entry_predictions_since(T0) == [(pytest.approx(0.45, abs=0.005), -0.7)]
    j.close()


# ---------------------------------------------------------------------------------------------- the watch
def test_the_watch_reads_it_daily_says_it_and_shows_it(tmp_path, caplog):
    model = load_meta_model(constant_model(tmp_path, (0.5, 0.5, 0.5), created=T0), PARAMS, max_age_days=1e6)
    model.observe_results([0.1] * 30)  # callers without predictions still work: no calibration
    model.gate(T0)
    assert model.watch.status()["calibration"] is None
    assert "calibration" not in model_watch_line({"model": {"watch": model.watch.status()}})

    good = record(150, 1.0, seed=7)
    model.observe_results([r for _, r in good], good)
    assert model.watch.calibration is None, "read once a day, not every iteration"
    with caplog.at_level(logging.INFO, logger="trader.model"):
        model.gate(T0 + timedelta(days=1))
        model.gate(T0 + timedelta(days=1, hours=2))
        model.gate(T0 + timedelta(days=2))
    said = [r for r in caplog.records if "calibration over" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "INFO", "a calibrated model is said when its reading changes"
    cal = model.watch.status()["calibration"]
    json.dumps(cal, allow_nan=False)  # the status record is JSON
    assert cal["n"] == 150 and len(cal["bins"]) == 10 and cal["slope"] > 0 and not cal["inverted"]
    assert set(cal["bins"][0]) >= {"n", "expected_r", "realised_r"}
    line = model_watch_line({"model": {"watch": model.watch.status()}})
    assert line.endswith(cal["describe"]) and "calibration over 150 trades (deciles)" in line

    bad = record(150, -1.5, seed=8)
    model.observe_results([r for _, r in bad], bad)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="trader.model"):
        model.gate(T0 + timedelta(days=3))
        model.gate(T0 + timedelta(days=3, hours=1))
        model.gate(T0 + timedelta(days=4))
    said = [r for r in caplog.records if "calibration over" in r.getMessage()]
    assert [r.levelname for r in said] == ["WARNING", "WARNING"], "inverted: a warning once a day"
    assert "inverted" in said[0].getMessage()
    assert model.watch.status()["calibration"]["inverted"]
    assert model.gate(T0 + timedelta(days=5)) is None, "a reading, not a gate"


def test_a_watch_without_enough_trades_has_no_calibration():
    watch = ModelWatch({}, ("a",))
    few = record(49, 1.0, seed=9)
    watch.observe([r for _, r in few], few)
    watch.daily(T0.date())
    assert watch.calibration is None and watch.status()["calibration"] is None


def test_an_inverted_calibration_is_an_alert_and_a_rising_one_is_not():
    from types import SimpleNamespace

    from ops.alert_events import model_watch_events

    def scorer(pairs):
        watch = SimpleNamespace(drift=lambda: None, verdict=None, calibration=calibration(pairs), action="warn")
        return SimpleNamespace(watch=watch, name="model:meta_model.joblib")

    (ev,) = model_watch_events(scorer(record(200, -2.0, seed=1, noise=0.5)))
    assert ev.event == "model_decayed" and "inverted" in ev.text and ev.key == "model_decayed:calibration"
    assert model_watch_events(scorer(record(200, 2.0, seed=1, noise=0.5))) == []
