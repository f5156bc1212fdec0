#!/usr/bin/env python
"""Build and check data/daily/*.csv: real daily bars (Yahoo Finance, split-adjusted) up to 2018-12-31.

Usage (from the repository root):
    .venv/bin/python data/daily/build.py            # rebuild the CSVs from the source snapshots, then check
    .venv/bin/python data/daily/build.py --check    # only check the CSVs already in data/daily/
                                                    # (cross-checks against the sources run when they are present)

The sources are public GitHub repositories read at a fixed commit with `git show COMMIT:PATH` from bare
mirrors under $MIRROR_ROOT (default /work/.mirror, layout <owner>+<name>/repo). To get them elsewhere:
    git clone https://github.com/<owner>/<name> && git -C <name> checkout <commit>
and point MIRROR_ROOT at a folder holding <owner>+<name>/repo -> that clone. See README.md beside this file.

HARD RULE: nothing dated after CUTOFF (2018-12-31) is ever kept, printed or summarised. Source rows after the
cutoff are dropped right after parsing, before any other step looks at them.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
MIRROR_ROOT = Path(os.environ.get("MIRROR_ROOT", "/work/.mirror"))
CUTOFF = pd.Timestamp("2018-12-31")
START = pd.Timestamp("2000-01-03")  # first NYSE session of 2000; keeps the folder < 25 MB (see README)
COLUMNS = ["date", "open", "high", "low", "close", "volume"]
PRICES = ["open", "high", "low", "close"]

# ---------------------------------------------------------------------------------------------- sources
# Every primary source is Yahoo Finance's daily download (Date,Open,High,Low,Close,Adj Close,Volume):
# Open..Close are split-adjusted (not dividend-adjusted) as of the download date, Volume is split-adjusted too.
SOURCES = {
    "yahoo-bluefin": dict(repo="Bluefin-Tuna/Yahoo-Finance-Historical-Data",
                          commit="8b34492b150d8478d353d7441e36978e1b3092e2", path="{sym}.csv", kind="yahoo",
                          note="Yahoo Finance download, last bar 2020-12-11"),
    "yahoo-xjcarter": dict(repo="xjcarter/data", commit="7d705ada2d3ca483700eb695772e7de9cfc75cbc",
                           path="{sym}.csv", kind="yahoo", note="Yahoo Finance download, last bar 2022-11-18"),
    "yahoo-borsboomT": dict(repo="borsboomT/dca_v_lump_v_dip", commit="ffce23f953e20f8056a2f484fb1e9dad6f800a28",
                            path="{sym}.csv", kind="yahoo", note="Yahoo Finance download, last bar 2022-05-03"),
    # cross-check only: Alpha Vantage TIME_SERIES_DAILY_ADJUSTED (raw OHLC + split_coefficient + dividend_amount)
    "alphavantage-tareqalyousef": dict(repo="tareqalyousef/Backtester",
                                       commit="be9aa1ee45bbc4f9950289c0e5dbdf4187bd191d", path="data/{sym}.csv",
                                       kind="alphavantage", note="Alpha Vantage download, last bar 2020-12-11"),
}

ETFS = [("SPY", "yahoo-xjcarter"), ("QQQ", "yahoo-bluefin"), ("SH", "yahoo-borsboomT"),
        ("SPXS", "yahoo-xjcarter"), ("SQQQ", "yahoo-bluefin")]
CORE = "AAPL MSFT GOOGL NVDA TSLA AMZN META AMD JPM XOM UNH COST NFLX AVGO INTC ADBE PEP CSCO".split()
# S&P 100 members (2018) with Yahoo history in the same snapshot, minus the ones listed in EXCLUDED.
EXTRA = ("ABBV ACN ALL AMGN BA BAC BIIB BKNG BLK CAT CL CMCSA COF CRM CVS CVX EMR EXC FDX GD GE GILD GM GS HD "
         "IBM JNJ KHC KMI KO LLY LMT LOW MA MCD MDT MMM NEE NKE ORCL PFE PG PM PYPL QCOM SBUX SLB T TGT "
         "TXN UNP UPS V WBA WFC WMT").split()
SOURCE_SYMBOL = {"META": "FB"}  # file name -> ticker in the source (Meta traded as FB until 2022)

# Left out on purpose (documented in README.md): a spin-off or other non-cash distribution between 2000 and
# 2018 that Yahoo either folded into the prices as if it were a split (a non-split factor) or left as a
# one-day drop, so a "split-adjusted" series would be inconsistent across symbols.
EXCLUDED = {
    "ABT": "2013-01-02 AbbVie spin-off folded in as a split factor", "AXP": "2005-10-03 Ameriprise spin-off folded in",
    "BK": "2007-07-02 Mellon merger exchange folded in", "BMY": "2001-08-07 Zimmer spin-off folded in",
    "COP": "2012-05-01 Phillips 66 spin-off folded in", "DHR": "2016-07-05 Fortive spin-off folded in",
    "DIS": "2007-06-13 ABC Radio spin-off folded in", "DUK": "2007-01-03 Spectra Energy spin-off folded in",
    "F": "2000 Visteon spin-off / recapitalisation folded in", "OXY": "2014-12-01 California Resources folded in",
    "SO": "2001-04-03 Mirant spin-off folded in", "SPG": "2014-05-29 Washington Prime spin-off folded in",
    "USB": "2000 merger factors folded in", "VZ": "2006/2010 Idearc and Frontier spin-offs folded in",
    "MO": "2007-04-02 Kraft and 2008-03-31 Philip Morris Intl spin-offs left as -23%/-70% one-day drops",
    "MDLZ": "2012-10-02 Kraft Foods Group spin-off left as a -34% drop",
    "MS": "2007-07-02 Discover spin-off left as a drop", "MET": "2017-08-07 Brighthouse spin-off left as a drop",
    "AIG": "2011-01-20 warrant distribution left as a drop", "C": "2002-08-21 Travelers spin-off left as a drop",
    "MRK": "2003-08-20 Medco spin-off left as a drop", "TMO": "2001 Kadant/Viasys spin-offs left as drops",
    "HON": "2016-10-03 AdvanSix spin-off folded in (0.5% factor)",
    "CHTR": "thin post-bankruptcy trading in 2010 (18 zero-volume bars)",
    "GOOG": "duplicate of GOOGL before 2014-03-27", "BRK.B": "not in the snapshot",
}

# One-day close-to-close moves beyond -45% / +80% that are real (checked against the news of the day).
KNOWN_MOVES = {
    ("AAPL", "2000-09-29"): "real: Apple's profit warning, the stock lost about half its value in a day",
}

# Splits (and split-like events) to verify: the adjusted series must have no jump there.
KNOWN_SPLITS = [("GOOGL", "2014-04-03", "class C share dividend, ~2:1; Alpha Vantage books it as cash"),
                ("TSLA", None, "no split before 2019; 5:1 in 2020 is in the prices"),
                ("META", None, "no split"), ("AMZN", None, "no split 2000-2018")]

# Second opinions: (output symbol, source, ticker there).
CROSS = [("SPY", "yahoo-borsboomT", "SPY"), ("QQQ", "yahoo-xjcarter", "QQQ"), ("SQQQ", "yahoo-xjcarter", "SQQQ")]


def symbols() -> list[tuple[str, str, str]]:
    """(file symbol, source key, ticker in the source)."""
    out = [(s, src, s) for s, src in ETFS]
    out += [(s, "yahoo-bluefin", SOURCE_SYMBOL.get(s, s)) for s in CORE + EXTRA]
    return out


# ---------------------------------------------------------------------------------------------- reading
def git_dir(repo: str) -> Path | None:
    base = MIRROR_ROOT / repo.replace("/", "+") / "repo"
    for cand in (base, base / ".git"):
        if (cand / "HEAD").exists() and (cand / "objects").exists():
            return cand
    return None


def git_text(src: str, ticker: str) -> str | None:
    cfg = SOURCES[src]
    gd = git_dir(cfg["repo"])
    if gd is None:
        return None
    spec = f"{cfg['commit']}:{cfg['path'].format(sym=ticker)}"
    res = subprocess.run(["git", "--git-dir", str(gd), "show", spec], capture_output=True, text=True)
    return res.stdout if res.returncode == 0 and res.stdout else None


def read_source(src: str, ticker: str) -> pd.DataFrame | None:
    """The source's bars up to CUTOFF, columns open/high/low/close/volume (+ split/dividend for Alpha Vantage).

    Rows after CUTOFF are dropped here, first thing, before anything else looks at them."""
    text = git_text(src, ticker)
    if text is None:
        return None
    raw = pd.read_csv(io.StringIO(text), na_values=["null", "NaN", ""])
    raw.columns = [c.strip().lower().replace(" ", "_") for c in raw.columns]
    tcol = "date" if "date" in raw.columns else "timestamp"
    raw["date"] = pd.to_datetime(raw[tcol], format="%Y-%m-%d")
    raw = raw[raw["date"] <= CUTOFF]  # <- the 2018-12-31 cut
    raw = raw.sort_values("date").set_index("date")
    if SOURCES[src]["kind"] == "alphavantage":
        return adjust_alphavantage(raw)
    return raw[["open", "high", "low", "close", "volume"]]


def adjust_alphavantage(raw: pd.DataFrame) -> pd.DataFrame:
    """Split-adjust Alpha Vantage's raw bars with its split_coefficient column (splits up to CUTOFF only)."""
    coef = raw["split_coefficient"].astype(float)
    factor = coef[::-1].cumprod()[::-1].shift(-1).fillna(1.0)  # product of the coefficients of later splits
    out = pd.DataFrame({c: raw[c] / factor for c in PRICES})
    out["volume"] = raw["volume"] * factor
    out["split"] = coef
    out["dividend"] = raw["dividend_amount"]
    return out


