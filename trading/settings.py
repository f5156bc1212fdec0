"""The one settings object: read from the environment and `.env` once at start-up, validated, frozen.

Every setting is declared once in `SPECS` (name, default, parser, allowed range, description). The
same table renders `.env.example` and the README's configuration table, so they cannot drift.
A bad value raises `SettingsError`, whose message names the variable, the value and what is allowed;
the command-line tools turn it into exit code 2 without a traceback.
"""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

SYMBOL_RE = re.compile(r"^[A-Z]{1,5}(\.[A-Z]{1,2})?$")
SLEEPTIME_RE = re.compile(r"^(\d+)([SMTHD]?)$")
HEDGE_ROLES = ("general", "sp500", "tech")


class SettingsError(ValueError):
    """A setting is missing, malformed or inconsistent. The message says which one and how to fix it."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()):
        super().__init__(message)
        self.problems = tuple(problems) or (message,)

    def one_line(self) -> str:
        """The problems on one line, for the command-line tools' `error:` line (a cron mail or a log
        reader sees the whole reason in a single line)."""
        what = "; ".join(p.rstrip(".") for p in self.problems)
        return f"invalid setting: {what} (fix it in .env or the environment; see .env.example)"


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
         "Minimum confidence (meta-model probability or rule score) for a new entry.", _between(0, 1)),
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
    Spec("ENABLE_LEVERAGED_HEDGE", "enable_leveraged_hedge", "true", _bool, "true or false",
         "Allow the 3x inverse ETFs at all; false always hedges with the general (1x) ETF."),
    Spec("HEDGE_TECH_SHARE", "hedge_tech_share", "0.5", _float, "0 <= x <= 1",
         "With a leveraged hedge, use the tech ETF when at least this share of the long book is in NASDAQ_SYMBOLS.",
         _between(0, 1)),
    Spec("MAX_INVERSE_ALLOCATION", "max_inverse_allocation", "0.20", _float, "0 <= x <= 1 (0 disables hedging)",
         "Cap on inverse ETFs as a share of portfolio value.", _between(0, 1)),
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
    Spec("RISK_PER_TRADE_PCT", "risk_per_trade_pct", "0.01", _float, "0 < x <= 0.1",
         "Equity put at risk per entry (shares = risk / stop distance, then capped).", _between(0, 0.1, True),
         group="risk"),
    Spec("STOP_MODE", "stop_mode", "fixed", lambda s: s.strip().lower(), "fixed or atr",
         "fixed: STOP_LOSS_PCT/TAKE_PROFIT_PCT; atr: ATR_STOP_MULT x ATR14 stop, ATR_TARGET_MULT x ATR14 target.",
         lambda v: v in ("fixed", "atr"), group="risk"),
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
    Spec("TIME_EXIT_HOURS", "time_exit_hours", "24", _float, "x >= 0",
         "Close a trade that has not reached +1R after this many trading hours (0: off).", lambda v: v >= 0,
         group="risk"),
    Spec("MODEL_PATH", "model_path", "models/meta_model.joblib", _text, "a file path",
         "Meta-model file (python -m models.train writes it); its card is the same path with .json. No file: "
         "rule-based confidence.", group="model"),
    Spec("MODEL_HORIZON_BARS", "model_horizon_bars", "70", _int, "1 <= x <= 2000",
         "Label horizon for training: the bracket must reach its target within this many bars.",
         _between(1, 2000), group="model"),
    Spec("MAX_MODEL_AGE_DAYS", "max_model_age_days", "30", _float, "x > 0",
         "A model older than this logs a warning every day.", lambda v: v > 0, group="model"),
    Spec("BLOCK_ENTRIES_ON_STALE_MODEL", "block_entries_on_stale_model", "false", _bool, "true or false",
         "Also block new entries while the model is older than MAX_MODEL_AGE_DAYS.", group="model"),
    Spec("JOURNAL_PATH", "journal_path", "journal.sqlite", _text, "a file path",
         "The trade journal (SQLite) of live and paper runs; backtests keep theirs in the report folder.",
         group="files"),
    Spec("REPORTS_DIR", "reports_dir", "reports", _text, "a folder path",
         "Where backtests write their report folders.", group="files"),
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
)

_BY_ENV = {s.env: s for s in SPECS}


@dataclass(frozen=True)
class Settings:
    stop_loss_pct: float
    take_profit_pct: float
    near_stop_warning_pct: float
    max_position_pct: float
    trim_buffer_pct: float
    max_entry_pct: float
    min_cash_reserve: float
    confidence_threshold: float
    rsi_period: int
    rsi_overbought: float
    rsi_oversold: float
    bearish_threshold: float
    bearish_exit_threshold: float
    hedge_leveraged_breadth: float
    breadth_entry_gate: bool
    enable_leveraged_hedge: bool
    hedge_tech_share: float
    max_inverse_allocation: float
    risk_enabled: bool
    daily_loss_limit_pct: float
    weekly_loss_limit_pct: float
    circuit_breaker_pct: float
    circuit_breaker_hours: float
    recent_peak_days: int
    losing_streak: int
    recovery_drawdown_pct: float
    max_positions: int
    max_gross_exposure_pct: float
    max_orders_per_iteration: int
    stale_bars: int
    equity_jump_pct: float
    kill_switch_file: str
    flatten_on_halt: bool
    risk_per_trade_pct: float
    stop_mode: str
    atr_stop_mult: float
    atr_target_mult: float
    kelly_fraction: float
    kelly_min_trades: int
    breakeven_at_r: float
    partial_at_r: float
    trail_after_r: float
    trail_atr_mult: float
    time_exit_hours: float
    journal_path: str
    universe: tuple[str, ...]
    bellwethers: tuple[str, ...]
    inverse_etfs: dict[str, str] = field(hash=False)
    nasdaq_symbols: tuple[str, ...]
    sleeptime: str
    enable_extended_hours: bool
    model_path: str
    model_horizon_bars: int
    max_model_age_days: float
    block_entries_on_stale_model: bool
    reports_dir: str
    log_level: str
    alpaca_api_key: Secret
    alpaca_api_secret: Secret
    alpaca_paper: bool
    alpaca_data_feed: str
    alpaca_api_url: str
    alpaca_data_url: str
    broker_timeout_seconds: float

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env",
             overrides: Mapping[str, str] | None = None) -> "Settings":
        """Environment wins over `.env`, explicit overrides win over both. Raises SettingsError."""
        import os

        raw: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            raw.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        env = os.environ if environ is None else environ
        raw.update({k: v for k, v in env.items() if k in _BY_ENV})
        raw.update(overrides or {})
        return cls.from_mapping(raw)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, str]) -> "Settings":
        errors: list[str] = []
        values: dict[str, Any] = {}
        for spec in SPECS:
            text = raw.get(spec.env)
            if text is not None and str(text).strip() == "" and spec.parse is _symbols:
                errors.append(f"{spec.env} is set but empty. Allowed: {spec.allowed} (remove the line for the "
                              f"default, {spec.default}).")
                continue
            text = spec.default if text is None or str(text).strip() == "" else str(text)
            try:
                value = spec.parse(text)
            except (ValueError, TypeError) as exc:
                errors.append(f"{spec.env}={text!r} is invalid: {exc}. Allowed: {spec.allowed}.")
                continue
            if not spec.check(value):
                errors.append(f"{spec.env}={text!r} is out of range. Allowed: {spec.allowed}.")
                continue
            values[spec.attr] = value
        if not errors:
            errors.extend(_cross_field_errors(values))
        if errors:
            raise SettingsError(
                "Invalid settings (fix them in .env or the environment; see .env.example):\n  - "
                + "\n  - ".join(errors), tuple(errors)
            )
        return cls(**values)

    @classmethod
    def defaults(cls, **overrides: Any) -> "Settings":
        """Defaults with attribute overrides, for tests and tools (validated like any other)."""
        raw = {s.env: s.default for s in SPECS}
        by_attr = {s.attr: s for s in SPECS}
        for attr, value in overrides.items():
            spec = by_attr[attr]
            if isinstance(value, (tuple, list)):
                value = ",".join(value)
            elif isinstance(value, dict):
                value = ",".join(f"{k}:{v}" for k, v in value.items())
            raw[spec.env] = str(value).lower() if isinstance(value, bool) else str(value)
        return cls.from_mapping(raw)

    # ------------------------------------------------------------------ derived views
    @property
    def inverse_symbols(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.inverse_etfs.values()))

    @property
    def has_alpaca_keys(self) -> bool:
        return bool(self.alpaca_api_key) and bool(self.alpaca_api_secret)

    def all_symbols(self, benchmarks: tuple[str, ...] = ("SPY", "QQQ")) -> tuple[str, ...]:
        """Universe, bellwethers, inverse ETFs and benchmarks, each once, in that order."""
        return tuple(dict.fromkeys(self.universe + self.bellwethers + self.inverse_symbols + benchmarks))

    def public_dict(self) -> dict[str, Any]:
        """All settings except secrets, for reports."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Secret):
                v = "set" if v else ""
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


