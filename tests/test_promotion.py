"""The pieces of scheduled retraining that need no training: when it is due, the duel's arithmetic and the rule
that promotes (fast: these are the tests that must kill mutants of models/promotion.py and models/schedule.py;
tests/test_retrain.py trains real models)."""

from dataclasses import make_dataclass
from datetime import datetime

import numpy as np
import pytest

from models.retrain import _placebo
from models.schedule import is_due, next_run, session_state
from trading.settings import Every


@pytest.mark.parametrize("every, last, at, due", [
    (Every("days", 1), "2023-07-03T21:00:00+00:00", "2023-07-05T21:00:00+00:00", True),  # the 5th's close
    (Every("days", 1), "2023-07-05T20:30:00+00:00", "2023-07-05T21:00:00+00:00", False),  # same close
    (Every("days", 5), "2023-06-30T21:00:00+00:00", "2023-07-05T21:00:00+00:00", False),  # 2 sessions (4th shut)
    (Every("days", 5), "2023-06-30T21:00:00+00:00", "2023-07-10T21:00:00+00:00", True),  # 5 sessions
    (Every("bars", 14), "2023-07-03T21:00:00+00:00", "2023-07-05T21:00:00+00:00", False),  # 7 bars + half day
    (Every("bars", 14), "2023-07-03T21:00:00+00:00", "2023-07-06T21:00:00+00:00", True),  # exactly 14
    (Every("bars", 15), "2023-07-03T21:00:00+00:00", "2023-07-06T21:00:00+00:00", False),
])
def test_retrain_every_counts_sessions_or_new_bars(every, last, at, due):
    state = {"at": last, "data_end": last[:10]}
    assert is_due(every, state, datetime.fromisoformat(at))[0] is due
    assert is_due(every, {}, datetime.fromisoformat(at))[0], "never retrained: due"
    assert not is_due(None, state, datetime.fromisoformat(at))[0], "empty: off"


def test_placebo_permutes_labels_only():
    ds = make_dataclass("D", ["r", "X"])(np.arange(100.0), "features")
    p = _placebo(ds)
    assert sorted(p.r) == list(ds.r) and not np.array_equal(p.r, ds.r) and p.X == "features"


# ---------------------------------------------------------------------------------------------- the duel, by hand
def test_the_duel_scores_realised_r_per_candidate_offered_on_the_same_candidates():
    from models.promotion import duel

    r = np.array([2.0, -1.0, -1.0, 0.5] * 25)
    days = np.repeat(np.arange(25), 4)
    champion = np.array([True, True, True, True] * 25)  # takes all: (2 - 1 - 1 + 0.5) / 4 = +0.125 per candidate
    challenger = np.array([True, False, False, True] * 25)  # skips the losers: 2.5 / 4 = +0.625
    d = duel(r, days, champion, challenger, ("the champion A", "challenger B"), ("2023-01-02", "2023-02-03"))
    assert (d.n, d.days, d.champion_taken, d.challenger_taken) == (100, 25, 100, 50)
    assert d.champion_r == pytest.approx(0.125) and d.challenger_r == pytest.approx(0.625)
    assert d.gain == pytest.approx(0.5) and d.gain_ci[0] == pytest.approx(0.5) == d.gain_ci[1], \
        "every day alike: no spread"
    assert "the champion A took 100 and made +0.125R" in d.describe()


@pytest.mark.parametrize("gains, ci_lo, promoted, why", [
    ((0.05, 0.30, 0.10), 0.01, True, "promoted: "),
    ((0.019, 0.30, 0.10), 0.01, False, "below PROMOTE_MIN_GAIN 0.02"),  # the champion not beaten by the margin
    ((0.05, 0.30, 0.01), 0.01, False, "below PROMOTE_MIN_GAIN 0.02"),  # nor "taking none"
    ((0.05, 0.30, 0.10), 0.0, False, "interval reaches zero"),  # may be luck
    ((0.05, 0.30, 0.10), float("nan"), False, "interval reaches zero"),  # too few days for an interval
])
def test_promotion_needs_every_duel_won_by_the_margin_with_its_interval_above_zero(gains, ci_lo, promoted, why):
    from models.promotion import Duel, verdict

    duels = [Duel(("a", "b"), 80, 20, name, "challenger", 0.0, g, 10, 10, g, (ci_lo, g + 0.1))
             for name, g in zip(("the champion", "taking every candidate", "taking none"), gains, strict=True)]
    ok, text = verdict(duels, 0.02)
    assert ok is promoted and why in text
    if promoted:
        assert "the champion took" in text, "the reason names the champion's duel"


