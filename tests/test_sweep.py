"""The walk-forward sweep (research/): folds that never report on what they tuned, the chosen settings as a
profile the bot loads, overfitting estimates that tell skill from luck, and Ray running the same trials."""

from datetime import date
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from research import overfitting
from research.space import DEFAULT_SPACE, build_space, parse_param
from research.sweep import main, score, stitch
from research.walkforward import folds
from trading.settings import Settings


def test_folds_tune_then_report_on_the_next_unseen_window_after_the_gap():
    fs = folds(date(2015, 1, 1), date(2018, 12, 31), train_days=365, test_days=182, gap_days=5)
    assert len(fs) == 5
    for f in fs:
        assert (f.train_end - f.train_start).days == 364 and (f.test_end - f.test_start).days == 181
        assert (f.test_start - f.train_end).days == 6  # five whole days between them
    for a, b in pairwise(fs):
        assert b.test_start > a.test_end  # test windows never overlap: the stitched curve counts each day once
    assert fs[-1].test_end <= date(2018, 12, 31)
    with pytest.raises(ValueError, match="too short for one fold"):
        folds(date(2018, 1, 1), date(2018, 6, 30), 365, 182, 5)


def test_the_search_space_is_declared_and_bad_ranges_are_refused_by_name():
    assert {p.name for p in DEFAULT_SPACE} >= {"STOP_LOSS_PCT", "TAKE_PROFIT_PCT", "RSI_OVERSOLD"}
    p = parse_param("risk_per_trade_pct=0.002:0.02:log")
    assert (p.name, p.low, p.high, p.kind) == ("RISK_PER_TRADE_PCT", 0.002, 0.02, "log")
    assert [x.name for x in build_space(["RSI_OVERSOLD=20:35:int", "RSI_OVERSOLD=25:30:int"])] == ["RSI_OVERSOLD"]
    for bad, why in [("STOPLOSS=0.1:0.2", "NAME a strategy"), ("API_PORT=1:9", "NAME a strategy"),
                     ("STOP_LOSS_PCT=0.2:0.1", "LOW < HIGH"),
                     ("STOP_LOSS_PCT=a:b", "must be numbers"), ("STOP_LOSS_PCT=0:1:log", "LOW < HIGH")]:
        with pytest.raises(ValueError, match=why):
            parse_param(bad)


def test_the_objective_ignores_refused_settings_and_thin_trials():
    good = {"total_return": 0.10, "max_drawdown": -0.05, "sharpe": 1.2, "trades": 30}
    assert score(good, "ret_over_dd", 10) == pytest.approx(2.0)
    assert score(good, "sharpe", 10) == 1.2 and score(good, "return", 10) == 0.10
    assert score({**good, "trades": 9}, "ret_over_dd", 10) is None
    assert score({**good, "trades": 10}, "ret_over_dd", 10) == pytest.approx(2.0)  # the minimum itself counts
    assert score({"error": "invalid"}, "sharpe", 0) is None
    assert score({**good, "max_drawdown": 0.0}, "ret_over_dd", 0) == pytest.approx(10.0)  # a 1% floor


def test_stitching_compounds_each_window_onto_the_last_value():
    a = pd.Series([100.0, 110.0], index=pd.to_datetime(["2018-01-02", "2018-01-03"]))
    b = pd.Series([50.0, 45.0], index=pd.to_datetime(["2018-02-01", "2018-02-02"]))
    s = stitch([a, b])
    assert s.iloc[0] == 100_000 and s.iloc[1] == pytest.approx(110_000) and s.iloc[-1] == pytest.approx(99_000)