def _cross_field_errors(v: dict[str, Any]) -> list[str]:
    errs = []
    if v["rsi_oversold"] >= v["rsi_overbought"]:
        errs.append(f"RSI_OVERSOLD={v['rsi_oversold']} must be below RSI_OVERBOUGHT={v['rsi_overbought']}.")
    if v["bearish_exit_threshold"] >= v["bearish_threshold"]:
        errs.append(f"BEARISH_EXIT_THRESHOLD={v['bearish_exit_threshold']} must be below "
                    f"BEARISH_THRESHOLD={v['bearish_threshold']} (the gap stops the hedge flapping).")
    if v["hedge_leveraged_breadth"] < v["bearish_threshold"]:
        errs.append(f"HEDGE_LEVERAGED_BREADTH={v['hedge_leveraged_breadth']} must be at least "
                    f"BEARISH_THRESHOLD={v['bearish_threshold']}.")
    if v["max_entry_pct"] > v["max_position_pct"]:
        errs.append(f"MAX_ENTRY_PCT={v['max_entry_pct']} must not exceed MAX_POSITION_PCT={v['max_position_pct']} "
                    "(an entry would be trimmed at once).")
    if v["trim_buffer_pct"] >= v["max_position_pct"]:
        errs.append(f"TRIM_BUFFER_PCT={v['trim_buffer_pct']} must be below MAX_POSITION_PCT={v['max_position_pct']}.")
    if v["near_stop_warning_pct"] >= v["stop_loss_pct"]:
        errs.append(f"NEAR_STOP_WARNING_PCT={v['near_stop_warning_pct']} must be below "
                    f"STOP_LOSS_PCT={v['stop_loss_pct']}.")
    if v["atr_target_mult"] <= v["atr_stop_mult"]:
        errs.append(f"ATR_TARGET_MULT={v['atr_target_mult']} must be above ATR_STOP_MULT={v['atr_stop_mult']}.")
    inverse = set(v["inverse_etfs"].values())
    clash = sorted(inverse & set(v["universe"]))
    if clash:
        errs.append(f"UNIVERSE contains inverse ETF(s) {', '.join(clash)}; hedges are managed by step 3, "
                    "remove them from UNIVERSE.")
    if v["alpaca_api_key"] and not v["alpaca_api_secret"]:
        errs.append("ALPACA_API_KEY is set but ALPACA_API_SECRET is empty; set both in .env.")
    return errs


