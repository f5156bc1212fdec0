"""Environment switches Lumibot reads at import time. Call `prepare()` before importing lumibot.

Why (../shared/reference/lumibot-notes.md, sections 1.2, 5.2 and 6):
- Lumibot loads the first `.env` it finds up the directory tree and, if it holds ALPACA_API_KEY,
  builds a live Alpaca broker during the import. We read `.env` ourselves (trading.settings) and build
  the broker explicitly, so its own loading is switched off and credentials are lazy.
- Backtests must never open a browser or reach Yahoo; caches go to a temporary folder unless set.
- BACKTESTING_* variables silently override code (data source, budget, dates): they are removed.
"""

import os
import tempfile

OVERRIDING = ("BACKTESTING_DATA_SOURCE", "BACKTESTING_BUDGET", "BACKTESTING_START", "BACKTESTING_END",
              "LUMIBOT_STRATEGY_PARAMETERS")


def prepare(backtesting: bool) -> None:
    defaults = {
        "LUMIBOT_DISABLE_DOTENV": "true",
        "LUMIBOT_LAZY_CREDENTIALS": "true",
        "LUMIBOT_LOG_LEVEL": "ERROR",
        "LUMIBOT_HIDE_BOTSPOT_TIP": "1",
        "LUMIBOT_DISABLE_UI": "true",
        "LUMIBOT_TELEMETRY": "false",
        "LUMIBOT_SHARED_BARS": "false",
        "SHOW_PLOT": "False",
        "SHOW_TEARSHEET": "False",
        "SHOW_INDICATORS": "False",
        "MPLBACKEND": "Agg",
    }
    if backtesting:
        defaults["IS_BACKTESTING"] = "true"
        for key in OVERRIDING:
            os.environ.pop(key, None)
        if "LUMIBOT_CACHE_FOLDER" not in os.environ:
            defaults["LUMIBOT_CACHE_FOLDER"] = tempfile.mkdtemp(prefix="lumibot-cache-")
        if "LUMIBOT_TRADING_DAYS_CACHE_DIR" not in os.environ:
            defaults["LUMIBOT_TRADING_DAYS_CACHE_DIR"] = tempfile.mkdtemp(prefix="lumibot-days-")
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


class _DropFillRejectNoise:
    """Lumibot 4.6.30 logs an ERROR for every resting order at each pre-open check that follows a
    weekend or holiday ("[FILL][REJECT] Selected bar ... away from sim dt ...; refusing to fabricate
    fill"). It is harmless: the order is checked again at the open. Hundreds of such lines hide real
    errors, so exactly this message is dropped."""

    def filter(self, record) -> bool:
        return not str(record.msg).startswith("[FILL][REJECT] Selected bar")


def quiet_known_noise() -> None:
    import logging

    logging.getLogger("lumibot.backtesting.backtesting_broker").addFilter(_DropFillRejectNoise())
