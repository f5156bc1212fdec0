"""When to retrain (RETRAIN_EVERY), never during market hours, one retrain at a time, and what the last one did.

    python -m models.train --schedule          retrain after each close when due, until stopped
    python -m models.train --schedule --once   one check now (the running bot starts this after the close)

What the last attempt did is written to `retrain.json` beside the champion's card, with an id the bot
reads to say each outcome once (strategies/model_life.py). A retrain that fails, for bad data, too few
candidates or a crash, leaves the champion as it was and says why.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import traceback
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from marketdata.sessions import NY, hourly_bars, in_regular_session, nyse_sessions
from models.registry import ModelStore, fsync_write
from models.retrain import Outcome, retrain

STATE_NAME, LOCK_NAME = "retrain.json", ".retrain.lock"
AFTER_CLOSE = pd.Timedelta(minutes=15)  # the day's last bars settle at the data vendor first
OPEN_MARGIN = pd.Timedelta(minutes=45)  # a retrain is not started this close to the open (it must end before it)


def _aware(at) -> pd.Timestamp:
    t = pd.Timestamp(at)
    return t if t.tzinfo else t.tz_localize(UTC)


def session_state(at: datetime) -> tuple[bool, pd.Timestamp]:
    """(is the regular session open at `at`?, the last close at or before `at`)."""
    t = _aware(at).tz_convert(NY)
    s = nyse_sessions(t.date() - timedelta(days=10), t.date())
    closes = s["market_close"][s["market_close"] <= t]
    last_close = closes.iloc[-1] if len(closes) else pd.Timestamp(t.date() - timedelta(days=10), tz=NY)
    return in_regular_session(t), last_close


def next_run(at: datetime) -> pd.Timestamp:
    """The first moment after `at` at which a scheduled retrain may start: a session's close plus 15 minutes."""
    t = _aware(at).tz_convert(NY)
    s = nyse_sessions(t.date(), t.date() + timedelta(days=10))
    times = s["market_close"] + AFTER_CLOSE
    return times[times > t].iloc[0]


def next_open(at: datetime) -> pd.Timestamp:
    """The next regular session's open after `at`."""
    t = _aware(at).tz_convert(NY)
    s = nyse_sessions(t.date(), t.date() + timedelta(days=10))
    opens = s["market_open"][s["market_open"] > t]
    return opens.iloc[0]


def is_due(every: tuple[str, int] | None, state: dict, at: datetime) -> tuple[bool, str]:
    """Whether RETRAIN_EVERY calls for a retrain at `at`, and why (or why not)."""
    if every is None:
        return False, "RETRAIN_EVERY is empty (scheduled retraining is off)"
    unit, n = every
    last = state.get("at")
    if not last:
        return True, "no retrain has run yet"
    t, last_t = _aware(at), _aware(last)
    if unit == "days":
        s = nyse_sessions(last_t.tz_convert(NY).date(), t.tz_convert(NY).date())
        closed = int(((s["market_close"] > last_t) & (s["market_close"] <= t)).sum())
        return closed >= n, f"{closed} session(s) closed since the last retrain ({last_t:%Y-%m-%d %H:%M}), every {n}"
    end = pd.Timestamp(state.get("data_end") or last_t.date())
    s = nyse_sessions(end.date() + timedelta(days=1), t.tz_convert(NY).date())
    bars = hourly_bars(s[s["market_close"] <= t]) if len(s) else []
    return len(bars) >= n, f"{len(bars)} new hourly bar(s) since the data the last retrain read, every {n}"


def state_path(store: ModelStore) -> Path:
    return store.folder / STATE_NAME