# ---------------------------------------------------------------------------------------------- building
def fmt_price(x: float) -> str:
    return np.format_float_positional(x, precision=6, unique=False, fractional=False, trim="-")


def clean(df: pd.DataFrame, log: list[str]) -> pd.DataFrame:
    df = df[df.index >= START]
    n = len(df)
    df = df.dropna()
    if len(df) != n:
        log.append(f"dropped {n - len(df)} row(s) with empty fields")
    sessions = nyse_sessions(df.index[0], CUTOFF)
    off = df.index.difference(sessions)
    if len(off):
        log.append(f"dropped {len(off)} non-session date(s): {', '.join(str(d.date()) for d in off)}")
        df = df.drop(off)
    df = df.copy()
    # Round first (6 significant digits, as written), then widen high/low to cover open/close.
    for c in PRICES:
        df[c] = df[c].map(lambda v: float(fmt_price(v)))
    hi = df[PRICES].max(axis=1)
    lo = df[PRICES].min(axis=1)
    fixed = int(((df["high"] < hi) | (df["low"] > lo)).sum())
    if fixed:
        log.append(f"widened high/low on {fixed} bar(s) to cover open/close")
    df["high"], df["low"] = hi, lo
    df["volume"] = df["volume"].round().astype("int64")
    return df


