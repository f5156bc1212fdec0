"""`--data csv:DIR`: one `<SYMBOL>.csv` per symbol, validated with errors that name file, row and problem.

Columns (any case): a time column named date, datetime or timestamp, then open, high, low, close,
volume. Naive times are New York time. The bar size is inferred from the timestamps: one bar per
day is daily data; otherwise the typical gap inside a day (1 minute and 60 minutes are used as they
are; other intraday sizes are resampled to hourly bars and the warning says so). Intraday bars outside
the regular session (09:30-16:00) are dropped with a warning, because Lumibot would treat them as
trading hours.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from marketdata.market import OHLCV, Market
from marketdata.sessions import NY
from trading.settings import SYMBOL_RE

TIME_COLUMNS = ("datetime", "timestamp", "date")
PRICE_COLUMNS = ("open", "high", "low", "close")


class DataError(ValueError):
    """Bad market data: the message names the file, the row and the fix."""


def load_csv_dir(folder: str | Path) -> Market:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--data csv:{folder}: no such folder. Point it at a folder of <SYMBOL>.csv files.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if not files:
        raise DataError(f"--data csv:{folder}: the folder has no .csv files (expected one <SYMBOL>.csv per symbol).")
    for p in files:
        if not SYMBOL_RE.match(p.stem.upper()):
            raise DataError(f"--data csv:{folder}: {p.name} is not named after a stock symbol; name each file "
                            "<SYMBOL>.csv (e.g. AAPL.csv, BRK.B.csv) or move it out of the folder.")
    frames = {p.stem.upper(): read_symbol_csv(p) for p in files}
    sizes = {sym: _bar_minutes(df) for sym, df in frames.items()}
    kinds = {sym: ("day" if m is None else f"{m:g}-minute") for sym, m in sizes.items()}
    if len(set(kinds.values())) > 1:
        listing = ", ".join(f"{s}.csv {k}" for s, k in kinds.items())
        raise DataError(f"--data csv:{folder}: files mix bar sizes ({listing}); use one bar size for all files.")
    minutes = next(iter(sizes.values()))
    warnings: list[str] = []
    if minutes is None:
        timestep, period = "day", pd.Timedelta(days=1)
        frames = {s: df.set_axis(df.index.normalize()) for s, df in frames.items()}
    else:
        dropped = 0
        for sym, df in frames.items():
            rth = regular_session(df)
            dropped += len(df) - len(rth)
            frames[sym] = rth
        if dropped:
            warnings.append(f"dropped {dropped} bar(s) outside the regular session 09:30-16:00 New York time")
        if minutes == 1:
            timestep, period = "minute", pd.Timedelta(minutes=1)
        elif minutes == 60:
            timestep, period = "hour", pd.Timedelta(hours=1)
        else:
            frames = {s: to_hourly(df) for s, df in frames.items()}
            timestep, period = "hour", pd.Timedelta(hours=1)
            warnings.append(f"{minutes:g}-minute bars were resampled to hourly bars (Lumibot simulates minute, hour "
                            "or day bars)")
    empty = [s for s, df in frames.items() if df.empty]
    if empty:
        raise DataError(f"--data csv:{folder}: no regular-session bars left in {', '.join(e + '.csv' for e in empty)}.")
    return Market(frames, timestep, period, f"csv:{folder}", tuple(warnings))


def read_symbol_csv(path: Path) -> pd.DataFrame:
    name = path.name
    try:
        raw = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{name}: cannot be read as CSV ({exc}).") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    time_col = next((c for c in TIME_COLUMNS if c in raw.columns), None)
    if time_col is None:
        raise DataError(f"{name}: no time column; name one of {', '.join(TIME_COLUMNS)} "
                        f"(found: {', '.join(raw.columns)}).")
    missing = [c for c in OHLCV if c not in raw.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {', '.join(missing)} (found: {', '.join(raw.columns)}).")
    if raw.empty:
        raise DataError(f"{name}: has a header but no rows.")

    def row(i: int) -> int:  # 1-based line number in the file, the header being line 1
        return int(i) + 2

    try:
        with warnings.catch_warnings():  # mixed offsets are handled below (_to_new_york)
            warnings.simplefilter("ignore", FutureWarning)
            times = pd.to_datetime(raw[time_col], errors="coerce", utc=False, format="mixed")
    except ValueError:  # pandas refuses a column that mixes UTC offsets
        raise DataError(f"{name}: timestamps mix time zones; use one zone (or naive New York times).") from None
    bad = np.flatnonzero(times.isna().to_numpy())
    if len(bad):
        i = bad[0]
        raise DataError(f"{name}, row {row(i)}: {time_col} {raw[time_col].iloc[i]!r} is not a date/time.")
    times = _to_new_york(times, name)
    for col in OHLCV:
        values = pd.to_numeric(raw[col], errors="coerce")
        nan = np.flatnonzero((values.isna() | ~np.isfinite(values.astype(float))).to_numpy())
        if len(nan):
            i = nan[0]
            raise DataError(f"{name}, row {row(i)}: {col} is empty or not a finite number ({str(raw[col].iloc[i])!r}).")
        raw[col] = values.astype(float)
    for col in PRICE_COLUMNS:
        nonpos = np.flatnonzero((raw[col] <= 0).to_numpy())
        if len(nonpos):
            i = nonpos[0]
            raise DataError(f"{name}, row {row(i)}: {col} = {raw[col].iloc[i]:g} is not a positive price.")
    neg = np.flatnonzero((raw["volume"] < 0).to_numpy())
    if len(neg):
        raise DataError(f"{name}, row {row(neg[0])}: volume = {raw['volume'].iloc[neg[0]]:g} is negative.")
    inverted = np.flatnonzero((raw["high"] < raw["low"]).to_numpy())
    if len(inverted):
        i = inverted[0]
        raise DataError(f"{name}, row {row(i)}: high {raw['high'].iloc[i]:g} is below low {raw['low'].iloc[i]:g}.")
    steps = np.diff(pd.DatetimeIndex(times).asi8)
    dup = np.flatnonzero(steps == 0)
    back = np.flatnonzero(steps < 0)
    if len(dup) and (not len(back) or dup[0] < back[0]):
        i = dup[0] + 1
        raise DataError(f"{name}, row {row(i)}: duplicate timestamp {times.iloc[i]} (also on row {row(i - 1)}).")
    if len(back):
        i = back[0] + 1
        raise DataError(f"{name}, row {row(i)}: timestamps are not sorted ({times.iloc[i]} comes after "
                        f"{times.iloc[i - 1]}); sort the file by time.")
    df = raw[list(OHLCV)].copy()
    df.index = pd.DatetimeIndex(times, name="datetime")
    return df


def _to_new_york(times: pd.Series, name: str) -> pd.Series:
    if times.dtype == object:
        # offsets that differ (New York's -05:00 and -04:00 across daylight saving, as pandas writes a New York
        # index) are instants all the same; a mix of naive and aware values is not
        if all(getattr(t, "tzinfo", None) is not None for t in times):
            return pd.to_datetime(times, utc=True).dt.tz_convert(NY)
        raise DataError(f"{name}: timestamps mix naive and zoned values; use one form (or naive New York times).")
    if getattr(times.dt, "tz", None) is not None:
        return times.dt.tz_convert(NY)
    return times.dt.tz_localize(NY, ambiguous="NaT", nonexistent="shift_forward")


def _bar_minutes(df: pd.DataFrame) -> float | None:
    """None for daily data, else the median gap in minutes between bars of the same day."""
    days = df.index.normalize()
    if not days.duplicated().any():
        return None
    gaps = pd.Series(df.index).diff()[pd.Series(days).duplicated().to_numpy()]
    return float(gaps.median().total_seconds() / 60)


def regular_session(df: pd.DataFrame) -> pd.DataFrame:
    minutes = df.index.hour * 60 + df.index.minute
    return df[(minutes >= 9 * 60 + 30) & (minutes < 16 * 60)]


def to_hourly(df: pd.DataFrame) -> pd.DataFrame:
    """Hourly bars anchored at 09:30 (09:30, 10:30, ... 15:30), stamped at their start, in wall-clock time."""
    since_open = (df.index.hour * 60 + df.index.minute) - (9 * 60 + 30)
    label = df.index.normalize() + pd.to_timedelta(9 * 60 + 30 + (since_open // 60) * 60, unit="min")
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    out = df.groupby(label).agg(agg)
    out.index.name = "datetime"
    return out