def read_state(store: ModelStore) -> dict:
    try:
        state = json.loads(state_path(store).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(store: ModelStore, outcome: Outcome, at: datetime) -> dict:
    old = read_state(store)
    state = {**outcome.as_dict(), "at": pd.Timestamp(at).isoformat(), "id": uuid.uuid4().hex,
             "data_end": outcome.data_end or old.get("data_end")}
    store.folder.mkdir(parents=True, exist_ok=True)
    tmp = state_path(store).with_suffix(".tmp")
    fsync_write(tmp, json.dumps(state, indent=2).encode())
    os.replace(tmp, state_path(store))
    return state


def run_once(settings, at: datetime | None = None, force: bool = False, say=print, market=None) -> Outcome:
    """One scheduled check: skip during market hours or when not due; else retrain on the latest data. The
    outcome is written to retrain.json (except a skip) and returned. `market`: the bars to use (tests)."""
    at = _aware(at or datetime.now(UTC))
    store = ModelStore(settings.model_path, settings.models_kept)
    open_now, last_close = session_state(at)
    if open_now:
        return Outcome("skipped", f"the market is open at {at.tz_convert(NY):%Y-%m-%d %H:%M} New York: retraining "
                       f"waits for the close (next after {next_run(at):%Y-%m-%d %H:%M})")
    opens = next_open(at)
    if opens - at < OPEN_MARGIN:
        return Outcome("skipped", f"the market opens at {opens.tz_convert(NY):%Y-%m-%d %H:%M} New York, too soon to "
                       "retrain before it (the next chance is after the close)")
    store.folder.mkdir(parents=True, exist_ok=True)
    with open(store.folder / LOCK_NAME, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Outcome("skipped", "another retrain is running (its lock is held)")
        due, why = is_due(settings.retrain_every, read_state(store), at)  # under the lock: one that just ended counts
        if not (due or force):
            return Outcome("skipped", f"not due: {why}")
        outcome = _attempt(settings, store, last_close.date(), say, market)
        write_state(store, outcome, at)
    return outcome


def failed(why: str, store: ModelStore, t0: float) -> Outcome:
    return Outcome("failed", f"{why}; the champion {store.champion_version() or '(none)'} stays",
                   champion=store.champion_version(), seconds=time.perf_counter() - t0)


def _attempt(settings, store: ModelStore, end: date, say, market) -> Outcome:
    from backtest.runner import BacktestConfig, load_market
    from marketdata.csv_source import DataError
    from models.dataset import TrainingError
    from trading.settings import SettingsError

    t0 = time.perf_counter()
    start = end - timedelta(days=settings.retrain_window_days)
    try:
        if market is None:
            config = BacktestConfig(data=settings.retrain_data, start=start, end=end, timeframe="hour")
            market, start, end = load_market(config, settings)
        say(f"Retraining on {market.source}, {start} .. {end} (RETRAIN_EVERY, RETRAIN_WINDOW_DAYS="
            f"{settings.retrain_window_days}).")
        return retrain(settings, market, start, end, store, say=say)
    except (DataError, TrainingError, SettingsError, ValueError) as exc:
        return failed("no challenger: " + " ".join(line.strip() for line in str(exc).splitlines()), store, t0)
    except Exception as exc:  # noqa: BLE001  a crash: the champion stays, the reason said once, the trace kept
        trace = store.folder / "retrain-error.txt"
        trace.write_text(traceback.format_exc())
        return failed(f"the retrain crashed ({type(exc).__name__}: {exc}; trace in {trace})", store, t0)


def loop(settings, say=print, sleep=time.sleep) -> None:  # pragma: no cover - runs until stopped
    """python -m models.train --schedule: wait for each close, retrain when due."""
    while True:
        when = next_run(datetime.now(UTC))
        say(f"next scheduled check: {when:%Y-%m-%d %H:%M} New York")
        while (left := (when - pd.Timestamp.now(tz=UTC)).total_seconds()) > 0:
            sleep(min(left, 600))
        say(run_once(settings, say=say).line())


def life_line(settings) -> str | None:
    """One line on the champion and the last retrain, read from the files beside MODEL_PATH (no bot needed);
    None when there is neither."""
    store = ModelStore(settings.model_path, settings.models_kept)
    card, state = store.champion(), read_state(store)
    if card is None and not state:
        return None
    w = (card or {}).get("training_window") or {}
    parts = [f"champion {store.champion_version()} (trained on {w.get('start', '?')} .. {w.get('end', '?')})"
             if card else "no champion (rule-based score)"]
    if state:
        parts.append(f"last retrain {str(state.get('at', '?'))[:16]}: {state.get('outcome')}")
    every = settings.retrain_every
    parts.append(f"RETRAIN_EVERY={every.text()}" if every else "scheduled retraining off (RETRAIN_EVERY empty)")
    return "model: " + "; ".join(parts)
