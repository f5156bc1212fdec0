"""The settings object: defaults from the design, validation messages that name the fix, secrets kept secret."""

import logging

import pytest

from trading.settings import SPECS, Secret, Settings, SettingsError, render_env_example
from trading.settings_cli import unknown_keys


def test_defaults_are_the_designs(settings):
    assert (settings.stop_loss_pct, settings.take_profit_pct, settings.max_position_pct) == (0.05, 0.15, 0.15)
    assert (settings.max_inverse_allocation, settings.confidence_threshold, settings.sleeptime) == (0.2, 0.6, "1H")
    assert (settings.rsi_period, settings.rsi_overbought, settings.rsi_oversold) == (14, 70, 30)
    assert settings.bearish_threshold == 0.6
    assert settings.bellwethers == ("AAPL", "MSFT", "GOOGL", "NVDA", "TSLA")
    assert settings.inverse_etfs == {"general": "SH", "sp500": "SPXS", "tech": "SQQQ"}
    assert settings.alpaca_paper is True and settings.enable_extended_hours is False


@pytest.mark.parametrize("env, value, expected", [
    ("STOP_LOSS_PCT", "-0.05", "STOP_LOSS_PCT='-0.05' is out of range. Allowed: 0 < x < 0.5."),
    ("TAKE_PROFIT_PCT", "0", "TAKE_PROFIT_PCT='0' is out of range. Allowed: 0 < x <= 5."),
    ("MAX_POSITION_PCT", "1.5", "MAX_POSITION_PCT='1.5' is out of range"),
    ("CONFIDENCE_THRESHOLD", "abc", "CONFIDENCE_THRESHOLD='abc' is invalid"),
    ("RSI_PERIOD", "14.5", "RSI_PERIOD='14.5' is invalid"),
    ("UNIVERSE", "AAPL,msft,123", "not a US stock symbol: 123"),
    ("INVERSE_ETFS", "general:SH,tech:SQQQ", "missing role(s): sp500"),
    ("SLEEPTIME", "hourly", "SLEEPTIME='hourly' is invalid"),
    ("ALPACA_PAPER", "maybe", "ALPACA_PAPER='maybe' is invalid: expected true or false"),
    ("RSI_OVERSOLD", "75", "RSI_OVERSOLD=75.0 must be below RSI_OVERBOUGHT=70.0"),
    ("BEARISH_EXIT_THRESHOLD", "0.6", "must be below BEARISH_THRESHOLD=0.6"),
    ("MAX_ENTRY_PCT", "0.2", "MAX_ENTRY_PCT=0.2 must not exceed MAX_POSITION_PCT=0.15"),
    ("UNIVERSE", "AAPL,SH", "UNIVERSE contains inverse ETF(s) SH"),
    ("ALPACA_API_KEY", "PKTEST", "ALPACA_API_SECRET is empty"),
    ("UNIVERSE", "aa pl", "not a US stock symbol: AA PL"),  # commas separate symbols, not spaces
    ("BELLWETHERS", " ", "BELLWETHERS is set but empty"),
    ("MIN_CASH_RESERVE", "inf", "MIN_CASH_RESERVE='inf' is invalid: not a finite number"),
    ("STOP_LOSS_PCT", "nan", "STOP_LOSS_PCT='nan' is invalid: not a finite number"),
])
def test_bad_values_name_variable_value_and_allowed_range(env, value, expected):
    with pytest.raises(SettingsError) as err:
        Settings.from_mapping({env: value})
    assert expected in str(err.value)
    assert ".env" in str(err.value), "the message says where to fix it"


def test_symbols_are_case_insensitive_and_trimmed():
    assert Settings.from_mapping({"UNIVERSE": " aapl, Msft ,JPM"}).universe == ("AAPL", "MSFT", "JPM")


def test_all_errors_are_reported_at_once():
    with pytest.raises(SettingsError) as err:
        Settings.from_mapping({"STOP_LOSS_PCT": "2", "RSI_PERIOD": "x"})
    assert "STOP_LOSS_PCT" in str(err.value) and "RSI_PERIOD" in str(err.value)