def unknown_keys(dotenv_path: str | Path = ".env") -> list[str]:
    """Keys in a .env file that are not settings (usually typos), so start-up can warn about them."""
    if not Path(dotenv_path).is_file():
        return []
    return sorted(k for k in dotenv_values(dotenv_path) if k not in _BY_ENV and not k.startswith("LUMIBOT_"))


def render_env_example() -> str:
    """The text of .env.example, generated from SPECS (a test keeps the committed file in sync)."""
    lines = [
        "# Copy to .env and edit. Environment variables override this file. Every line is optional:",
        "# the value shown is the default. Generated from trading/settings.py (python -m trading.settings).",
    ]
    group = None
    titles = {"strategy": "Strategy", "risk": "Risk controls, sizing and exit policy", "model": "Meta-model",
              "files": "Files and logging",
              "broker": "Alpaca account (secrets: .env only)"}
    for s in SPECS:
        if s.group != group:
            group = s.group
            lines += ["", f"# ---- {titles[group]}"]
        lines.append(f"# {s.doc} Allowed: {s.allowed}.")
        lines.append(f"{s.env}={s.default}")
    return "\n".join(lines) + "\n"


def render_markdown_table() -> str:
    rows = ["| variable | default | allowed | meaning |", "|---|---|---|---|"]
    for s in SPECS:
        default = s.default if s.default else "(empty)"
        rows.append(f"| `{s.env}` | `{default}` | {s.allowed} | {s.doc} |")
    return "\n".join(rows) + "\n"


def update_readme(path: Path = Path("README.md")) -> None:
    """Rewrite the configuration table between the README's settings-table markers."""
    text = path.read_text()
    head, rest = text.split("<!-- settings-table:start -->\n", 1)
    _, tail = rest.split("<!-- settings-table:end -->", 1)
    path.write_text(f"{head}<!-- settings-table:start -->\n{render_markdown_table()}<!-- settings-table:end -->{tail}")


if __name__ == "__main__":  # python -m trading.settings > .env.example;  python -m trading.settings --readme
    import sys

    if "--readme" in sys.argv:
        update_readme()
    else:
        print(render_env_example(), end="")