def test_deflated_sharpe_tells_a_real_edge_from_the_best_of_many_coin_tosses():
    from scipy import stats

    deflated, naive = [], []
    for seed in range(12):  # the best of 100 skill-less trials, again and again
        rng = np.random.default_rng(seed)
        noise = [rng.normal(0, 0.01, 500) for _ in range(100)]
        lucky = max(noise, key=overfitting.sharpe)
        deflated.append(overfitting.deflated_sharpe(lucky, [overfitting.sharpe(x) for x in noise]))
        naive.append(stats.norm.cdf(overfitting.sharpe(lucky) * np.sqrt(499)))  # its Sharpe against zero
    assert min(naive) > 0.95  # undeflated, every lucky winner looks significant
    assert max(deflated) < 0.95 and 0.2 < np.mean(deflated) < 0.8  # deflated, none does: a coin toss
    rng = np.random.default_rng(3)
    edge = rng.normal(0.003, 0.01, 500)  # a daily Sharpe of 0.3 (about 4.8 a year)
    others = [overfitting.sharpe(rng.normal(0, 0.01, 500)) for _ in range(99)]
    assert overfitting.deflated_sharpe(edge, [*others, overfitting.sharpe(edge)]) > 0.95


def test_the_sharpe_interval_covers_the_true_sharpe_about_as_often_as_it_says():
    """Seven years of daily returns with a true annual Sharpe of 1.0: the 95% interval holds 1.0 in about 95% of
    the draws (189 of 200 expected), is about 1.5 wide (so 0.98 and 1.0 are not told apart), and halves with four
    times the days."""
    daily_sr = 1.0 / np.sqrt(252)
    hits, widths = 0, []
    for seed in range(200):
        x = np.random.default_rng(seed).normal(daily_sr * 0.01, 0.01, 7 * 252)
        lo, hi = overfitting.sharpe_interval(x, resamples=400, seed=seed)
        hits += lo <= 1.0 <= hi
        widths.append(hi - lo)
        point = x.mean() / x.std(ddof=1) * np.sqrt(252)
        assert lo < point < hi
    assert 180 <= hits <= 197, f"the true Sharpe was inside {hits} of 200 intervals"
    assert 1.1 < np.median(widths) < 1.9
    long = overfitting.sharpe_interval(np.random.default_rng(99).normal(daily_sr * 0.01, 0.01, 28 * 252),
                                       resamples=500)
    assert 0.35 < (long[1] - long[0]) / np.median(widths) < 0.65
    assert overfitting.sharpe_interval(np.ones(30)) == pytest.approx((np.nan, np.nan), nan_ok=True)
    assert overfitting.sharpe_interval(np.zeros(300)) == pytest.approx((np.nan, np.nan), nan_ok=True), "flat"


def test_pbo_is_high_for_selection_by_luck_and_low_for_a_persistent_edge():
    noise = [pd.DataFrame(np.random.default_rng(seed).normal(0, 0.01, (400, 20))) for seed in range(8)]
    assert 0.35 <= np.mean([overfitting.pbo(m) for m in noise]) <= 0.65  # selecting on luck: a coin toss
    for m in noise:
        m[0] += 0.004  # one trial really is better, in every sub-period
    assert max(overfitting.pbo(m) for m in noise) < 0.1


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps")
    code = main(["--data", "builtin", "--start", "2024-01-02", "--end", "2024-04-30", "--train-days", "45",
                 "--test-days", "30", "--gap-days", "3", "--trials", "3", "--min-trades", "2", "--runner", "serial",
                 "--param", "STOP_LOSS_PCT=0.03:0.08", "--param", "RSI_OVERSOLD=25:35:int", "--out", str(out),
                 "--no-progress", "--env-file", str(out / "none.env")])
    assert code == 0
    (folder,) = out.iterdir()
    return folder


def test_the_sweep_writes_its_tables_plot_and_a_profile_the_bot_loads(sweep):
    for name in ("summary.txt", "trials.csv", "folds.csv", "importances.csv", "oos_equity.png", "oos_equity.csv",
                 "best.env"):
        assert (sweep / name).is_file(), name
    trials = pd.read_csv(sweep / "trials.csv")
    fold_rows = pd.read_csv(sweep / "folds.csv")
    assert len(trials) == 3 * len(fold_rows) and len(fold_rows) == 2
    last = fold_rows.iloc[-1]
    settings = Settings.load(environ={"PROFILE": str(sweep / "best.env")}, dotenv_path=None)
    assert settings.stop_loss_pct == pytest.approx(last["STOP_LOSS_PCT"], rel=1e-5)
    assert settings.rsi_oversold == last["RSI_OVERSOLD"]
    assert [ln.split("=")[0] for ln in (sweep / "best.env").read_text().splitlines() if not ln.startswith("#")] \
        == ["STOP_LOSS_PCT", "RSI_OVERSOLD"]
    text = (sweep / "summary.txt").read_text()
    assert "stitched out-of-sample result" in text and "SPY buy & hold" in text and "deflated_sharpe" in text


