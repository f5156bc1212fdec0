"""The one settings object: read from the environment and `.env` once at start-up, validated, frozen.

Every setting is declared once in `SPECS` (name, default, parser, allowed range, description). The
same table renders `.env.example` and the README's configuration table, so they cannot drift.
A bad value raises `SettingsError`, whose message names the variable, the value and what is allowed;
the command-line tools turn it into exit code 2 without a traceback.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from trading.settings_docs import render_env_example, render_markdown_table, update_readme  # noqa: F401
from trading.settings_rules import cross_field_errors
from trading.settings_specs import (  # noqa: F401  (re-exported: callers import them from here)
    HEDGE_ROLES,
    MACHINE_GROUPS,
    SPECS,
    SYMBOL_RE,
    Every,
    Secret,
    Spec,
    _secret,
    _symbols,
    as_text,
    sleeptime_minutes,
)


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
    trend_filter: bool
    reentry_days: int
    atr_pct_min: float
    atr_pct_max: float
    market_vol_max_pctile: float
    min_dollar_volume: float
    max_spread_bps: float
    correlation_max: float
    correlation_bars: int
    enable_leveraged_hedge: bool
    hedge_tech_share: float
    max_inverse_allocation: float
    hedge_book_ratio: float
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
    vol_target_pct: float
    stop_mode: str
    stop_model_min_pct: float
    stop_model_max_pct: float
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
    profile: str
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
    model_degraded_action: str
    model_watch_min_trades: int
    retrain_every: Every | None
    retrain_data: str
    retrain_window_days: int
    promote_min_gain: float
    models_kept: int
    min_expected_r: float | None
    exit_confidence: float | None
    ensemble_agreement: float
    max_uncertainty: float
    reports_dir: str
    bar_cache_dir: str
    bar_adjustment: str
    log_level: str
    alpaca_api_key: Secret
    alpaca_api_secret: Secret
    alpaca_paper: bool
    alpaca_data_feed: str
    alpaca_api_url: str
    alpaca_data_url: str
    broker_timeout_seconds: float
    backtest_costs: bool
    sec_fee_per_million: float
    finra_taf_per_share: float
    cat_fee_per_share: float
    slippage_bps: float
    slippage_atr_fraction: float
    alpaca_stream_url: str
    alpaca_data_stream_url: str
    streams_enabled: bool
    stream_min_interval_seconds: float
    stream_silence_seconds: float
    alert_urls: Secret
    alert_level: str
    alert_cooldown_minutes: float
    alert_daily_summary: bool
    api_host: str
    api_port: int
    api_token: Secret

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env",
             overrides: Mapping[str, str] | None = None) -> "Settings":
        """Environment wins over `.env`, explicit overrides win over both, and all of them over the profile
        (PROFILE, trading/profiles.py), which wins over the defaults. Raises SettingsError."""
        import os

        from trading import profiles

        raw: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            raw.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        env = os.environ if environ is None else environ
        raw.update({k: v for k, v in env.items() if k in _BY_ENV})
        raw.update(overrides or {})
        if not (raw.get("PROFILE") or "").strip():
            return cls.from_mapping(raw)
        try:
            from_profile = {k: v for k, v in profiles.read(raw["PROFILE"]).items() if k not in raw}
        except profiles.ProfileError as exc:
            raise SettingsError(f"Invalid profile: {exc}", (str(exc),)) from None
        try:
            return cls.from_mapping({**from_profile, **raw})
        except SettingsError as exc:  # say which bad values came from the profile, so the fix goes there
            where = profiles.resolve(raw["PROFILE"])
            problems = tuple(p + (f" (set by the profile {where})" if p.split("=")[0] in from_profile else "")
                             for p in exc.problems)
            raise SettingsError("Invalid settings:\n  - " + "\n  - ".join(problems), problems) from None

    def profile_changes(self) -> list[str]:
        """What the profile changes from the defaults (empty without a profile), for the start-up lines."""
        from trading import profiles

        return profiles.changes(profiles.read(self.profile), self) if self.profile else []

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
                errors.append(f"{spec.env}={_shown(spec, text)} is invalid: {exc}. Allowed: {spec.allowed}.")
                continue
            if not spec.check(value):
                errors.append(f"{spec.env}={_shown(spec, text)} is out of range. Allowed: {spec.allowed}.")
                continue
            values[spec.attr] = value
        if not errors:
            errors.extend(cross_field_errors(values))
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
            raw[by_attr[attr].env] = as_text(value)
        return cls.from_mapping(raw)

    def with_changes(self, changes: Mapping[str, str]) -> "Settings":
        """These settings with some changed by name (CONFIDENCE_THRESHOLD=...), validated by the same rules as
        start-up, cross-field checks included. Raises SettingsError and changes nothing on a bad value."""
        unknown = [k for k in changes if k not in _BY_ENV]
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}", tuple(
                f"{k} is not a setting; see .env.example for the names" for k in unknown))
        raw = self.as_env()
        raw.update({k: str(v) for k, v in changes.items()})
        return Settings.from_mapping(raw)

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

    def as_env(self) -> dict[str, str]:
        """Every setting as it would be written in .env (secrets revealed: for a child process's environment or a
        validation round trip, never for a file or a log)."""
        return {s.env: as_text(getattr(self, s.attr)) for s in SPECS}

    def strategy_env(self) -> dict[str, str]:
        """Every strategy, risk, model and cost setting as it would be written in .env (not the account's or the
        machine's: MACHINE_GROUPS): what a profile, a sweep's trial or a run's replay needs."""
        machine = {s.env for s in SPECS if s.group in MACHINE_GROUPS}
        return {k: v for k, v in self.as_env().items() if k not in machine}

    def public_dict(self) -> dict[str, Any]:
        """All settings except secrets, for reports."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Secret):
                v = "set" if v else ""
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


def _shown(spec: Spec, text: str) -> str:
    """The value for an error message; a secret's never (a typo in a token must not print the token)."""
    return "(hidden)" if spec.parse is _secret else repr(text)


if __name__ == "__main__":  # python -m trading.settings > .env.example;  python -m trading.settings --readme
    import sys

    if "--readme" in sys.argv:
        update_readme()
    else:
        print(render_env_example(), end="")
