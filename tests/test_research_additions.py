"""research.additions: one table row per addition plus SPY, every figure from a test window the settings were not
tuned on, and a command line that refuses what it cannot do with exit 2 and a message saying how to fix it."""

import subprocess
import sys
from argparse import Namespace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from research.additions import ADDITIONS, ALL_STOCKS, Addition, main, parse_addition, run_additions
from research.additions_report import COLUMNS, worst_month
from research.space import Param
from research.sweep import score
from research.walkforward import folds
from tests.conftest import ROOT
from trading.settings import Settings

SYMBOLS = ("AAPL", "MSFT", "JPM", "XOM", "SPY", "SH")
WINDOW = ["--start", "2016-01-04", "--end", "2016-05-31", "--train-days", "60", "--test-days", "30",
          "--gap-days", "3"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A slice of the real development bars: six symbols, 2015 (indicator warm-up) to mid-2016."""
    out = tmp_path_factory.mktemp("bars")
    for sym in SYMBOLS:
        df = pd.read_csv(ROOT / "data" / "daily" / f"{sym}.csv")
        df[(df["date"] >= "2015-01-01") & (df["date"] <= "2016-06-30")].to_csv(out / f"{sym}.csv", index=False)
    return out


@pytest.fixture(scope="module")
def report(tiny_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("additions")
    code = main(["--data", f"csv:{tiny_dir}", *WINDOW, "--trials", "2", "--min-trades", "0", "--runner", "serial",
                 "--only", "defaults,trend_filter,correlation_cap", "--out", str(out), "--no-progress",
                 "--env-file", str(out / "none.env")])
    assert code == 0
    (folder,) = out.iterdir()
    return folder


def test_the_table_has_one_row_per_addition_plus_spy_with_the_asked_columns(report):
    table = pd.read_csv(report / "table.csv")
    assert table["addition"].tolist() == ["defaults", "trend_filter", "correlation_cap", "SPY buy & hold"]
    assert set(COLUMNS) <= set(table.columns)
    assert table[["return", "max_drawdown", "worst_month", "exposure"]].notna().all().all()
    text = (report / "table.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| addition"))
    for name in ("return", "max drawdown", "return / max DD", "worst month", "trades", "exposure", "Sharpe",
                 "Sharpe 95% CI"):
        assert f"| {name} |" in header
    assert "2016-" in text and "csv:" in text  # the span and the data it ran on are stated
    for r in table.itertuples():  # the interval is around each row's own Sharpe
        if isinstance(r.sharpe_ci, str) and r.sharpe_ci != "-":
            lo, hi = map(float, r.sharpe_ci.split(".."))
            assert lo < r.sharpe < hi, (r.addition, r.sharpe, r.sharpe_ci)
    assert table["sharpe_ci"].str.contains(r"\.\.").sum() >= 2, "defaults and SPY at least have one"
    assert (report / "equity.png").stat().st_size > 10_000


def test_each_row_compounds_its_test_windows_only(report):
    table = pd.read_csv(report / "table.csv").set_index("addition")
    fold_rows = pd.read_csv(report / "folds.csv")
    assert len(fold_rows) == 3 * 2
    for name, rows in fold_rows.groupby("addition"):
        assert table.loc[name, "return"] == pytest.approx(float(np.prod(1 + rows["oos_return"])) - 1, abs=1e-9)
        assert table.loc[name, "trades"] == rows["oos_trades"].sum()
    tuned = fold_rows[fold_rows["addition"] == "correlation_cap"]
    assert (tuned["how"] == "tuned on " + tuned["train"]).all()
    assert tuned["settings"].str.contains("CORRELATION_MAX=").all()


class RecordingRunner:
    """Every job as asked, answered with a made-up result that depends on the settings and the window."""

    def __init__(self):
        self.jobs, self.results = [], {}

    def run(self, jobs):
        for key, overrides, start, end in jobs:
            self.jobs.append((key, dict(overrides), start, end))
            x = float(overrides.get("CORRELATION_MAX", 0.5))
            total = 0.05 * np.sin(7 * x + start.toordinal())  # which x wins differs from window to window
            days = pd.bdate_range(start, end)
            equity = pd.Series(100_000 * (1 + total) ** (np.arange(len(days)) / (len(days) - 1)), index=days)
            self.results[key] = {"total_return": total, "max_drawdown": -0.02, "sharpe": 1.0, "trades": 12,
                                 "exposure": 0.5, "invested": 0.2, "equity": equity}
            yield key, self.results[key]

    def close(self):
        pass


def test_settings_are_chosen_on_the_training_window_and_reported_on_the_next_unseen_one():
    args = Namespace(start=date(2014, 1, 1), end=date(2016, 12, 31), train_days=365, test_days=180, gap_days=5,
                     trials=4, seed=7, objective="return", min_trades=10)
    cap = Addition("cap", {"CORRELATION_MAX": "0.7"}, (Param("CORRELATION_MAX", 0.2, 0.9),))
    runner = RecordingRunner()
    result = run_additions(runner, [Addition("defaults"), cap], {"defaults": {}, "cap": cap.overrides}, args,
                           progress=False)
    fs = {f.number: f for f in folds(args.start, args.end, args.train_days, args.test_days, args.gap_days)}
    assert [f.number for f in result["folds"]] == list(fs) and len(fs) == 4
    train = [j for j in runner.jobs if j[0][0] == "train"]
    test = [j for j in runner.jobs if j[0][0] == "test"]
    assert len(train) == len(fs) * args.trials and len(test) == 2 * len(fs)
    for (_, _, n, *_), _, start, end in train:
        assert (start, end) == (fs[n].train_start, fs[n].train_end) and end < fs[n].test_start
    for (_, name, n), overrides, start, end in test:
        assert (start, end) == (fs[n].test_start, fs[n].test_end)
        if name == "cap":  # traded with the best of its own fold's training trials, not of any other window
            own = [j for j in train if j[0][1:3] == ("cap", n)]
            best = max(own, key=lambda j: score(runner.results[j[0]], args.objective, args.min_trades))
            assert overrides == best[1]
        else:
            assert overrides == {}
    assert runner.jobs.index(test[0]) > runner.jobs.index(train[-1])  # every choice made before any test ran


def test_an_end_after_2018_is_refused_with_exit_2_and_no_traceback():
    r = subprocess.run([sys.executable, "-m", "research.additions", "--end", "2019-01-02"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "--end 2019-01-02 is after 2018-12-31" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("bad", ["oops", "x:", "x:NOT_A_SETTING=1", "x:TREND_FILTER", "x::STOP_LOSS_PCT=0.1",
                                 "x:TREND_FILTER=true:RSI_OVERSOLD=35:20", "x:TREND_FILTER=true:0.1:0.2"])
def test_a_bad_addition_is_refused_with_exit_2_and_the_syntax_to_use(bad, capsys):
    assert main(["--addition", bad, "--runner", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --addition") and "NAME:KEY=VAL,KEY=VAL[:PARAM=LOW:HIGH" in err


def test_a_custom_addition_is_parsed_and_unknown_names_are_refused(capsys):
    a = parse_addition("gate:CONFIDENCE_THRESHOLD=0.7,trend_filter=true:CONFIDENCE_THRESHOLD=0.5:0.8"
                       ":RSI_OVERSOLD=20:35:int")
    assert a.overrides == {"CONFIDENCE_THRESHOLD": "0.7", "TREND_FILTER": "true"}
    assert [(p.name, p.low, p.high, p.kind) for p in a.space] == [("CONFIDENCE_THRESHOLD", 0.5, 0.8, "float"),
                                                                   ("RSI_OVERSOLD", 20, 35, "int")]
    assert main(["--only", "defaults,trend"]) == 2
    assert "--only trend: not declared; choose from defaults, market_vol_gate" in capsys.readouterr().err


def test_a_value_the_bot_would_refuse_stops_the_run_before_any_trial(tiny_dir, tmp_path, capsys):
    code = main(["--data", f"csv:{tiny_dir}", *WINDOW, "--runner", "serial", "--only", "defaults",
                 "--addition", "odd:TREND_FILTER=maybe", "--out", str(tmp_path), "--no-progress"])
    assert code == 2 and "addition odd: TREND_FILTER" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_model_trained_on_the_test_span_is_refused(tiny_dir, tmp_path, capsys, monkeypatch):
    import models.model_warnings as mm

    seen = []
    monkeypatch.setattr(mm, "overlap_warning", lambda model, source, start, end: seen.append((start, end))
                        or "the meta-model was trained on 2016-01-01 .. 2016-12-31 of the same data")
    code = main(["--data", f"csv:{tiny_dir}", *WINDOW, "--runner", "serial", "--only", "defaults",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 2 and "give it a model trained before 2016-03-07" in capsys.readouterr().err
    assert seen == [(date(2016, 3, 7), date(2016, 5, 5))]  # the whole span of test windows is checked


def test_every_declared_addition_is_a_setting_the_bot_accepts_at_both_ends_of_its_range():
    names = [a.name for a in ADDITIONS]
    assert names[0] == "defaults" and len(set(names)) == len(names)
    for a in ADDITIONS:
        fixed = {k: "AAPL,MSFT" if v == ALL_STOCKS else v for k, v in a.overrides.items()}
        for end in ("low", "high"):
            Settings.load(environ={}, dotenv_path=None, overrides={**fixed, **{p.name: str(getattr(p, end))
                                                                                for p in a.space}})


def test_worst_month_is_the_worst_calendar_month_of_the_curve():
    days = pd.to_datetime(["2018-01-31", "2018-02-15", "2018-02-28", "2018-03-30"])
    assert worst_month(pd.Series([100.0, 90.0, 95.0, 114.0], index=days)) == pytest.approx(-0.05)
    assert worst_month(pd.Series([100.0, 120.0], index=days[1:3])) == pytest.approx(0.2)  # one month: its return


def test_a_model_addition_trades_each_fold_with_the_model_trained_before_that_fold():
    args = Namespace(start=date(2014, 1, 1), end=date(2016, 12, 31), train_days=365, test_days=180, gap_days=5,
                     trials=2, seed=7, objective="return", min_trades=10)
    fs = folds(args.start, args.end, args.train_days, args.test_days, args.gap_days)
    paths = {f.number: f"/models/fold{f.number}/meta_model.joblib" for f in fs}
    gate = Addition("model_gate", {}, model=True)
    runner = RecordingRunner()
    run_additions(runner, [Addition("defaults"), gate], {"defaults": {}, "model_gate": {}}, args, progress=False,
                  fold_models=paths)
    test = [j for j in runner.jobs if j[0][0] == "test"]
    assert {j[0][2]: j[1].get("MODEL_PATH") for j in test if j[0][1] == "model_gate"} == paths
    assert all("MODEL_PATH" not in j[1] for j in test if j[0][1] == "defaults")


def test_each_folds_model_is_trained_on_bars_before_its_test_window_only(tmp_path):
    from backtest.runner import BacktestConfig, load_market
    from research.fold_models import train_fold_models

    s = Settings.load(environ={}, dotenv_path=None)
    market, *_ = load_market(BacktestConfig(data=f"csv:{ROOT / 'data' / 'daily'}", timeframe="day",
                                            progress=False), s)
    fs = folds(date(2009, 12, 29), date(2013, 1, 31), 730, 365, 5)[:1]
    said = []
    paths = train_fold_models(market, s, fs, ["AAPL", "MSFT", "JPM", "XOM", "CVX", "PFE", "KO", "WMT", "INTC",
                                              "CSCO", "IBM", "GE"], tmp_path, say=said.append)
    import json

    card = json.loads(paths[1].with_suffix(".json").read_text())
    assert card["training_window"]["end"] == str(fs[0].train_end) < str(fs[0].test_start)
    assert card["data"]["candidates"] > 100 and len(said) == 1 and "fold 1: model trained on 2004-01-02" in said[0]
