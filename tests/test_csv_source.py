"""`--data csv:DIR`: good files load, bad files are rejected naming file, row and problem."""

import pandas as pd
import pytest

from marketdata.csv_source import DataError, load_csv_dir


def write(folder, name, text):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)


def hourly_rows(day="2024-03-04", start_price=100.0, extra=""):
    times = ["09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"]
    rows = [f"{day} {t},{start_price + i},{start_price + i + 1},{start_price + i - 1},{start_price + i + 0.5},1000"
            for i, t in enumerate(times)]
    return "\n".join(rows) + extra


def test_hourly_csv_with_any_case_columns_loads_as_new_york_time(tmp_path):
    write(tmp_path, "aapl.csv", "Datetime,Open,HIGH,low,Close,Volume\n" + hourly_rows())
    m = load_csv_dir(tmp_path)
    df = m.bars["AAPL"]
    assert m.timestep == "hour" and m.bar_period == pd.Timedelta(hours=1)
    assert str(df.index.tz) == "America/New_York" and df.index[0].hour == 9 and len(df) == 7


def test_daily_data_is_detected(tmp_path):
    write(tmp_path, "MSFT.csv", "date,open,high,low,close,volume\n2024-03-04,1,2,0.5,1.5,10\n"
                                "2024-03-05,1,2,0.5,1.5,10\n")
    m = load_csv_dir(tmp_path)
    assert m.timestep == "day" and m.bar_period == pd.Timedelta(days=1)


def test_utc_timestamps_and_extended_hours_are_handled(tmp_path):
    rows = ["timestamp,open,high,low,close,volume",
            "2024-03-04T13:30:00Z,1,2,0.5,1.5,10",  # 08:30 New York: pre-market, dropped
            "2024-03-04T14:30:00Z,1,2,0.5,1.5,10", "2024-03-04T15:30:00Z,1,2,0.5,1.5,10"]
    write(tmp_path, "KO.csv", "\n".join(rows) + "\n")
    m = load_csv_dir(tmp_path)
    assert list(m.bars["KO"].index.strftime("%H:%M")) == ["09:30", "10:30"]
    assert any("outside the regular session" in w for w in m.warnings)


def test_five_minute_bars_are_resampled_to_hourly(tmp_path):
    times = pd.date_range("2024-03-04 09:30", "2024-03-04 15:55", freq="5min")
    text = "datetime,open,high,low,close,volume\n" + "\n".join(f"{t},10,11,9,10.5,5" for t in times)
    write(tmp_path, "PEP.csv", text + "\n")
    m = load_csv_dir(tmp_path)
    df = m.bars["PEP"]
    assert m.timestep == "hour" and len(df) == 7 and df["volume"].iloc[0] == 60
    assert any("resampled" in w for w in m.warnings)


@pytest.mark.parametrize("text, message", [
    ("time,open,high,low,close,volume\n2024-01-02,1,2,0.5,1,1\n", "AAPL.csv: no time column"),
    ("date,open,high,low,volume\n2024-01-02,1,2,0.5,1\n", "AAPL.csv: missing column(s) close"),
    ("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1,1\n2024-01-02,1,2,0.5,1,1\n",
     "AAPL.csv, row 3: duplicate timestamp"),
    ("date,open,high,low,close,volume\n2024-01-03,1,2,0.5,1,1\n2024-01-02,1,2,0.5,1,1\n",
     "AAPL.csv, row 3: timestamps are not sorted"),
    ("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1,1\n2024-01-03,1,2,0.5,,1\n",
     "AAPL.csv, row 3: close is empty or not a finite number"),
    ("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1,1\n2024-01-03,1,2,0.5,-4,1\n",
     "AAPL.csv, row 3: close = -4 is not a positive price"),
    ("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1,1\nnot-a-date,1,2,0.5,1,1\n",
     "AAPL.csv, row 3: date 'not-a-date' is not a date/time"),
    ("date,open,high,low,close,volume\n2024-01-02,1,0.4,0.5,1,1\n", "AAPL.csv, row 2: high 0.4 is below low 0.5"),
    ("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1,1\n2024-01-03,1,inf,0.5,1,1\n",
     "AAPL.csv, row 3: high is empty or not a finite number ('inf')"),
])
def test_bad_files_name_file_row_and_problem(tmp_path, text, message):
    write(tmp_path, "AAPL.csv", text)
    with pytest.raises(DataError) as err:
        load_csv_dir(tmp_path)
    assert message in str(err.value)


def test_a_file_not_named_after_a_symbol_is_rejected(tmp_path):
    write(tmp_path, "AAPL.csv", "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1,1\n")
    write(tmp_path, "my notes.csv", "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1,1\n")
    with pytest.raises(DataError, match=r"my notes\.csv is not named after a stock symbol"):
        load_csv_dir(tmp_path)


def test_mixed_bar_sizes_and_empty_folders_are_rejected(tmp_path):
    write(tmp_path, "A.csv", "datetime,open,high,low,close,volume\n" + hourly_rows())
    write(tmp_path, "B.csv", "date,open,high,low,close,volume\n2024-03-04,1,2,0.5,1,1\n2024-03-05,1,2,0.5,1,1\n")
    with pytest.raises(DataError, match="mix bar sizes"):
        load_csv_dir(tmp_path)
    with pytest.raises(DataError, match=r"no \.csv files"):
        (tmp_path / "empty").mkdir()
        load_csv_dir(tmp_path / "empty")
    with pytest.raises(DataError, match="no such folder"):
        load_csv_dir(tmp_path / "missing")


def test_new_york_times_written_by_pandas_across_daylight_saving_load(tmp_path):
    """pandas writes a New York index with -05:00 in winter and -04:00 in summer: one zone, two offsets. It used
    to end in a traceback (AttributeError from the .dt accessor on an object column)."""
    idx = pd.DatetimeIndex(["2024-03-08 15:30", "2024-03-11 09:30", "2024-03-11 10:30"], tz="America/New_York")
    pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10}, index=idx) \
        .rename_axis("datetime").to_csv(tmp_path / "SPY.csv")
    assert "-05:00" in (tmp_path / "SPY.csv").read_text() and "-04:00" in (tmp_path / "SPY.csv").read_text()
    df = load_csv_dir(tmp_path).bars["SPY"]
    assert list(df.index) == list(idx) and str(df.index.tz) == "America/New_York"


def test_naive_and_zoned_timestamps_mixed_are_refused(tmp_path):
    write(tmp_path, "SPY.csv", "datetime,open,high,low,close,volume\n2024-03-08 15:30:00-05:00,1,2,0.5,1.5,10\n"
                               "2024-03-11 09:30:00,1,2,0.5,1.5,10\n")
    with pytest.raises(DataError, match="mix naive and zoned"):
        load_csv_dir(tmp_path)
