"""`python live_trader.py diff`: a paper session on the fake Alpaca server replayed as a backtest on the same bars.
The replay agrees with the session it came from; a planted divergence (an order Alpaca rejected, a fill the
backtest never made) is reported."""


import pandas as pd
import pytest

from tests.conftest import run_cli
from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import NY, LiveBot, run_day, scripted_market
from trading.records.journal import Journal
from trading.records.runs import read_runs

AGREE = (("JPM", -16, 16, -0.012), ("JPM", 1, 3, -0.025))  # deep oversold at the open (an entry), then a slide
COMMON = {"UNIVERSE": "JPM", "BELLWETHERS": "AAPL", "NASDAQ_SYMBOLS": "AAPL"}
pytestmark = pytest.mark.usefixtures("close_bots")


def session(tmp_path, plant=None):
    """A scripted paper day of the bot on the fake server; the bars also written as CSV (the replay's data)."""
    bars = scripted_market(shapes=AGREE, symbols=("JPM", "AAPL", "SPY", "QQQ"))
    folder = tmp_path / "csv"
    folder.mkdir(exist_ok=True)
    for sym, df in bars.items():
        df.to_csv(folder / f"{sym}.csv", index_label="datetime")
    srv = FakeAlpaca(bars, now=pd.Timestamp("2024-03-05 09:31", tz=NY)).start()
    try:
        if plant:
            plant(srv)
        bot = LiveBot(srv, tmp_path / "live.sqlite", env=COMMON)
        run_day(srv, bot, hours=6)  # 09:31 .. 14:31: Lumibot's hourly backtest has no 15:30 iteration
        bot.close()
    finally:
        srv.stop()
    return tmp_path / "live.sqlite", folder


def diff(journal, folder, cwd):
    return run_cli("diff", "--journal", str(journal), "--data", f"csv:{folder}", "--no-progress", "--out",
                   str(cwd / "reports"), cwd=cwd)


def test_the_run_record_holds_the_settings_and_the_book_the_session_started_from(tmp_path):
    journal, _ = session(tmp_path)
    (run,) = read_runs(Journal(journal))
    assert run["settings"]["UNIVERSE"] == "JPM" and run["bar_minutes"] == 60
    assert run["cash"] == pytest.approx(100_000) and run["positions"] == {}
    assert "ALPACA_API_KEY" not in run["settings"] and "API_TOKEN" not in run["settings"]