def test_environment_beats_dotenv_and_dotenv_beats_defaults(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("STOP_LOSS_PCT=0.04\nTAKE_PROFIT_PCT=0.2\nSTOP_LOS_PCT=0.1\n")
    s = Settings.load(environ={"TAKE_PROFIT_PCT": "0.25", "HOME": "/x"}, dotenv_path=env_file)
    assert (s.stop_loss_pct, s.take_profit_pct, s.max_position_pct) == (0.04, 0.25, 0.15)
    assert unknown_keys(env_file) == ["STOP_LOS_PCT"], "a typo in .env is reported"


def test_secrets_never_show(caplog):
    s = Settings.from_mapping({"ALPACA_API_KEY": "PKREALKEY123", "ALPACA_API_SECRET": "verysecretvalue"})
    percent = "%s" % (s.alpaca_api_secret,)  # noqa: UP031 - the %-style that logging uses
    for text in (repr(s), str(s), f"{s.alpaca_api_secret}", percent, str(s.public_dict())):
        assert "verysecretvalue" not in text and "PKREALKEY123" not in text
    with caplog.at_level(logging.INFO):
        logging.getLogger("trader.test").info("key %s secret %s", s.alpaca_api_key, s.alpaca_api_secret)
    assert "verysecretvalue" not in caplog.text
    assert s.alpaca_api_secret.reveal() == "verysecretvalue" and s.has_alpaca_keys
    assert repr(Secret("x")) == "Secret('***')"


def test_env_example_is_generated_from_the_settings_table():
    from tests.conftest import ROOT

    committed = (ROOT / ".env.example").read_text()
    assert committed == render_env_example(), "run: python -m trading.settings > .env.example"
    for spec in SPECS:  # every setting listed at its default; only the keys a user must fill in are live lines
        live = spec.env in ("ALPACA_API_KEY", "ALPACA_API_SECRET")
        assert f"\n{'' if live else '# '}{spec.env}={spec.default}\n" in committed
    # copied as it is to .env, it pins nothing: the defaults (and any profile) apply
    from dotenv import dotenv_values

    assert set(dotenv_values(ROOT / ".env.example")) == {"ALPACA_API_KEY", "ALPACA_API_SECRET"}


def test_defaults_helper_validates_overrides():
    assert Settings.defaults(universe=("KO", "PEP")).universe == ("KO", "PEP")
    with pytest.raises(SettingsError):
        Settings.defaults(stop_loss_pct=0.9)


def test_readme_configuration_table_is_current():
    from tests.conftest import ROOT
    from trading.settings import render_markdown_table

    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- settings-table:start -->\n")[1].split("<!-- settings-table:end -->")[0]
    assert table.strip() == render_markdown_table().strip()


# ---------------------------------------------------------------------------------------------- cross-field rules
# Every rule in cross_field_errors (trading/settings_rules.py), each at its boundary: (the values that break it, its
# own message, the nearest values that satisfy it). A new rule without a row here fails
# test_every_cross_field_rule_is_in_the_table.
CROSS_FIELD_RULES = [
    ({"RSI_OVERSOLD": "70"}, "RSI_OVERSOLD=70.0 must be below RSI_OVERBOUGHT=70.0", {"RSI_OVERSOLD": "69.9"}),
    ({"BEARISH_EXIT_THRESHOLD": "0.6"}, "BEARISH_EXIT_THRESHOLD=0.6 must be below BEARISH_THRESHOLD=0.6",
     {"BEARISH_EXIT_THRESHOLD": "0.59"}),
    ({"HEDGE_LEVERAGED_BREADTH": "0.59"}, "HEDGE_LEVERAGED_BREADTH=0.59 must be at least BEARISH_THRESHOLD=0.6",
     {"HEDGE_LEVERAGED_BREADTH": "0.6"}),
    ({"MAX_ENTRY_PCT": "0.16"}, "MAX_ENTRY_PCT=0.16 must not exceed MAX_POSITION_PCT=0.15", {"MAX_ENTRY_PCT": "0.15"}),
    ({"ATR_PCT_MIN": "0.05", "ATR_PCT_MAX": "0.05"}, "ATR_PCT_MIN=0.05 must be below ATR_PCT_MAX=0.05",
     {"ATR_PCT_MIN": "0.049", "ATR_PCT_MAX": "0.05"}),
    ({"STOP_MODEL_MIN_PCT": "0.08", "STOP_MODEL_MAX_PCT": "0.08"},
     "STOP_MODEL_MIN_PCT=0.08 must be below STOP_MODEL_MAX_PCT=0.08",
     {"STOP_MODEL_MIN_PCT": "0.079", "STOP_MODEL_MAX_PCT": "0.08"}),
    ({"TRIM_BUFFER_PCT": "0.15"}, "TRIM_BUFFER_PCT=0.15 must be below MAX_POSITION_PCT=0.15",
     {"TRIM_BUFFER_PCT": "0.149"}),
    ({"NEAR_STOP_WARNING_PCT": "0.05"}, "NEAR_STOP_WARNING_PCT=0.05 must be below STOP_LOSS_PCT=0.05",
     {"NEAR_STOP_WARNING_PCT": "0.049"}),
    ({"ATR_TARGET_MULT": "1.5"}, "ATR_TARGET_MULT=1.5 must be above ATR_STOP_MULT=1.5", {"ATR_TARGET_MULT": "1.51"}),
    ({"UNIVERSE": "AAPL,SQQQ"}, "UNIVERSE contains inverse ETF(s) SQQQ", {"UNIVERSE": "AAPL,QQQ"}),
    ({"ALPACA_API_KEY": "PKTEST"}, "ALPACA_API_KEY is set but ALPACA_API_SECRET is empty",
     {"ALPACA_API_KEY": "PKTEST", "ALPACA_API_SECRET": "s3cret"}),
]


@pytest.mark.parametrize("bad, message, good", CROSS_FIELD_RULES, ids=[next(iter(r[0])) for r in CROSS_FIELD_RULES])
def test_each_cross_field_rule_is_refused_with_its_own_message(bad, message, good):
    with pytest.raises(SettingsError) as err:
        Settings.from_mapping(bad)
    (problem,) = err.value.problems  # this rule alone fires
    assert problem.startswith(message)
    assert message in err.value.one_line() and "\n" not in err.value.one_line()
    Settings.from_mapping(good)  # the other side of the boundary is accepted


def test_every_cross_field_rule_is_in_the_table():
    import ast
    import inspect
    import textwrap

    from trading import settings_rules as module

    tree = ast.parse(textwrap.dedent(inspect.getsource(module.cross_field_errors)))
    rules = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "append"]
    assert len(rules) == len(CROSS_FIELD_RULES), "a cross-field rule without a row in CROSS_FIELD_RULES"
    refused = set()
    for bad, _, _ in CROSS_FIELD_RULES:
        with pytest.raises(SettingsError) as err:
            Settings.from_mapping(bad)
        refused.add(err.value.problems)
    assert len(refused) == len(CROSS_FIELD_RULES), "each rule has a message of its own"


def test_the_strategy_env_leaves_out_the_account_and_the_machine_and_as_env_round_trips():
    """strategy_env is what a run record (the journal), a sweep's trials and a profile get: never a key or token."""
    s = Settings.load(environ={"ALPACA_API_KEY": "PKSECRETKEY123", "ALPACA_API_SECRET": "verysecretsecret",
                               "API_TOKEN": "tok" * 8, "RETRAIN_EVERY": "5D"}, dotenv_path=None)
    env = s.strategy_env()
    assert not {"ALPACA_API_KEY", "ALPACA_API_SECRET", "API_TOKEN", "ALERT_URLS", "JOURNAL_PATH"} & set(env)
    assert env["RETRAIN_EVERY"] == "5D" and env["STOP_LOSS_PCT"] == str(s.stop_loss_pct)
    assert "PKSECRETKEY123" not in repr(env)
    assert Settings.load(environ=s.as_env(), dotenv_path=None) == s, "every setting survives the round trip"
