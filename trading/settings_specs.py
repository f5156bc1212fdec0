"""The settings table: every setting once (name, default, parser, allowed range, description), and the
parsers. `trading/settings.py` builds the one Settings object from it and renders `.env.example` and the
README's table from it, so they cannot drift."""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

SYMBOL_RE = re.compile(r"^[A-Z]{1,5}(\.[A-Z]{1,2})?$")
SLEEPTIME_RE = re.compile(r"^(\d+)([SMTHD]?)$")
HEDGE_ROLES = ("general", "sp500", "tech")


class Secret(str):
    """A string that never shows itself in logs, reprs or tracebacks."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def __str__(self) -> str:  # logging's %s calls __str__
        return "***" if self else ""

    def __format__(self, spec: str) -> str:  # f-strings call __format__, which str would answer with the value
        return format(str(self), spec)

    def reveal(self) -> str:
        return str.__str__(self)


# ---------------------------------------------------------------------------------------------- parsers
def _float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):  # NaN, inf
        raise ValueError("not a finite number")
    return value


def _int(raw: str) -> int:
    return int(raw)


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _symbols(raw: str) -> tuple[str, ...]:
    items = [s.strip().upper() for s in raw.split(",") if s.strip()]  # case-insensitive: aapl is AAPL
    if not items:
        raise ValueError("no symbols; list at least one, or remove the line to get the default")
    bad = [s for s in items if not SYMBOL_RE.match(s)]
    if bad:
        raise ValueError(f"not a US stock symbol: {', '.join(bad)} (expected 1-5 letters, e.g. AAPL or BRK.B)")
    if len(set(items)) != len(items):
        raise ValueError("a symbol is listed twice")
    return tuple(items)


def _inverse_map(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in [p.strip() for p in raw.split(",") if p.strip()]:
        if ":" not in part:
            raise ValueError(f"'{part}' is not role:SYMBOL")
        role, sym = (x.strip() for x in part.split(":", 1))
        role, sym = role.lower(), sym.upper()
        if role not in HEDGE_ROLES:
            raise ValueError(f"unknown role '{role}' (roles: {', '.join(HEDGE_ROLES)})")
        if not SYMBOL_RE.match(sym):
            raise ValueError(f"not a US stock symbol: {sym}")
        out[role] = sym
    missing = [r for r in HEDGE_ROLES if r not in out]
    if missing:
        raise ValueError(f"missing role(s): {', '.join(missing)}")
    return out


def _sleeptime(raw: str) -> str:
    text = raw.strip().upper()
    m = SLEEPTIME_RE.match(text)
    if not m or int(m.group(1)) <= 0:
        raise ValueError("expected a positive duration like 60M, 1H or 1D")
    return text


def _text(raw: str) -> str:
    return raw.strip()


def _opt_float(raw: str) -> float | None:
    return None if not raw.strip() else _float(raw)


RETRAIN_RE = re.compile(r"^(\d+)\s*(d|days?|bars?)$")


class Every(NamedTuple):
    """RETRAIN_EVERY: every n sessions ('days') or n new bars ('bars')."""

    unit: str
    n: int

    def text(self) -> str:
        return f"{self.n}D" if self.unit == "days" else f"{self.n} bars"


def _retrain_every(raw: str) -> Every | None:
    """'' -> None (off); '5D' -> ('days', 5): after every 5th session's close; '100 bars' -> ('bars', 100)."""
    text = raw.strip().lower()
    if not text:
        return None
    m = RETRAIN_RE.match(text)
    if not m or int(m.group(1)) < 1:
        raise ValueError("expected e.g. 1D, 5D or 100 bars (empty: off)")
    return Every("days" if m.group(2).startswith("d") else "bars", int(m.group(1)))


def _secret(raw: str) -> Secret:
    return Secret(raw.strip())


def sleeptime_minutes(sleeptime: str) -> float:
    """Lumibot's sleeptime grammar (int = minutes; S, M/T, H, D suffixes) in minutes."""
    m = SLEEPTIME_RE.match(sleeptime.upper())
    if not m:
        raise ValueError(sleeptime)
    n, unit = int(m.group(1)), m.group(2) or "M"
    return n * {"S": 1 / 60, "M": 1, "T": 1, "H": 60, "D": 1440}[unit]


# ---------------------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Spec:
    env: str
    attr: str
    default: str
    parse: Callable[[str], Any]
    allowed: str  # human text for error messages and docs
    doc: str
    check: Callable[[Any], bool] = lambda v: True
    group: str = "strategy"