def test_a_session_and_its_replay_agree_decision_by_decision(tmp_path):
    journal, folder = session(tmp_path)
    r = diff(journal, folder, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Decisions that differ: 0 (none" in r.stdout, r.stdout
    assert "Fills that differ: 0 (none beyond the slippage model)" in r.stdout, r.stdout
    (out,) = (tmp_path / "reports").glob("diff-*")
    assert pd.read_csv(out / "decisions_diff.csv").empty
    live = Journal(journal).frame("fills")
    assert set(live["role"]) >= {"entry", "stop"}  # there was something to agree on


def test_a_rejected_order_and_an_extra_fill_are_reported(tmp_path):
    def reject_jpm(srv):
        srv.set_asset("JPM", tradable=False)  # Alpaca refuses every JPM order of this session

    journal, folder = session(tmp_path, plant=reject_jpm)
    j = Journal(journal)
    j.record_fill(pd.Timestamp("2024-03-05 13:31", tz=NY).to_pydatetime(), "manual-1", "AAPL", "buy", 5, 170.0,
                  "entry")  # a fill the bot's own decisions never made (bought by hand, say)
    j.close()
    r = diff(journal, folder, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    (out,) = (tmp_path / "reports").glob("diff-*")
    fills = pd.read_csv(out / "fills_diff.csv")
    assert ((fills["symbol"] == "AAPL") & (fills["note"] == "live only")).any()
    assert ((fills["symbol"] == "JPM") & (fills["role"] == "entry") & (fills["note"] == "backtest only")).any()
    decisions = pd.read_csv(out / "decisions_diff.csv")
    jpm = decisions[decisions["symbol"] == "JPM"]
    assert not jpm.empty and jpm["live"].str.contains("reject|not tradable", case=False).any(), jpm.to_string()
    assert "live only" in r.stdout and "backtest only" in r.stdout


def test_a_journal_without_a_run_record_is_refused_with_the_reason(tmp_path):
    Journal(tmp_path / "old.sqlite").close()
    r = diff(tmp_path / "old.sqlite", tmp_path, tmp_path)
    assert r.returncode == 2 and "no run record" in r.stderr and "Traceback" not in r.stderr


def _fills(rows):
    return pd.DataFrame(rows, columns=["time", "broker_order_id", "symbol", "side", "qty", "price", "role"])


def test_fills_are_compared_per_order_against_the_price_before_slippage():
    from backtest.costs import BacktestCosts
    from backtest.diff import compare_fills

    costs = BacktestCosts(True, 0, 0, 0, slippage_bps=10, slippage_atr_fraction=0)  # 10 bp: 0.10 on 100
    t = "2024-03-05T14:31:00+00:00"
    back = _fills([(t, "b1", "JPM", "buy", 100, 100.10, "entry"), (t, "b2", "XOM", "sell", 10, 99.90, "exit"),
                   (t, "b3", "AAPL", "sell", 5, 110.00, "target")])
    # JPM bought in two pieces averaging 100.01: 0.01 of slippage against the backtest's 100.00 before its 0.10
    live = _fills([(t, "l1", "JPM", "buy", 50, 100.00, "entry"), (t, "l1", "JPM", "buy", 50, 100.02, "entry"),
                   (t, "l2", "XOM", "sell", 10, 99.70, "exit"), (t, "l3", "AAPL", "sell", 5, 110.00, "target")])
    out = compare_fills(live, back, 60, costs)
    assert list(out["symbol"]) == ["XOM"]  # the one beyond the model: 0.30 worse than 100.00, 0.10 modelled
    xom = out.iloc[0]
    assert xom["realised_slippage"] == pytest.approx(0.30, abs=1e-3)
    assert xom["modelled_slippage"] == pytest.approx(0.0999, abs=1e-3)
    assert xom["note"] == "price beyond the slippage model"
    worse_limit = live.assign(price=live["price"].where(live["symbol"] != "AAPL", 109.98))
    assert "AAPL" in set(compare_fills(worse_limit, back, 60, costs)["symbol"])  # a limit: more than a cent off


@pytest.mark.parametrize("started, bar_minutes, begin", [
    ("2024-03-05 09:31", 60, "2024-03-05 09:30"), ("2024-03-05 13:05", 60, "2024-03-05 12:30"),
    ("2024-03-05 13:30", 60, "2024-03-05 13:30"), ("2024-03-05 13:05", 1440, "2024-03-05 00:00")])
def test_the_replay_begins_where_the_backtester_sees_what_the_live_bot_saw(started, bar_minutes, begin):
    from backtest.diff import replay_start

    assert replay_start(pd.Timestamp(started, tz=NY), bar_minutes) == pd.Timestamp(begin, tz=NY)


def _halves(df: pd.DataFrame) -> pd.DataFrame:
    """Each hourly bar as two 30-minute bars (Alpaca serves both sizes; the replay reads 30-minute bars)."""
    mid = (df["open"] + df["close"]) / 2
    first = pd.DataFrame({"open": df["open"], "close": mid, "volume": df["volume"] / 2})
    first["high"], first["low"] = first[["open", "close"]].max(axis=1), first[["open", "close"]].min(axis=1)
    second = pd.DataFrame({"open": mid, "high": df["high"], "low": df["low"], "close": df["close"],
                           "volume": df["volume"] / 2}).set_axis(df.index + pd.Timedelta(minutes=30))
    second["high"] = second[["high", "open", "close"]].max(axis=1)
    second["low"] = second[["low", "open", "close"]].min(axis=1)
    return pd.concat([first, second]).sort_index()


def test_diff_with_data_alpaca_replays_from_the_fakes_history_through_the_cache(tmp_path):
    bars = {s: _halves(df) for s, df in scripted_market(shapes=AGREE, symbols=("JPM", "AAPL", "SPY", "QQQ")).items()}
    srv = FakeAlpaca(bars, now=pd.Timestamp("2024-03-05 09:31", tz=NY), data_rate_limit=None).start()
    try:
        bot = LiveBot(srv, tmp_path / "live.sqlite", env=COMMON)
        run_day(srv, bot, hours=6)
        bot.close()
        srv.set_now(pd.Timestamp("2024-03-07 09:00", tz=NY))  # the session is over: its bars are history
        env = {"ALPACA_API_KEY": srv.key, "ALPACA_API_SECRET": srv.secret, "ALPACA_API_URL": srv.url,
               "ALPACA_DATA_URL": srv.url, "BAR_CACHE_DIR": str(tmp_path / "bars")}
        r = run_cli("diff", "--journal", str(tmp_path / "live.sqlite"), "--no-progress", "--out",
                    str(tmp_path / "reports"), cwd=tmp_path, env=env)
    finally:
        srv.stop()
    assert r.returncode == 0, r.stderr[-3000:]
    assert "against its backtest replay" in r.stdout and "Decisions that differ:" in r.stdout
    assert "clock-aligned hourly bars" in r.stdout  # the live and the replayed bars are said to differ
    assert (tmp_path / "bars" / "JPM_hour_iex_all.parquet").is_file()
    asked = [q for q in srv.requests if q["path"] == "/v2/stocks/bars" and q["query"].get("timeframe") == "30Min"]
    assert asked, "the replay fetched Alpaca's 30-minute history"
