"""research.idle: where the return goes, measured on the real daily bars (data/daily, 2016-2017 only)."""

import pandas as pd
import pandas_ta_classic as ta
import pytest

from research.idle import main
from tests.conftest import ROOT

DATA = ROOT / "data" / "daily"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("idle")
    assert main(["--data", f"csv:{DATA}", "--start", "2016-01-04", "--end", "2017-12-29", "--out", str(out)]) == 0
    (folder,) = out.iterdir()
    return folder, (folder / "where_the_return_goes.txt").read_text()


def test_candidate_shares_are_the_share_of_bars_below_the_oversold_level(report):
    _, text = report
    bars = pd.read_csv(DATA / "AMD.csv", parse_dates=["date"]).set_index("date")
    rsi = ta.rsi(bars["close"], length=14)
    share = float((rsi["2016-01-04":"2017-12-29"] < 30).mean())
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("AMD "))
    assert float(line.split()[1].rstrip("%")) == pytest.approx(share * 100, abs=0.05)


def test_exits_say_what_followed_them(report):
    folder, text = report
    from trading.records.journal import Journal

    trades = Journal(folder / "journal.sqlite").frame("closed_trades")
    assert len(trades) > 5
    assert "How trades ended" in text and "next_20_bars" in text
    for reason, n in trades["exit_reason"].value_counts().items():
        assert any(ln.split()[:2] == [reason, str(n)] for ln in text.splitlines()), reason
    cash = float(text.split("In cash (no position at all): ")[1].split("%")[0])
    assert 0 < cash < 100
