"""Walk-forward validation on the market's bar timeline: expanding windows, a purge gap, no shuffling.

Folds come from scikit-learn's TimeSeriesSplit over bar positions with `gap >= horizon`, so every
test bar is later than every training bar plus the gap, and no training label (which looks `horizon`
bars ahead) can see a test bar.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import TimeSeriesSplit


@dataclass(frozen=True)
class Fold:
    number: int
    train_bars: tuple[int, int]  # [start, end) in bar positions
    test_bars: tuple[int, int]


def walk_forward(n_bars: int, n_splits: int, gap: int) -> list[Fold]:
    """ValueError when the first fold would have no training bars: TimeSeriesSplit's test folds are
    n_bars // (n_splits + 1) bars each, and the gap comes out of the first training window."""
    if n_splits < 2:
        raise ValueError(f"{n_splits} fold(s): walk-forward needs at least 2")
    first_train = n_bars - gap - (n_bars // (n_splits + 1)) * n_splits
    if first_train < 2 or n_bars // (n_splits + 1) < 1:
        raise ValueError(f"{n_bars} bars are too few for {n_splits} folds with a gap of {gap} bars (the first "
                         f"fold would train on {max(first_train, 0)} bars)")
    folds = []
    for k, (train, test) in enumerate(TimeSeriesSplit(n_splits=n_splits, gap=gap).split(np.arange(n_bars))):
        folds.append(Fold(k + 1, (int(train[0]), int(train[-1]) + 1), (int(test[0]), int(test[-1]) + 1)))
    return folds


def select(bar_pos: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    return (bar_pos >= span[0]) & (bar_pos < span[1])