def write_csv(df: pd.DataFrame, path: Path) -> None:
    lines = ["date,open,high,low,close,volume"]
    for d, o, h, lo, c, v in zip(df.index.strftime("%Y-%m-%d"), df["open"], df["high"], df["low"], df["close"],
                                  df["volume"], strict=True):
        lines.append(f"{d},{fmt_price(o)},{fmt_price(h)},{fmt_price(lo)},{fmt_price(c)},{int(v)}")
    path.write_text("\n".join(lines) + "\n")


_SESSIONS: dict = {}


def nyse_sessions(start, end) -> pd.DatetimeIndex:
    key = (pd.Timestamp(start), pd.Timestamp(end))
    if key not in _SESSIONS:
        try:
            import pandas_market_calendars as mcal
            days = mcal.get_calendar("NYSE").valid_days(key[0], key[1])
            _SESSIONS[key] = pd.DatetimeIndex(days.tz_localize(None)).normalize()
        except ImportError:  # fall back to SPY's own dates
            spy = pd.read_csv(HERE / "SPY.csv", parse_dates=["date"])["date"]
            _SESSIONS[key] = pd.DatetimeIndex(spy[(spy >= key[0]) & (spy <= key[1])])
    return _SESSIONS[key]


def build() -> dict[str, list[str]]:
    logs: dict[str, list[str]] = {}
    for sym, src, ticker in symbols():
        df = read_source(src, ticker)
        if df is None:
            sys.exit(f"{sym}: cannot read {SOURCES[src]['repo']}@{SOURCES[src]['commit'][:10]} "
                     f"{SOURCES[src]['path'].format(sym=ticker)} under {MIRROR_ROOT}")
        log: list[str] = []
        df = clean(df, log)
        write_csv(df, HERE / f"{sym}.csv")
        logs[sym] = log
    return logs


# ---------------------------------------------------------------------------------------------- checks
def load_out(sym: str) -> pd.DataFrame:
    df = pd.read_csv(HERE / f"{sym}.csv", dtype={"date": str})
    return df


