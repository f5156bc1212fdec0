"""Performance numbers from an equity curve and a trade list (the same maths for strategy and benchmark)."""

import math

import numpy as np
import pandas as pd

TRADING_DAYS = 252


def equity_metrics(equity: pd.Series) -> dict[str, float]:
    """total return, CAGR, Sharpe (daily, rf 0), max drawdown, worst day and worst week of an equity curve."""
    equity = equity.dropna()
    if len(equity) < 2 or equity.iloc[0] <= 0:
        return {k: math.nan for k in ("total_return", "cagr", "sharpe", "max_drawdown", "worst_day", "worst_week")}
    total = equity.iloc[-1] / equity.iloc[0] - 1.0
    days = (equity.index[-1] - equity.index[0]).total_seconds() / 86400.0
    years = max(days / 365.25, 1e-9)
    cagr = (equity.iloc[-1] / equity.iloc[0]) ** (1.0 / years) - 1.0 if equity.iloc[-1] > 0 else -1.0
    daily = equity.groupby(equity.index.date).last()
    daily = pd.concat([pd.Series([equity.iloc[0]]), daily.reset_index(drop=True)])
    rets = daily.pct_change().dropna()
    sharpe = float(rets.mean() / rets.std() * math.sqrt(TRADING_DAYS)) if len(rets) > 1 and rets.std() > 0 else math.nan
    drawdown = float((equity / equity.cummax() - 1.0).min())
    weekly = daily.iloc[::5]
    worst_week = float(weekly.pct_change().min()) if len(weekly) > 1 else math.nan
    return {"total_return": float(total), "cagr": float(cagr), "sharpe": sharpe, "max_drawdown": drawdown,
            "worst_day": float(rets.min()) if len(rets) else math.nan, "worst_week": worst_week}


def time_in_market(values: pd.Series) -> float:
    """Share of samples with a positive value (e.g. the inverse ETF book)."""
    return float((values > 0).mean()) if len(values) else math.nan


def buy_and_hold(prices: pd.Series, start_value: float) -> pd.Series:
    return start_value * prices / prices.iloc[0] if len(prices) else prices


def rolling_drawdown(equity: pd.Series) -> pd.Series:
    return equity / equity.cummax() - 1.0


def safe(x: float) -> float | None:
    """JSON-friendly number (NaN and inf become None)."""
    return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else x
