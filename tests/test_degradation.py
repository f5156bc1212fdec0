"""Degradation (models/degradation.py): live trades against the card's out-of-sample record. A planted run of
losers of the right size trips it; trades drawn like the record's rarely do; too few trades say nothing."""

import numpy as np
import pytest

from models.degradation import WINDOW, Z_BAND, expectation, judge

RECORD = {"mean": 0.2, "sd": 1.2, "n": 2_000}


def test_a_run_of_losers_of_the_right_size_trips_it():
    # 30 trades at -0.3R: 0.5R below the record, more than two standard errors (2 x 1.2 / sqrt(30) = 0.44)
    v = judge(RECORD, [-0.3] * 30, min_trades=20)
    assert v.degraded and v.n == 30 and v.floor == pytest.approx(0.2 - Z_BAND * 1.2 / np.sqrt(30))
    assert "decayed" in v.describe() and "-0.30R" in v.describe()
    # the same shortfall over 10 trades is within two standard errors (0.76): not yet
    assert not judge(RECORD, [-0.3] * 10, min_trades=5).degraded
    # a few big losses inside an otherwise normal record do not trip it
    rng = np.random.default_rng(1)
    normal = list(rng.normal(0.2, 1.2, 40))
    assert not judge(RECORD, normal[:37] + [-1.0, -1.0, -1.0], min_trades=20).degraded


def test_normal_variance_rarely_trips_it():
    rng = np.random.default_rng(7)
    trips = sum(judge(RECORD, list(rng.normal(0.2, 1.2, 40)), min_trades=20).degraded for _ in range(2_000))
    assert trips / 2_000 < 0.04, f"{trips} false alarms in 2,000 normal records (one-sided 2 sigma: ~2.3%)"
    losing = sum(judge(RECORD, list(rng.normal(-0.5, 1.2, 40)), min_trades=20).degraded for _ in range(500))
    assert losing / 500 > 0.9, "an edge gone to -0.5R is caught in 40 trades nineteen times in twenty"


def test_too_few_trades_or_no_record_say_nothing_and_only_the_last_window_counts():
    assert judge(RECORD, [-1.0] * 19, min_trades=20) is None
    assert judge({"mean": None, "sd": None, "n": 1}, [-1.0] * 50, min_trades=20) is None
    old_losses_then_good = [-1.0] * 100 + [0.3] * WINDOW
    assert not judge(RECORD, old_losses_then_good, min_trades=20).degraded, "judged on the last WINDOW trades"
    assert judge(RECORD, [0.3] * WINDOW + [float("nan")], min_trades=20).n == WINDOW


def test_the_record_is_the_passed_candidates_mean_sd_and_count():
    rec = expectation(np.array([1.0, -1.0, 2.0, np.nan]))
    assert rec == {"mean": pytest.approx(2 / 3), "sd": pytest.approx(np.std([1.0, -1.0, 2.0], ddof=1)), "n": 3}
    assert expectation(np.array([0.5])) == {"mean": None, "sd": None, "n": 1}
