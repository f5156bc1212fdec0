"""The rules between settings: values each valid alone that cannot work together (an oversold level above the
overbought one, an entry the trim would cut at once ...). Each rule has its own message naming both settings;
tests/test_settings.py walks every rule at its boundary."""

from typing import Any


def cross_field_errors(v: dict[str, Any]) -> list[str]:
    """The problems of values that are each valid alone but not together (parsed values by attribute name)."""
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
    if v["atr_pct_min"] >= v["atr_pct_max"]:
        errs.append(f"ATR_PCT_MIN={v['atr_pct_min']} must be below ATR_PCT_MAX={v['atr_pct_max']} (no stock could "
                    "pass the volatility band).")
    if v["stop_model_min_pct"] >= v["stop_model_max_pct"]:
        errs.append(f"STOP_MODEL_MIN_PCT={v['stop_model_min_pct']} must be below "
                    f"STOP_MODEL_MAX_PCT={v['stop_model_max_pct']}.")
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