@pytest.mark.parametrize("at, open_, last_close, next_at", [
    ("2023-07-05T15:00:00+00:00", True, "2023-07-03 13:00", "2023-07-05 16:15"),  # 11:00 NY; the 3rd a half day
    ("2023-07-05T20:00:00+00:00", False, "2023-07-05 16:00", "2023-07-05 16:15"),  # the close itself
    ("2023-07-05T20:20:00+00:00", False, "2023-07-05 16:00", "2023-07-06 16:15"),
    ("2023-07-08T15:00:00+00:00", False, "2023-07-07 16:00", "2023-07-10 16:15"),  # a Saturday
    ("2023-03-13T13:45:00+00:00", True, "2023-03-10 16:00", "2023-03-13 16:15"),  # 09:45 NY, the first EDT day
    ("2023-03-13T13:15:00", False, "2023-03-10 16:00", "2023-03-13 16:15"),  # naive is UTC: 09:15 NY, not open
])
def test_market_hours_come_from_the_exchange_calendar(at, open_, last_close, next_at):
    is_open, close = session_state(datetime.fromisoformat(at))
    assert is_open is open_ and f"{close:%Y-%m-%d %H:%M}" == last_close
    assert f"{next_run(datetime.fromisoformat(at)):%Y-%m-%d %H:%M}" == next_at


def test_no_retrain_starts_too_close_to_the_open(tmp_path):
    from models.schedule import run_once
    from trading.settings import Settings

    s = Settings.load(environ={"MODEL_PATH": str(tmp_path / "m" / "meta_model.joblib"), "RETRAIN_EVERY": "1D"},
                      dotenv_path=None)
    out = run_once(s, datetime.fromisoformat("2023-07-06T12:50:00+00:00"), force=True)  # 08:50 New York
    assert out.outcome == "skipped" and "too soon to retrain" in out.why
    assert not (tmp_path / "m").exists(), "nothing written"


def test_the_gain_interval_is_a_paired_bootstrap_over_days():
    from models.evaluation import DayBootstrap
    from models.promotion import duel

    rng = np.random.default_rng(4)
    r = rng.normal(0.0, 1.0, 120)
    days = np.sort(rng.integers(0, 30, 120))
    champion, challenger = rng.random(120) < 0.5, rng.random(120) < 0.5
    d = duel(r, days, champion, challenger, ("the champion A", "challenger B"), ("2023-01-02", "2023-03-01"))
    assert d.champion_r == pytest.approx((r * champion).mean()) and d.challenger_r == pytest.approx(
        (r * challenger).mean())
    assert d.gain == pytest.approx(d.challenger_r - d.champion_r)
    expected = DayBootstrap(days, seed=0).interval(lambda rr, a, b: (rr * b).mean() - (rr * a).mean(), r, champion,
                                                   challenger)
    assert d.gain_ci == pytest.approx(expected) and d.gain_ci[0] < d.gain < d.gain_ci[1]
    assert d.days == len(np.unique(days)) and (d.champion_taken, d.challenger_taken) == (champion.sum(),
                                                                                           challenger.sum())
    assert d.describe() == (f"on the 120 candidates of 2023-01-02 .. 2023-03-01 ({d.days} days) the challenger B "
                            f"took {challenger.sum()} and made {d.challenger_r:+.3f}R per candidate, the champion A "
                            f"took {champion.sum()} and made {d.champion_r:+.3f}R: gain {d.gain:+.3f} "
                            f"[{d.gain_ci[0]:+.3f}, {d.gain_ci[1]:+.3f}]R")
    as_dict = d.as_dict()
    assert as_dict["window"] == ["2023-01-02", "2023-03-01"] and as_dict["gain_ci"] == list(d.gain_ci)
    assert as_dict["challenger"] == "challenger B" and as_dict["n"] == 120


def test_a_gain_of_exactly_the_margin_is_enough():
    from models.promotion import Duel, verdict

    d = Duel(("a", "b"), 80, 20, "the champion", "challenger", 0.0, 0.02, 10, 10, 0.02, (0.001, 0.05))
    assert verdict([d], 0.02)[0] is True
    assert verdict([d], 0.0201)[0] is False


class Members:
    """An estimator whose members predict fixed R per candidate (rows x members)."""

    def __init__(self, preds):
        self.preds = np.asarray(preds, dtype=float)

    def assess(self, X, threshold):
        from models.ensemble import assess_predictions

        return assess_predictions(self.preds, threshold)


@pytest.mark.parametrize("gates, taken", [
    ({}, [True, True, False, False]),  # no agreement needed: the mean decides (row 2's mean 0.1 < 0.2)
    ({"ensemble_agreement": 0.5}, [True, True, False, False]),
    ({"ensemble_agreement": 1.0}, [True, False, False, False]),  # row 1: one member of three below
    ({"ensemble_agreement": 0.5, "max_uncertainty": 0.2}, [True, False, False, False]),  # row 1 spread 0.28
])
def test_each_model_is_judged_by_the_gate_the_bot_applies(gates, taken):
    from models.promotion import gate_passes

    preds = [[0.3, 0.3, 0.3], [0.6, 0.6, 0.0], [0.3, 0.0, 0.0], [np.nan, 0.9, 0.9]]
    assert gate_passes(Members(preds), None, 0.2, gates).tolist() == taken
