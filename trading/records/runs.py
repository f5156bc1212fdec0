"""What a live or paper run started from, kept in the journal so it can be replayed as a backtest
(`python live_trader.py diff`): its settings (no secrets), its bar period and the account it took over (cash
and positions with their cost), one record per start of the bot."""

from __future__ import annotations

from datetime import datetime

RUNS_KEY = "runs"


def record_start(journal, settings, snap, bar_minutes: int, now: datetime) -> dict:
    # every strategy, risk and cost setting as in effect (a profile's included, so the profile file is not
    # needed to replay); not the account, the machine's files or the profile's name
    entry = {"started": str(now), "bar_minutes": bar_minutes, "settings": settings.strategy_env(),
             "cash": float(snap.cash), "portfolio_value": float(snap.portfolio_value),
             "positions": {h.symbol: {"qty": float(h.qty), "cost": h.avg_entry_price} for h in snap.holdings.values()}}
    runs = read_runs(journal)
    runs.append(entry)
    journal.set_state(RUNS_KEY, {"runs": runs}, now)
    return entry


def read_runs(journal) -> list[dict]:
    state = journal.get_state(RUNS_KEY)
    return list(state.get("runs", [])) if state else []