def test_the_stitched_curve_compounds_every_test_windows_whole_return(sweep):
    folds_ = pd.read_csv(sweep / "folds.csv")
    curve = pd.read_csv(sweep / "oos_equity.csv")["strategy_oos"]
    assert curve.iloc[0] == 100_000
    expected = float(np.prod(1 + folds_["oos_return"])) - 1  # day one of each window included
    assert curve.iloc[-1] / curve.iloc[0] - 1 == pytest.approx(expected, abs=1e-9)


def test_each_fold_trades_the_in_sample_winner_out_of_sample(sweep):
    trials = pd.read_csv(sweep / "trials.csv")
    for _, f in pd.read_csv(sweep / "folds.csv").iterrows():
        counted = trials[(trials["fold"] == f["fold"]) & trials["objective"].notna()]
        winner = counted.loc[counted["objective"].idxmax()]
        assert f["is_objective"] == pytest.approx(winner["objective"])
        assert f["STOP_LOSS_PCT"] == pytest.approx(winner["STOP_LOSS_PCT"], rel=1e-5)
        train_end, test_start = (pd.Timestamp(x) for x in (f["train"].split("..")[1], f["test"].split("..")[0]))
        assert (test_start - train_end).days == 4


def test_ray_runs_the_same_trial_as_this_process_from_one_shared_copy_of_the_bars():
    from backtest.runner import BacktestConfig, load_market
    from research.trials import RayRunner, SerialRunner

    settings = Settings.defaults()
    market, *_ = load_market(BacktestConfig(start=date(2024, 1, 2), end=date(2024, 2, 29), progress=False),
                             settings)
    jobs = [(k, {"STOP_LOSS_PCT": sl}, date(2024, 1, 2), date(2024, 2, 9)) for k, sl in (("a", "0.03"), ("b", "0.07"))]
    serial = dict(SerialRunner(market, {}).run(jobs))
    ray_runner = RayRunner(market, {}, num_cpus=2)
    try:
        assert ray_runner.slots == 2
        remote = dict(ray_runner.run(jobs))
        stored = ray_runner.ray.get(ray_runner.market_ref)
        assert set(stored.bars) == set(market.bars)
    finally:
        ray_runner.close()
    for k in ("a", "b"):
        assert remote[k]["trades"] == serial[k]["trades"] > 0
        assert remote[k]["total_return"] == pytest.approx(serial[k]["total_return"], abs=1e-12)
    assert serial["a"]["total_return"] != serial["b"]["total_return"]  # the override reached the trial


def test_a_trial_leaves_no_thread_behind():
    """Lumibot's broker stream and data thread pool outlive a backtest and hold the whole run: a Ray worker running
    trial after trial grew past 10 GB before the trial runner ended them."""
    import threading
    import time

    from backtest.runner import BacktestConfig, load_market
    from research.trials import run_trial

    market, *_ = load_market(BacktestConfig(start=date(2024, 1, 2), end=date(2024, 1, 31), progress=False),
                             Settings.defaults())
    before = threading.active_count()
    for _ in range(3):
        assert "error" not in run_trial(market, {}, {}, date(2024, 1, 2), date(2024, 1, 31))
    deadline = time.monotonic() + 2  # a stopped stream notices within its 0.1 s queue poll
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before


def test_a_fold_whose_trials_failed_says_so_rather_than_few_trades():
    from research.sweep import none_counted

    quiet = [{"trades": 3}, {"trades": 0}]
    assert none_counted(quiet, 10) == "no trial had 10+ trades"
    crashed = [{"error": "ImportError: cannot import name 'x'"}, {"error": "MemoryError: "}]
    assert none_counted(crashed, 10) == "2 of 2 trials failed (first: ImportError: cannot import name 'x')"
    mixed = [{"trades": 4}, {"error": "ValueError: boom"}]
    assert none_counted(mixed, 10) == "1 of 2 trials failed (first: ValueError: boom), the others had under 10 trades"
