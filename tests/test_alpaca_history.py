"""`--data alpaca` (marketdata/alpaca_history.py, marketdata/bar_cache.py) against the fake Alpaca server's bars
endpoint: pages, 429s, a symbol with no data, a gap, the Parquet cache's round trip, and the same frames as the
CSV loader."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date

import numpy as np
import pandas as pd
import pytest

from broker.clients import make_clients
from broker.gateway import AlpacaGateway
from marketdata.alpaca_history import HistoryRequest, load_history
from marketdata.bar_cache import BarCache, CacheKey
from marketdata.csv_source import DataError, load_csv_dir, regular_session, to_hourly
from tests.conftest import run_cli
from tests.fake_alpaca import FakeAlpaca
from trading.settings import Settings

NY = "America/New_York"
FIRST, LAST = date(2024, 4, 1), date(2024, 5, 10)  # 30 sessions, no market holiday
GAP = (date(2024, 4, 15), date(2024, 4, 17))  # BBB did not trade (a halt): no bars those days


def _half_hours(seed: int, skip: tuple[date, date] | None = None) -> pd.DataFrame:
    days = [d for d in pd.bdate_range(FIRST, LAST) if not (skip and skip[0] <= d.date() <= skip[1])]
    idx = pd.DatetimeIndex([d + pd.Timedelta(minutes=9 * 60 + 30 + 30 * i) for d in days for i in range(13)]
                           ).tz_localize(NY)
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, len(idx))))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.002,
                         "low": np.minimum(open_, close) * 0.998, "close": close,
                         "volume": rng.integers(1_000, 5_000, len(idx)).astype(float)}, index=idx)


@pytest.fixture(scope="module")
def source():
    return {"AAA": _half_hours(1), "BBB": _half_hours(2, GAP)}


@pytest.fixture
def srv(source):
    s = FakeAlpaca(source, now=pd.Timestamp("2024-05-13 09:00", tz=NY), data_rate_limit=None).start()
    s.marketdata.max_page_size = 100  # many pages per request
    yield s
    s.stop()


@pytest.fixture
def gateway(srv):
    settings = Settings.from_mapping({"ALPACA_API_KEY": srv.key, "ALPACA_API_SECRET": srv.secret,
                                      "ALPACA_API_URL": srv.url, "ALPACA_DATA_URL": srv.url})
    trading, data = make_clients(settings)
    gw = AlpacaGateway(trading, data, "iex", first_wait=0.01, max_wait=0.05)
    yield gw
    trading._session.close()
    data._session.close()


def _request(timeframe="hour", start=FIRST, end=LAST) -> HistoryRequest:
    return HistoryRequest(("AAA", "BBB", "CCC"), timeframe, start, end, "iex", "all")


def _bar_requests(srv) -> list[dict]:
    return [r for r in srv.requests if r["path"] == "/v2/stocks/bars"]


def test_hourly_history_is_paged_and_rebuilt_as_the_sessions_hourly_bars(srv, gateway, source, tmp_path):
    market = load_history(gateway, _request(), BarCache(tmp_path), progress=False)
    reqs = _bar_requests(srv)
    assert len(reqs) > 5 and {r["query"]["timeframe"] for r in reqs} == {"30Min"}
    assert any(r["query"].get("page_token") for r in reqs), "the SDK followed next_page_token"
    assert all(r["query"]["feed"] == "iex" and r["query"]["adjustment"] == "all" for r in reqs)
    assert market.timestep == "hour" and market.bar_period == pd.Timedelta(hours=1)
    for sym in ("AAA", "BBB"):
        expected = to_hourly(regular_session(source[sym]))
        pd.testing.assert_frame_equal(market.bars[sym], expected, check_names=False, check_freq=False)
    aaa = market.bars["AAA"]
    assert list(aaa.index[:7].strftime("%H:%M")) == ["09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"]
    gap_days = {d.date() for d in market.bars["BBB"].index} & set(pd.bdate_range(*GAP).date)
    assert gap_days == set()
    assert "CCC" not in market.bars and any("no Alpaca bars for CCC" in w for w in market.warnings)


def test_a_second_run_reads_the_cache_and_sends_no_request(srv, gateway, tmp_path):
    first = load_history(gateway, _request(), BarCache(tmp_path), progress=False)
    srv.clear_log()
    again = load_history(gateway, _request(), BarCache(tmp_path), progress=False)
    assert _bar_requests(srv) == []  # CCC has no data and the gap is not a hole: neither is asked for again
    for sym in first.bars:
        pd.testing.assert_frame_equal(again.bars[sym], first.bars[sym], check_freq=False)
    entry = BarCache(tmp_path).manifest()["AAA_hour_iex_all.parquet"]
    assert entry["rows"] == len(first.bars["AAA"]) and len(entry["sha256"]) == 64
    assert (entry["start"], entry["end"]) == (str(FIRST), str(LAST))


def test_raw_bars_fetch_only_the_missing_days_and_the_result_is_the_same(srv, gateway, tmp_path):
    raw = {"adjustment": "raw"}
    load_history(gateway, dataclasses.replace(_request(end=date(2024, 4, 19)), **raw), BarCache(tmp_path),
                 progress=False)
    srv.clear_log()
    extended = load_history(gateway, dataclasses.replace(_request(), **raw), BarCache(tmp_path), progress=False)
    starts = {pd.Timestamp(r["query"]["start"]).tz_convert(NY).date() for r in _bar_requests(srv)}
    assert starts == {date(2024, 4, 20)}
    assert {r["query"]["adjustment"] for r in _bar_requests(srv)} == {"raw"}
    fresh = load_history(gateway, dataclasses.replace(_request(), **raw), BarCache(tmp_path / "fresh"),
                         progress=False)
    for sym in fresh.bars:
        pd.testing.assert_frame_equal(extended.bars[sym], fresh.bars[sym], check_freq=False)


def test_an_adjusted_span_that_grows_is_fetched_again_whole_never_spliced(srv, gateway, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="trader.data")
    load_history(gateway, _request(end=date(2024, 4, 19)), BarCache(tmp_path), progress=False)
    srv.clear_log()
    load_history(gateway, _request(), BarCache(tmp_path), progress=False)
    starts = {pd.Timestamp(r["query"]["start"]).tz_convert(NY).date() for r in _bar_requests(srv)}
    assert starts == {FIRST}  # adjusted as of today, all of it: a split between the two fetches cannot splice
    assert "extends its all-adjusted span: fetching all of it again" in caplog.text


def test_a_day_not_over_in_new_york_is_never_recorded_as_covered(srv, gateway, tmp_path, monkeypatch):
    from marketdata import alpaca_history

    raw = dataclasses.replace(_request(), adjustment="raw")
    monkeypatch.setattr(alpaca_history, "last_complete_day", lambda: date(2024, 5, 7))  # May 8 is "today"
    load_history(gateway, raw, BarCache(tmp_path), progress=False)
    assert BarCache(tmp_path).manifest()["AAA_hour_iex_raw.parquet"]["end"] == "2024-05-07"
    srv.clear_log()  # days later, the same request fetches what was not final then, and only that
    monkeypatch.setattr(alpaca_history, "last_complete_day", lambda: date(2024, 5, 12))
    load_history(gateway, raw, BarCache(tmp_path), progress=False)
    starts = {pd.Timestamp(r["query"]["start"]).tz_convert(NY).date() for r in _bar_requests(srv)}
    assert starts == {date(2024, 5, 8)}
    assert BarCache(tmp_path).manifest()["AAA_hour_iex_raw.parquet"]["end"] == str(LAST)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_corrupt_or_truncated_file_is_fetched_again_never_used(srv, gateway, tmp_path, damage, caplog,
                                                               monkeypatch):
    # an earlier test of the same run may have set up the tools' logging, which stops "trader" propagating
    monkeypatch.setattr(logging.getLogger("trader"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="trader.data")
    good = load_history(gateway, _request(), BarCache(tmp_path), progress=False)
    path = tmp_path / CacheKey("AAA", "hour", "iex", "all").name
    data = bytearray(path.read_bytes())
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:100] + bytes([data[100] ^ 0xFF])
                     + data[101:])
    srv.clear_log()
    again = load_history(gateway, _request(), BarCache(tmp_path), progress=False)
    asked = {s for r in _bar_requests(srv) for s in r["query"]["symbols"].split(",")}
    assert asked == {"AAA"}
    assert "does not match its checksum" in caplog.text
    pd.testing.assert_frame_equal(again.bars["AAA"], good.bars["AAA"], check_freq=False)
    assert BarCache(tmp_path).read(CacheKey("AAA", "hour", "iex", "all")) is not None  # repaired


def test_refresh_fetches_everything_again(srv, gateway, tmp_path):
    load_history(gateway, _request(), BarCache(tmp_path), progress=False)
    srv.clear_log()
    load_history(gateway, _request(), BarCache(tmp_path), refresh=True, progress=False)
    assert {s for r in _bar_requests(srv) for s in r["query"]["symbols"].split(",")} == {"AAA", "BBB", "CCC"}


def test_429s_are_retried_with_backoff(srv, gateway, tmp_path):
    srv.faults.add("429", method="GET", path="/v2/stocks/bars", times=2)
    market = load_history(gateway, _request("day"), BarCache(tmp_path), progress=False)
    assert [r["status"] for r in _bar_requests(srv)][:3] == [429, 429, 200]
    assert len(market.bars["AAA"]) == len(pd.bdate_range(FIRST, LAST))


def test_daily_history_has_the_csv_loaders_shape(srv, gateway, tmp_path):
    market = load_history(gateway, _request("day"), BarCache(tmp_path / "cache"), progress=False)
    folder = tmp_path / "csv"
    folder.mkdir()
    for sym, df in market.bars.items():
        df.tz_localize(None).rename_axis("date").to_csv(folder / f"{sym}.csv")
    from_csv = load_csv_dir(folder)
    assert (market.timestep, market.bar_period) == (from_csv.timestep, from_csv.bar_period)
    for sym in market.bars:
        pd.testing.assert_frame_equal(market.bars[sym], from_csv.bars[sym], check_names=False, check_freq=False)
    daily = market.bars["AAA"]
    assert (daily.index == daily.index.normalize()).all() and str(daily.index.tz) == NY
    src = _half_hours(1)
    day = src[src.index.date == date(2024, 4, 2)]
    row = daily.loc[pd.Timestamp("2024-04-02", tz=NY)]
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == pytest.approx(
        (day["open"].iloc[0], day["high"].max(), day["low"].min(), day["close"].iloc[-1], day["volume"].sum()))


def test_nothing_in_the_span_is_a_clear_error(srv, gateway, tmp_path):
    with pytest.raises(DataError, match="no bars for any symbol"):
        load_history(gateway, _request(start=date(2023, 1, 2), end=date(2023, 1, 31)), BarCache(tmp_path),
                     progress=False)
    with pytest.raises(DataError, match="--timeframe 'minute'"):
        load_history(gateway, _request("minute"), BarCache(tmp_path), progress=False)


def test_without_keys_data_alpaca_exits_2_saying_how_to_add_them_or_use_csv(tmp_path):
    r = run_cli("--backtest", "--data", "alpaca", cwd=tmp_path, env={})
    assert r.returncode == 2, r.stderr
    assert "ALPACA_API_KEY" in r.stderr and "csv:DIR" in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "reports").exists() and not (tmp_path / "cache").exists()


def test_a_backtest_on_alpaca_history_runs_and_a_second_one_uses_the_cache(srv, tmp_path):
    env = {"ALPACA_API_KEY": srv.key, "ALPACA_API_SECRET": srv.secret, "ALPACA_API_URL": srv.url,
           "ALPACA_DATA_URL": srv.url, "UNIVERSE": "AAA,BBB", "BELLWETHERS": "AAA", "BAR_CACHE_DIR": "bars"}
    args = ("--backtest", "--data", "alpaca", "--timeframe", "day", "--start", "2024-04-15", "--end", "2024-05-10",
            "--no-progress")
    r = run_cli(*args, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "alpaca (iex feed, all adjustment, day bars)" in r.stdout
    assert "Total return (net of costs)" in r.stdout
    assert (tmp_path / "bars" / "manifest.json").is_file()
    served = len(_bar_requests(srv))
    assert served >= 1
    r = run_cli(*args, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(_bar_requests(srv)) == served  # the second backtest read the cache only


def test_training_reads_alpaca_history_through_the_same_loader(srv, tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "IS_BACKTESTING"))}
    env.update({"ALPACA_API_KEY": srv.key, "ALPACA_API_SECRET": srv.secret, "ALPACA_API_URL": srv.url,
                "ALPACA_DATA_URL": srv.url, "UNIVERSE": "AAA,BBB", "BELLWETHERS": "AAA", "BAR_CACHE_DIR": "bars",
                "MODEL_PATH": str(tmp_path / "model" / "meta_model.joblib")})
    r = subprocess.run([sys.executable, "-m", "models.train", "--data", "alpaca", "--timeframe", "hour", "--start",
                        "2024-04-01", "--end", "2024-05-10"], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=300)
    assert "Training the meta-model on alpaca (iex feed, all adjustment, hour bars)" in r.stdout, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert (tmp_path / "bars" / "AAA_hour_iex_all.parquet").is_file()
    # six weeks of two symbols is too little to train on: it says so and what to change, exit 2
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1].startswith("error: ") and "use a longer window or more symbols" in r.stderr