def _between(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Callable[[float], bool]:
    def ok(v: float) -> bool:
        return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)

    return ok


DEFAULT_UNIVERSE = "AAPL,MSFT,GOOGL,NVDA,TSLA,AMZN,META,AMD,JPM,XOM,UNH,COST"
DEFAULT_NASDAQ = "AAPL,MSFT,GOOGL,NVDA,TSLA,AMZN,META,AMD,COST,NFLX,AVGO,INTC,ADBE,PEP,CSCO"

# groups that belong to the account and the machine (keys, URLs, tokens, paths, logging), not to a strategy: a
# profile, a sweep's space and a run's replay record leave them out
MACHINE_GROUPS = ("broker", "ops", "files")

SPECS: tuple[Spec, ...] = (
    # --- brackets and sizing
    Spec("STOP_LOSS_PCT", "stop_loss_pct", "0.05", _float, "0 < x < 0.5",
         "Stop-loss distance below entry, as a fraction (0.05 = -5%).", _between(0, 0.5, True, True)),
    Spec("TAKE_PROFIT_PCT", "take_profit_pct", "0.15", _float, "0 < x <= 5",
         "Take-profit distance above entry, as a fraction (0.15 = +15%).", _between(0, 5, True)),
    Spec("NEAR_STOP_WARNING_PCT", "near_stop_warning_pct", "0.015", _float, "0 <= x < STOP_LOSS_PCT",
         "Warn when an unprotected position is within this many points of its stop (0.015 = 1.5 pp).",
         _between(0, 0.5, False, True)),
    Spec("MAX_POSITION_PCT", "max_position_pct", "0.15", _float, "0 < x <= 1",
         "Largest share of portfolio value one position may hold; above it the position is trimmed.",
         _between(0, 1, True)),
    Spec("TRIM_BUFFER_PCT", "trim_buffer_pct", "0.01", _float, "0 <= x < MAX_POSITION_PCT",
         "A trim sells down to the cap minus this (0.01 = one point), so a position hovering at the cap is not "
         "trimmed every hour.", _between(0, 1, False, True)),
    Spec("MAX_ENTRY_PCT", "max_entry_pct", "0.10", _float, "0 < x <= MAX_POSITION_PCT",
         "Per-entry size limit, as a share of portfolio value.", _between(0, 1, True)),
    Spec("MIN_CASH_RESERVE", "min_cash_reserve", "1000", _float, "x >= 0 (USD)",
         "Cash (USD) never spent on entries or hedges.", lambda v: v >= 0),
    Spec("CONFIDENCE_THRESHOLD", "confidence_threshold", "0.6", _float, "0 <= x <= 1",
         "Minimum rule-based confidence score for a new entry (a meta-model gates on MIN_EXPECTED_R instead).",
         _between(0, 1)),
    # --- signals
    Spec("RSI_PERIOD", "rsi_period", "14", _int, "2 <= x <= 200",
         "RSI length in bars.", _between(2, 200)),
    Spec("RSI_OVERBOUGHT", "rsi_overbought", "70", _float, "RSI_OVERSOLD < x < 100",
         "A bellwether above this RSI counts as overbought.", _between(0, 100, True, True)),
    Spec("RSI_OVERSOLD", "rsi_oversold", "30", _float, "0 < x < RSI_OVERBOUGHT",
         "A universe stock below this RSI is an entry candidate.", _between(0, 100, True, True)),
    Spec("BEARISH_THRESHOLD", "bearish_threshold", "0.6", _float, "0 < x <= 1",
         "Hedge when at least this share of bellwethers is overbought.", _between(0, 1, True)),
    Spec("BEARISH_EXIT_THRESHOLD", "bearish_exit_threshold", "0.4", _float, "0 <= x < BEARISH_THRESHOLD",
         "Unwind the hedge when breadth falls below this (hysteresis).", _between(0, 1, False, True)),
    Spec("HEDGE_LEVERAGED_BREADTH", "hedge_leveraged_breadth", "0.8", _float, "BEARISH_THRESHOLD <= x <= 1",
         "At or above this breadth the hedge uses a 3x ETF (SQQQ or SPXS) instead of SH.", _between(0, 1, True)),
    Spec("BREADTH_ENTRY_GATE", "breadth_entry_gate", "true", _bool, "true or false",
         "No new long entries while bellwether breadth is at or above BEARISH_THRESHOLD (the market looks "
         "overextended and the hedge is on: a new long works against it)."),
    # --- entry filters (step 4), each off at its default; each counts what it blocks per gate in the journal
    Spec("TREND_FILTER", "trend_filter", "false", _bool, "true or false",
         "Enter only above the 200-bar trend line (simple average: exact on the live window too, where a 200-bar "
         "EMA would depend on where the window starts)."),
    Spec("REENTRY_DAYS", "reentry_days", "0", _int, "0 <= x <= 60",
         "After a trade ends at its take-profit, its stock stays an entry candidate for this many calendar days "
         "while its close is above the 200-bar trend line, without a new RSI dip; every gate still applies "
         "(0: off).", _between(0, 60)),
    Spec("ATR_PCT_MIN", "atr_pct_min", "0", _float, "0 <= x < ATR_PCT_MAX",
         "Enter only when ATR(14) is at least this share of the price (0.005 = 0.5%; 0: no floor).",
         _between(0, 1, False, True)),
    Spec("ATR_PCT_MAX", "atr_pct_max", "1", _float, "ATR_PCT_MIN < x <= 1",
         "Enter only when ATR(14) is at most this share of the price (1: no ceiling).", _between(0, 1, True)),
    Spec("MARKET_VOL_MAX_PCTILE", "market_vol_max_pctile", "1", _float, "0 < x <= 1",
         "No entries while SPY's 20-bar realised volatility is above this percentile of its last 250 bars "
         "(0.9 = the calmest 90%; 1: off).", _between(0, 1, True)),
    Spec("MIN_DOLLAR_VOLUME", "min_dollar_volume", "0", _float, "x >= 0 (USD a day)",
         "Enter only symbols trading at least this much a day on average over 20 sessions (0: off).",
         lambda v: v >= 0),
    Spec("MAX_SPREAD_BPS", "max_spread_bps", "0", _float, "0 <= x <= 1000",
         "Live: enter only when the quote's spread is at most this many basis points of its midpoint (one "
         "more request per iteration; 0: off); no two-sided quote, or a crossed one, does not pass. Backtests "
         "have no quotes and skip it, saying so.",
         _between(0, 1000)),
    Spec("CORRELATION_MAX", "correlation_max", "1", _float, "-1 < x <= 1",
         "No new entry whose returns correlate above this with the book's value-weighted returns (what is held "
         "and the entries planned before it in the same iteration) "
         "(1: off).", _between(-1, 1, True)),
    Spec("CORRELATION_BARS", "correlation_bars", "60", _int, "10 <= x <= 250",
         "Bars of returns the correlation cap measures.", _between(10, 250)),
    Spec("ENABLE_LEVERAGED_HEDGE", "enable_leveraged_hedge", "true", _bool, "true or false",
         "Allow the 3x inverse ETFs at all; false always hedges with the general (1x) ETF."),
    Spec("HEDGE_TECH_SHARE", "hedge_tech_share", "0.5", _float, "0 <= x <= 1",
         "With a leveraged hedge, use the tech ETF when at least this share of the long book is in NASDAQ_SYMBOLS.",
         _between(0, 1)),
    Spec("MAX_INVERSE_ALLOCATION", "max_inverse_allocation", "0.20", _float, "0 <= x <= 1 (0 disables hedging)",
         "Cap on inverse ETFs as a share of portfolio value.", _between(0, 1)),
    Spec("HEDGE_BOOK_RATIO", "hedge_book_ratio", "0", _float, "0 <= x <= 3",
         "0: a new hedge is sized to MAX_INVERSE_ALLOCATION less TRIM_BUFFER_PCT of the portfolio, whatever is "
         "held. Above 0: to this multiple of the long book's value, divided by the ETF's leverage (3 for SPXS "
         "and SQQQ), within that cap; nothing long, no hedge.", _between(0, 3)),
    # --- symbols
    Spec("UNIVERSE", "universe", DEFAULT_UNIVERSE, _symbols, "comma-separated symbols",
         "Stocks the strategy may enter."),
    Spec("BELLWETHERS", "bellwethers", "AAPL,MSFT,GOOGL,NVDA,TSLA", _symbols, "comma-separated symbols",
         "Stocks whose RSI breadth drives the hedge."),
    Spec("INVERSE_ETFS", "inverse_etfs", "general:SH,sp500:SPXS,tech:SQQQ", _inverse_map,
         "general:SYM,sp500:SYM,tech:SYM", "Inverse ETF for each hedge role (1x general, 3x S&P 500, 3x Nasdaq)."),
    Spec("NASDAQ_SYMBOLS", "nasdaq_symbols", DEFAULT_NASDAQ, _symbols, "comma-separated symbols",
         "Symbols counted as Nasdaq/tech when choosing the tech hedge."),
    # --- schedule
    Spec("SLEEPTIME", "sleeptime", "1H", _sleeptime, "e.g. 60M, 1H, 1D",
         "Time between iterations (Lumibot grammar). Daily data forces 1D."),
    Spec("ENABLE_EXTENDED_HOURS", "enable_extended_hours", "false", _bool, "true or false",
         "Outside the regular session, place only DAY limit orders flagged extended_hours (never brackets)."),
    # --- files
    # --- risk controller (0 switches a rule off)
    Spec("RISK_ENABLED", "risk_enabled", "true", _bool, "true or false",
         "Master switch of the risk controller (false: no limits, no circuit breaker, no sizing factors).",
         group="risk"),
    Spec("DAILY_LOSS_LIMIT_PCT", "daily_loss_limit_pct", "0.03", _float, "0 <= x < 1",
         "Loss from start-of-day equity that stops new entries and hedges until the next session (REDUCING).",
         _between(0, 1, False, True), group="risk"),
    Spec("WEEKLY_LOSS_LIMIT_PCT", "weekly_loss_limit_pct", "0.10", _float, "0 <= x < 1",
         "Loss from start-of-week equity that halts all but protective orders until the next week (HALTED).",
         _between(0, 1, False, True), group="risk"),
    Spec("CIRCUIT_BREAKER_PCT", "circuit_breaker_pct", "0.05", _float, "0 <= x < 1",
         "Loss from the recent peak that pauses entries for CIRCUIT_BREAKER_HOURS.", _between(0, 1, False, True),
         group="risk"),
    Spec("CIRCUIT_BREAKER_HOURS", "circuit_breaker_hours", "4", _float, "x > 0", "Circuit-breaker pause.",
         lambda v: v > 0, group="risk"),
    Spec("RECENT_PEAK_DAYS", "recent_peak_days", "5", _int, "1 <= x <= 250",
         "How far back the circuit breaker looks for the recent peak (trading days).", _between(1, 250),
         group="risk"),
    Spec("LOSING_STREAK", "losing_streak", "3", _int, "x >= 0",
         "After this many losing trades in a row, entry size is halved until a win.", lambda v: v >= 0,
         group="risk"),
    Spec("RECOVERY_DRAWDOWN_PCT", "recovery_drawdown_pct", "0.02", _float, "0 <= x < 1",
         "While drawdown from the peak exceeds this, entry size is halved.", _between(0, 1, False, True),
         group="risk"),
    Spec("MAX_POSITIONS", "max_positions", "10", _int, "x >= 0", "Most positions held at once (0: no limit).",
         lambda v: v >= 0, group="risk"),
    Spec("MAX_GROSS_EXPOSURE_PCT", "max_gross_exposure_pct", "0.80", _float, "0 <= x <= 4",
         "Most long exposure (positions plus pending entries) as a share of equity (0: no limit).",
         _between(0, 4), group="risk"),
    Spec("MAX_ORDERS_PER_ITERATION", "max_orders_per_iteration", "10", _int, "x >= 0",
         "Most new entry and hedge intents per iteration (0: no limit).", lambda v: v >= 0, group="risk"),
    Spec("STALE_BARS", "stale_bars", "2", _int, "x >= 0",
         "A symbol whose last bar is older than this many bar periods gets no new order (0: off).",
         lambda v: v >= 0, group="risk"),
    Spec("EQUITY_JUMP_PCT", "equity_jump_pct", "0.10", _float, "0 < x < 1",
         "An equity reading that moves more than this since the last one needs confirmation next iteration.",
         _between(0, 1, True, True), group="risk"),
    Spec("KILL_SWITCH_FILE", "kill_switch_file", "HALT", _text, "a file path",
         "While this file exists the bot is HALTED (protective orders only).", group="risk"),
    Spec("FLATTEN_ON_HALT", "flatten_on_halt", "false", _bool, "true or false",
         "Also close every position when a loss limit halts the bot.", group="risk"),
    # --- sizing
    Spec("VOL_TARGET_PCT", "vol_target_pct", "0", _float, "0 <= x <= 1",
         "Scale the risk per trade by this annualised volatility over SPY's 20-bar realised volatility, within "
         "x0.25 .. x2 (0.15: a 30%-volatility market halves new entries; 0: off).", _between(0, 1), group="risk"),
    Spec("RISK_PER_TRADE_PCT", "risk_per_trade_pct", "0.01", _float, "0 < x <= 0.1",
         "Equity put at risk per entry (shares = risk / stop distance, then capped).", _between(0, 0.1, True),
         group="risk"),
    Spec("STOP_MODE", "stop_mode", "fixed", lambda s: s.strip().lower(), "fixed, atr or model",
         "fixed: STOP_LOSS_PCT/TAKE_PROFIT_PCT; atr: ATR_STOP_MULT x ATR14 stop, ATR_TARGET_MULT x ATR14 target; "
         "model: the meta-model's stop model (where 80% of similar winners' dips ended), within STOP_MODEL_MIN_PCT "
         ".. STOP_MODEL_MAX_PCT, the target TAKE_PROFIT_PCT/STOP_LOSS_PCT times it.",
         lambda v: v in ("fixed", "atr", "model"), group="risk"),
    Spec("STOP_MODEL_MIN_PCT", "stop_model_min_pct", "0.02", _float, "0 < x < STOP_MODEL_MAX_PCT",
         "STOP_MODE=model: the tightest stop it may set, as a fraction of the price.", _between(0, 0.5, True),
         group="risk"),
    Spec("STOP_MODEL_MAX_PCT", "stop_model_max_pct", "0.12", _float, "STOP_MODEL_MIN_PCT < x < 0.5",
         "STOP_MODE=model: the widest stop it may set.", _between(0, 0.5, True, True), group="risk"),
    Spec("ATR_STOP_MULT", "atr_stop_mult", "1.5", _float, "0 < x <= 20", "Stop distance in ATR14 (atr mode).",
         _between(0, 20, True), group="risk"),
    Spec("ATR_TARGET_MULT", "atr_target_mult", "3.75", _float, "ATR_STOP_MULT < x <= 50",
         "Target distance in ATR14 (atr mode).", _between(0, 50, True), group="risk"),
    Spec("KELLY_FRACTION", "kelly_fraction", "0.25", _float, "0 <= x <= 1",
         "Cap risk per trade at this fraction of the Kelly estimate from closed trades (0: off).", _between(0, 1),
         group="risk"),
    Spec("KELLY_MIN_TRADES", "kelly_min_trades", "30", _int, "x >= 1",
         "Closed trades needed before the Kelly cap applies.", lambda v: v >= 1, group="risk"),
    # --- exit policy
    Spec("BREAKEVEN_AT_R", "breakeven_at_r", "1.0", _float, "x >= 0",
         "At this profit in R the stop moves to entry + 0.1% (0: off).", lambda v: v >= 0, group="risk"),
    Spec("PARTIAL_AT_R", "partial_at_r", "2.0", _float, "x >= 0",
         "At this profit in R half the position is sold (0: off).", lambda v: v >= 0, group="risk"),
    Spec("TRAIL_AFTER_R", "trail_after_r", "2.0", _float, "x >= 0",
         "After this profit in R the stop trails TRAIL_ATR_MULT ATR below the high since entry (0: off).",
         lambda v: v >= 0, group="risk"),
    Spec("TRAIL_ATR_MULT", "trail_atr_mult", "1.0", _float, "x > 0", "Trailing distance in ATR14.",
         lambda v: v > 0, group="risk"),
    Spec("TIME_EXIT_HOURS", "time_exit_hours", "0", _float, "x >= 0",
         "Close a trade that has not reached +1R after this many trading hours (0: off, the default since a "
         "walk-forward on real daily prices found winners cut short; 24 was the old default).", lambda v: v >= 0,
         group="risk"),
    Spec("MODEL_PATH", "model_path", "models/meta_model.joblib", _text, "a file path",
         "The meta-model: its card is this path with .json (the champion's, naming the version to load from "
         "versions/ beside it; python -m models.train installs one). No card and no file: rule-based confidence.",
         group="model"),
    Spec("MODEL_HORIZON_BARS", "model_horizon_bars", "70", _int, "1 <= x <= 2000",
         "Label horizon for training: the bracket must reach its target within this many bars.",
         _between(1, 2000), group="model"),
    Spec("MAX_MODEL_AGE_DAYS", "max_model_age_days", "30", _float, "x > 0",
         "A model older than this logs a warning every day.", lambda v: v > 0, group="model"),
    Spec("BLOCK_ENTRIES_ON_STALE_MODEL", "block_entries_on_stale_model", "false", _bool, "true or false",
         "Also block new entries while the model is older than MAX_MODEL_AGE_DAYS.", group="model"),
    Spec("MODEL_DEGRADED_ACTION", "model_degraded_action", "warn", lambda s: s.strip().lower(),
         "warn, stop or fallback",
         "When the trades entered since the model was trained average below what its out-of-sample record allows "
         "(two standard errors): warn says so daily; stop also blocks new entries until they recover; fallback "
         "judges new entries by the rule-based score (CONFIDENCE_THRESHOLD) meanwhile.",
         lambda v: v in ("warn", "stop", "fallback"), group="model"),
    Spec("MODEL_WATCH_MIN_TRADES", "model_watch_min_trades", "20", _int, "5 <= x <= 500",
         "Closed trades needed before the model's live record is judged (its last 50 at most).",
         _between(5, 500), group="model"),
    Spec("RETRAIN_EVERY", "retrain_every", "", _retrain_every, "empty, ND or N bars",
         "Retrain the meta-model after the close every N sessions (1D, 5D) or once N new bars have come in "
         "(100 bars), in a process of its own (the running bot starts it; or python -m models.train --schedule). "
         "The new model is a challenger, promoted only when it beats the champion (PROMOTE_MIN_GAIN). Empty: off.",
         group="model"),
    Spec("RETRAIN_DATA", "retrain_data", "alpaca", _text, "alpaca, csv:DIR or builtin",
         "Where scheduled retraining reads its bars: alpaca (through the bar cache, BAR_CACHE_DIR), csv:DIR or the "
         "built-in market.", lambda v: v in ("alpaca", "builtin") or (v.startswith("csv:") and len(v) > 4),
         group="model"),
    Spec("RETRAIN_WINDOW_DAYS", "retrain_window_days", "730", _int, "90 <= x <= 7300",
         "Scheduled retraining learns from this many calendar days up to the last complete session.",
         _between(90, 7300), group="model"),
    Spec("PROMOTE_MIN_GAIN", "promote_min_gain", "0.02", _float, "0 <= x <= 5 (R per candidate)",
         "A challenger replaces the champion only when, on the same candidates since the champion's training "
         "window, its gate makes at least this much more realised R per candidate (and the gain's 95% bootstrap "
         "interval is above zero).", _between(0, 5), group="model"),
    Spec("MODELS_KEPT", "models_kept", "5", _int, "2 <= x <= 100",
         "Trained models (with cards and verdicts) kept in the versions folder beside MODEL_PATH; the champion "
         "and the one before it are always kept (python -m models.train rollback).", _between(2, 100),
         group="model"),
    Spec("MIN_EXPECTED_R", "min_expected_r", "", _opt_float, "empty or -5 <= x <= 5",
         "Meta-model gate: enter when the ensemble's expected R (realised R of the exit policy, net of costs) is "
         "at least this. Empty: the threshold training proposed in the model card (0 when it proposed none). The "
         "rule-based score ignores it.", lambda v: v is None or -5 <= v <= 5, group="model"),
    Spec("EXIT_CONFIDENCE", "exit_confidence", "", _opt_float, "empty or -5 <= x <= 5",
         "With a meta-model: each iteration re-scores every open trade, and one whose expected R has fallen below "
         "this is closed at market (legs cancelled first; exit reason 'model'). Empty: off.",
         lambda v: v is None or -5 <= v <= 5, group="model"),
    Spec("ENSEMBLE_AGREEMENT", "ensemble_agreement", "0.5", _float, "0 <= x <= 1",
         "Meta-model gate: at least this share of the ensemble's members must predict R >= MIN_EXPECTED_R (0.5: "
         "two of three; 1: all). All agreeing also sizes the entry up 1.5x, as a rule score above 0.85 does.",
         _between(0, 1), group="model"),
    Spec("MAX_UNCERTAINTY", "max_uncertainty", "0", _float, "x >= 0 (R)",
         "Meta-model gate: skip a candidate whose members disagree by more than this (standard deviation of "
         "their predicted R; 0: off).", lambda v: v >= 0, group="model"),
    Spec("PROFILE", "profile", "", _text, "empty, a name in profiles/ or a path to a .env-style file",
         "A settings profile (conservative, balanced, aggressive, paper, or a sweep's output): it moves the "
         "defaults; every variable set in .env or the environment still wins.", group="files"),
    Spec("JOURNAL_PATH", "journal_path", "journal.sqlite", _text, "a file path",
         "The trade journal (SQLite) of live and paper runs; backtests keep theirs in the report folder.",
         group="files"),
    Spec("REPORTS_DIR", "reports_dir", "reports", _text, "a folder path",
         "Where backtests write their report folders.", group="files"),
    Spec("BAR_CACHE_DIR", "bar_cache_dir", "cache/bars", _text, "a folder path",
         "Where --data alpaca keeps the bars it fetched (Parquet, one file per symbol, timeframe, feed and "
         "adjustment, with a manifest).", lambda v: v != "", group="files"),
    Spec("BAR_ADJUSTMENT", "bar_adjustment", "all", lambda s: s.strip().lower(), "raw, split, dividend or all",
         "--data alpaca: how Alpaca adjusts historical bars (all: for splits and dividends).",
         lambda v: v in ("raw", "split", "dividend", "all"), group="files"),
    Spec("LOG_LEVEL", "log_level", "INFO", lambda s: s.strip().upper(), "DEBUG, INFO, WARNING or ERROR",
         "Log verbosity.", lambda v: v in ("DEBUG", "INFO", "WARNING", "ERROR"), group="files"),
    # --- broker
    Spec("ALPACA_API_KEY", "alpaca_api_key", "", _secret, "your Alpaca key id",
         "Alpaca API key id (paper keys start with PK). Only in .env, never in code.", group="broker"),
    Spec("ALPACA_API_SECRET", "alpaca_api_secret", "", _secret, "your Alpaca secret",
         "Alpaca API secret.", group="broker"),
    Spec("ALPACA_PAPER", "alpaca_paper", "true", _bool, "true or false",
         "Trade the paper account. Live money needs ALPACA_PAPER=false AND --live.", group="broker"),
    Spec("ALPACA_DATA_FEED", "alpaca_data_feed", "iex", lambda s: s.strip().lower(), "iex, sip or delayed_sip",
         "Market-data feed: iex is real time on free accounts; sip needs a subscription.",
         lambda v: v in ("iex", "sip", "delayed_sip"), group="broker"),
    Spec("ALPACA_API_URL", "alpaca_api_url", "", _text, "empty or a URL",
         "Override the trading API base URL (a proxy or the test server); empty: Alpaca's paper/live URL.",
         lambda v: v == "" or v.startswith(("http://", "https://")), group="broker"),
    Spec("ALPACA_DATA_URL", "alpaca_data_url", "", _text, "empty or a URL",
         "Override the market-data base URL; empty: https://data.alpaca.markets.",
         lambda v: v == "" or v.startswith(("http://", "https://")), group="broker"),
    Spec("BROKER_TIMEOUT_SECONDS", "broker_timeout_seconds", "10", _float, "0 < x <= 120",
         "Timeout of one HTTP request to Alpaca (alpaca-py sets none).", _between(0, 120, True), group="broker"),
    Spec("ALPACA_STREAM_URL", "alpaca_stream_url", "", _text, "empty or a ws(s):// URL",
         "Override the trade-updates websocket; empty: Alpaca's paper/live stream (wss://...alpaca.markets/stream).",
         lambda v: v == "" or v.startswith(("ws://", "wss://")), group="broker"),
    Spec("ALPACA_DATA_STREAM_URL", "alpaca_data_stream_url", "", _text, "empty or a ws(s):// URL",
         "Override the market-data websocket; empty: wss://stream.data.alpaca.markets/v2/<ALPACA_DATA_FEED>.",
         lambda v: v == "" or v.startswith(("ws://", "wss://")), group="broker"),
    Spec("STREAMS_ENABLED", "streams_enabled", "true", _bool, "true or false",
         "Live: follow fills (trade updates) and the prices of held symbols between iterations (websockets). "
         "Backtests never stream.", group="broker"),
    Spec("STREAM_MIN_INTERVAL_SECONDS", "stream_min_interval_seconds", "60", _float, "1 <= x <= 3600",
         "Between iterations, at most one stop move per symbol in this many seconds (a software stop is not "
         "throttled).", _between(1, 3600), group="broker"),
    Spec("STREAM_SILENCE_SECONDS", "stream_silence_seconds", "300", _float, "x = 0 or 1 <= x <= 3600",
         "While the market is open, a price stream that has carried no trade of the held symbols for this long is "
         "reconnected: Alpaca's data socket can go mute while it stays connected (0: never).",
         lambda x: x == 0 or 1 <= x <= 3600, group="broker"),
    # --- costs in backtests (live, Alpaca charges what it charges)
    Spec("BACKTEST_COSTS", "backtest_costs", "true", _bool, "true or false",
         "Charge the fees and slippage below in backtests; false: gross figures, as before costs existed.",
         group="costs"),
    Spec("SEC_FEE_PER_MILLION", "sec_fee_per_million", "27.80", _float, "0 <= x <= 1000 (USD)",
         "SEC fee on sells, USD per $1,000,000 sold. Alpaca's regulatory-fees page: $27.80 from 2024-05-22, $0.00 "
         "for fiscal 2025 (from 2025-05-14); the SEC resets it every year, so the default keeps the last non-zero "
         "rate rather than understate costs.", _between(0, 1000), group="costs"),
    Spec("FINRA_TAF_PER_SHARE", "finra_taf_per_share", "0.000166", _float, "0 <= x <= 0.01 (USD)",
         "FINRA trading activity fee on sells, USD per share (2024-2025 rate; its $8.30-per-trade cap, reached above "
         "50,000 shares, is not modelled).", _between(0, 0.01), group="costs"),
    Spec("CAT_FEE_PER_SHARE", "cat_fee_per_share", "0.0000265", _float, "0 <= x <= 0.01 (USD)",
         "Consolidated Audit Trail fee, USD per share bought or sold (Alpaca's 2025 rate).", _between(0, 0.01),
         group="costs"),
    Spec("SLIPPAGE_BPS", "slippage_bps", "2", _float, "0 <= x <= 500",
         "Backtests: a market or stop fill moves this many basis points against the order (limit fills keep their "
         "price).", _between(0, 500), group="costs"),
    Spec("SLIPPAGE_ATR_FRACTION", "slippage_atr_fraction", "0.05", _float, "0 <= x <= 2",
         "Backtests: plus this fraction of the symbol's ATR(14), as of the bar before the fill, on market and stop "
         "fills.", _between(0, 2), group="costs"),
    # --- operating from anywhere: alerts, the status and control API, the dashboard
    Spec("ALERT_URLS", "alert_urls", "", _secret, "comma-separated apprise URLs, or empty",
         "Where alerts go (apprise URLs: tgram://, discord://, mailto://, ntfy://, json://...); empty: alerts off. "
         "They carry tokens: .env only.", group="ops"),
    Spec("ALERT_LEVEL", "alert_level", "warning", lambda s: s.strip().lower(), "info, warning or critical",
         "Least severe alert sent.", lambda v: v in ("info", "warning", "critical"), group="ops"),
    Spec("ALERT_COOLDOWN_MINUTES", "alert_cooldown_minutes", "30", _float, "0 <= x <= 1440",
         "One alert per event key (event and symbol) per this many minutes, so an outage is not a storm.",
         _between(0, 1440), group="ops"),
    Spec("ALERT_DAILY_SUMMARY", "alert_daily_summary", "true", _bool, "true or false",
         "Send the daily summary after the close whatever ALERT_LEVEL is (when ALERT_URLS is set).", group="ops"),
    Spec("API_HOST", "api_host", "127.0.0.1", _text, "an address to bind",
         "Address of the status and control API (--api). Anything but loopback also needs --api-public.",
         lambda v: v != "", group="ops"),
    Spec("API_PORT", "api_port", "8765", _int, "1 <= x <= 65535", "Port of the status and control API.",
         _between(1, 65535), group="ops"),
    Spec("API_TOKEN", "api_token", "", _secret, "at least 16 characters, or empty",
         "Bearer token of the API and dashboard (.env only). Make one: python -c \"import secrets; "
         "print(secrets.token_urlsafe(32))\"", lambda v: v == "" or len(v.reveal()) >= 16, group="ops"),
)


def as_text(value: Any) -> str:
    """A setting's value as it would be written in .env (the inverse of its parser)."""
    if isinstance(value, Secret):
        return value.reveal()
    if value is None:  # an optional setting left empty (MIN_EXPECTED_R)
        return ""
    if isinstance(value, Every):
        return value.text()
    if isinstance(value, (tuple, list)):
        return ",".join(value)
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return str(value).lower() if isinstance(value, bool) else str(value)
