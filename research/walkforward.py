"""Walk-forward windows: tune on one window, report on the next unseen one (after a gap), roll forward."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Fold:
    number: int
    train_start: date
    train_end: date  # inclusive
    test_start: date
    test_end: date  # inclusive


def folds(start: date, end: date, train_days: int, test_days: int, gap_days: int) -> list[Fold]:
    """Rolling folds over [start, end]: train `train_days`, skip `gap_days`, test `test_days`; the next fold's
    training starts `test_days` later. The test windows follow one another without overlap."""
    if train_days < 1 or test_days < 1 or gap_days < 0:
        raise ValueError("--train-days and --test-days must be at least 1 and --gap-days at least 0")
    out: list[Fold] = []
    t0 = start
    while True:
        train_end = t0 + timedelta(days=train_days - 1)
        test_start = train_end + timedelta(days=gap_days + 1)
        test_end = test_start + timedelta(days=test_days - 1)
        if test_end > end:
            break
        out.append(Fold(len(out) + 1, t0, train_end, test_start, test_end))
        t0 += timedelta(days=test_days)
    if not out:
        raise ValueError(f"{start} .. {end} is too short for one fold of {train_days} training days, a "
                         f"{gap_days}-day gap and {test_days} test days; widen the span or shorten the windows")
    return out