def check_file(sym: str, problems: list[str]) -> dict:
    raw = load_out(sym)
    p = problems
    if list(raw.columns) != COLUMNS:
        p.append(f"{sym}: columns {list(raw.columns)}")
    if not raw["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all():
        p.append(f"{sym}: a date is not YYYY-MM-DD")
    d = pd.to_datetime(raw["date"], format="%Y-%m-%d")
    if d.max() > CUTOFF:
        p.append(f"{sym}: has bars after {CUTOFF.date()}")  # never printed further
    if not d.is_monotonic_increasing or d.duplicated().any():
        p.append(f"{sym}: dates not strictly ascending")
    if raw[COLUMNS[1:]].isna().any().any() or not np.isfinite(raw[COLUMNS[1:]].to_numpy(float)).all():
        p.append(f"{sym}: NaN or inf")
    if (raw[PRICES] <= 0).any().any():
        p.append(f"{sym}: non-positive price")
    oc = raw[["open", "close"]]
    if (raw["high"] < oc.max(axis=1)).any() or (raw["low"] > oc.min(axis=1)).any():
        p.append(f"{sym}: high/low do not cover open/close")
    if (raw["volume"] < 0).any() or (raw["volume"] != raw["volume"].round()).any():
        p.append(f"{sym}: volume negative or fractional")
    sessions = nyse_sessions(d.iloc[0], CUTOFF)
    idx = pd.DatetimeIndex(d)
    missing = sessions.difference(idx)
    extra = idx.difference(sessions)
    if len(extra):
        p.append(f"{sym}: {len(extra)} bar(s) on non-NYSE days")
    ret = raw["close"].pct_change()
    jumps = np.flatnonzero(((ret < -0.45) | (ret > 0.80)).to_numpy())
    big = [(raw["date"].iloc[i], float(ret.iloc[i])) for i in jumps]
    for day, r in big:
        if (sym, day) not in KNOWN_MOVES:
            p.append(f"{sym}: unexplained one-day move {r:+.1%} on {day}")
    return dict(rows=len(raw), first=raw["date"].iloc[0], last=raw["date"].iloc[-1], missing=len(missing),
                extra=len(extra), zero_vol=int((raw["volume"] == 0).sum()), big=big,
                zero_dates=list(raw.loc[raw["volume"] == 0, "date"]),
                bytes=(HERE / f"{sym}.csv").stat().st_size)


def cross_check(sym: str, src: str, ticker: str) -> dict | None:
    """Compare our closes with a second source: constant factor (split basis) and the relative differences."""
    other = read_source(src, ticker)
    if other is None:
        return None
    ours = load_out(sym)
    ours = ours.set_index(pd.to_datetime(ours["date"]))
    j = ours[["close"]].join(other.rename(columns=lambda c: c + "_2"), how="inner")
    if sym == "GOOGL" and "dividend_2" in j:  # Alpha Vantage books the 2014 class-C share dividend as cash
        event = pd.Timestamp("2014-04-03")
        prev = j.loc[j.index < event, "close_2"].iloc[-1]
        k = prev / (prev - j.loc[event, "dividend_2"])
        j.loc[j.index < event, "close_2"] /= k
    ratio = j["close_2"] / j["close"]
    factor = float(ratio.iloc[-250:].median())
    ours_vol = ours["volume"].reindex(j.index)
    vol = (j["volume_2"] * factor / ours_vol.where(ours_vol > 0)).median()  # ~1 when volume is split-adjusted alike
    rel = (ratio / factor - 1).abs()
    bad = rel[rel > 0.01]
    # A change of the ratio's level that persists = a non-split factor in one source only (e.g. a spin-off
    # booked as a split). Rolling median over 41 days, shifts above 0.2 %, one entry per 60-day cluster.
    lvl = ratio.rolling(41, center=True, min_periods=10).median()
    jump = (lvl / lvl.shift(1) - 1).abs()
    shifts, last = [], None
    for d in jump.index[jump > 0.002]:
        if last is None or (d - last).days > 60:
            shifts.append(str(d.date()))
        last = d
    av_flat = None
    if "split_2" in j:  # Alpha Vantage's known defect: a bar with open = high = low = close (a stale print)
        b = j.loc[bad.index]
        flat = (b["open_2"] == b["high_2"]) & (b["high_2"] == b["low_2"]) & (b["low_2"] == b["close_2"])
        av_flat = int(flat.sum())
    return dict(src=src, overlap=len(j), factor=factor, max_rel=float(rel.max()), at=str(rel.idxmax().date()),
                n1=int((rel > 0.01).sum()), n05=int((rel > 0.005).sum()), med=float(rel.median()), av_flat=av_flat,
                shifts=shifts, vol=float(vol))


def split_checks() -> list[str]:
    """Every split Alpha Vantage records for our symbols (2000..CUTOFF), plus KNOWN_SPLITS: our series must be
    continuous there (an unadjusted 2:1 split would show as a -50% close-to-close move)."""
    events = {(sym, day): what for sym, day, what in KNOWN_SPLITS}
    for sym, _, _ in symbols():
        av = read_source("alphavantage-tareqalyousef", SOURCE_SYMBOL.get(sym, sym))
        if av is None:
            continue
        for day, coef in av.loc[(av["split"] != 1.0) & (av.index >= START), "split"].items():
            key = (sym, str(day.date()))
            events.setdefault(key, f"{coef:g}:1" if coef >= 1 else f"1:{1 / coef:g} reverse")
    out = []
    for (sym, day), what in sorted(events.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        df = load_out(sym)
        if day is None:
            r = df["close"].pct_change().abs().max()
            out.append(f"{sym} ({what}): largest one-day |move| in the file {r:.1%}")
            continue
        hit = np.flatnonzero(df["date"].to_numpy() == day)
        if not len(hit):
            out.append(f"{sym} {day} ({what}): NOT IN FILE")
            continue
        i = int(hit[0])
        r = df["close"].iloc[i] / df["close"].iloc[i - 1] - 1
        v = df["volume"].iloc[max(i - 5, 0):i].mean(), df["volume"].iloc[i:i + 5].mean()
        out.append(f"{sym} {day} ({what}): close-to-close {r:+.2%}, mean volume 5 days before/after "
                   f"{v[0]:,.0f}/{v[1]:,.0f}")
    return out


def run_checks() -> int:
    problems: list[str] = []
    files = sorted(p.stem for p in HERE.glob("*.csv"))
    expected = [s for s, _, _ in symbols()]
    if sorted(expected) != files:
        problems.append(f"files differ from the symbol list: extra {sorted(set(files) - set(expected))}, "
                        f"missing {sorted(set(expected) - set(files))}")
    stats = {s: check_file(s, problems) for s in expected if s in files}
    print("## Per-symbol checks (all dates <= 2018-12-31)\n")
    print("| symbol | source | first | last | rows | missing NYSE sessions | zero-volume bars "
          "| moves beyond -45%/+80% |")
    print("|---|---|---|---|---|---|---|---|")
    src_of = {s: src for s, src, _ in symbols()}
    for s in expected:
        if s not in stats:
            continue
        st = stats[s]
        big = "; ".join(f"{d} {r:+.0%}" for d, r in st["big"]) or "-"
        tick = "" if s not in SOURCE_SYMBOL else f" (as {SOURCE_SYMBOL[s]})"
        print(f"| {s} | {src_of[s]}{tick} | {st['first']} | {st['last']} | {st['rows']} | {st['missing']} | "
              f"{st['zero_vol']} | {big} |")
    zv = {s: st["zero_dates"] for s, st in stats.items() if st["zero_dates"] and s != "SQQQ"}
    if zv:
        print("\nZero-volume bars (besides SQQQ's, see README): "
              + "; ".join(f"{s} {', '.join(d)}" for s, d in zv.items()))
    total = sum(st["bytes"] for st in stats.values())
    print(f"\n{len(stats)} files, {sum(st['rows'] for st in stats.values())} rows, {total / 1e6:.1f} MB of CSV")

    print("\n## Splits\n")
    for line in split_checks():
        print("-", line)

    print("\n## Cross-checks against a second source (closes; factor = constant split-basis ratio)\n")
    print("| symbol | second source | overlap rows | factor | median diff | max diff (date) | days > 0.5% | days > 1% "
          "| of which flat AV bars | level shifts | volume ratio x factor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    pairs = [(s, "alphavantage-tareqalyousef", SOURCE_SYMBOL.get(s, s)) for s in expected] + CROSS
    shown = 0
    for sym, src, ticker in pairs:
        if sym not in stats:
            continue
        res = cross_check(sym, src, ticker)
        if res is None:
            continue
        shown += 1
        print(f"| {sym} | {src} | {res['overlap']} | {res['factor']:.4g} | {res['med']:.2e} | "
              f"{res['max_rel']:.2%} ({res['at']}) | {res['n05']} | {res['n1']} | "
              f"{'-' if res['av_flat'] is None else res['av_flat']} | {', '.join(res['shifts']) or '-'} | "
              f"{res['vol']:.3f} |")
    if not shown:
        print("(sources not found under MIRROR_ROOT; cross-checks skipped)")

    print("\n## Problems\n")
    for p in problems:
        print("-", p)
    print("none" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check the CSVs already written")
    args = ap.parse_args()
    if not args.check:
        logs = build()
        print("## Build log\n")
        for sym, log in logs.items():
            for line in log:
                print(f"- {sym}: {line}")
        print()
    sys.exit(run_checks())


if __name__ == "__main__":
    main()
