"""Settings profiles (trading/profiles.py, profiles/*.env): validated like .env, below .env and the environment."""


import pytest

from tests.conftest import run_cli
from trading.profiles import available
from trading.settings import Settings, SettingsError


def load(**env) -> Settings:
    return Settings.load(environ=env, dotenv_path=None)


def test_the_shipped_profiles_load_and_point_the_way_their_names_say():
    assert set(available()) >= {"conservative", "balanced", "aggressive", "paper"}
    balanced, conservative, aggressive = (load(PROFILE=p) for p in ("balanced", "conservative", "aggressive"))
    assert balanced == load().with_changes({"PROFILE": "balanced"})  # balanced is the defaults, named
    assert conservative.risk_per_trade_pct < balanced.risk_per_trade_pct < aggressive.risk_per_trade_pct
    assert conservative.confidence_threshold > balanced.confidence_threshold > aggressive.confidence_threshold
    assert conservative.max_gross_exposure_pct < balanced.max_gross_exposure_pct < aggressive.max_gross_exposure_pct
    assert conservative.daily_loss_limit_pct < balanced.daily_loss_limit_pct < aggressive.daily_loss_limit_pct
    assert conservative.ensemble_agreement > balanced.ensemble_agreement > aggressive.ensemble_agreement
    assert 0 < conservative.max_uncertainty and balanced.max_uncertainty == aggressive.max_uncertainty == 0  # 0: off
    assert not conservative.enable_leveraged_hedge
    assert conservative.time_exit_hours > 0 == balanced.time_exit_hours  # it keeps the time exit; the default has none


def test_environment_and_env_file_win_over_the_profile(tmp_path):
    assert load(PROFILE="conservative").risk_per_trade_pct == 0.005
    assert load(PROFILE="conservative", RISK_PER_TRADE_PCT="0.008").risk_per_trade_pct == 0.008
    dotenv = tmp_path / ".env"
    dotenv.write_text("PROFILE=conservative\nCONFIDENCE_THRESHOLD=0.65\n")
    s = Settings.load(environ={}, dotenv_path=dotenv)
    assert (s.confidence_threshold, s.risk_per_trade_pct) == (0.65, 0.005)
    changes = s.profile_changes()
    assert "RISK_PER_TRADE_PCT: 0.01 -> 0.005" in changes
    assert "CONFIDENCE_THRESHOLD: 0.6 -> 0.7 (overridden by .env or the environment: 0.65)" in changes


def test_a_profile_file_by_path_is_validated_by_the_same_rules(tmp_path):
    good = tmp_path / "mine.env"
    good.write_text("STOP_LOSS_PCT=0.03\nTAKE_PROFIT_PCT=0.09\n")
    assert load(PROFILE=str(good)).take_profit_pct == 0.09
    bad = tmp_path / "bad.env"
    bad.write_text("STOP_LOSS_PCT=0.9\n")
    with pytest.raises(SettingsError, match=r"STOP_LOSS_PCT='0.9' is out of range.*set by the profile .*bad.env"):
        load(PROFILE=str(bad))


@pytest.mark.parametrize("line, problem", [
    ("ALPACA_API_SECRET=abc", "ALPACA_API_SECRET belongs in .env, not in a profile"),
    ("API_TOKEN=abcdefghijklmnopqrst", "API_TOKEN belongs in .env"),
    ("STOPLOSS_PCT=0.03", "STOPLOSS_PCT is not a setting"),
    ("PROFILE=aggressive", "PROFILE belongs in .env"),
])
def test_a_profile_may_not_hold_secrets_machine_settings_or_unknown_names(tmp_path, line, problem):
    path = tmp_path / "p.env"
    path.write_text(line + "\n")
    with pytest.raises(SettingsError, match=problem):
        load(PROFILE=str(path))


def test_an_unknown_profile_names_the_ones_there_are():
    with pytest.raises(SettingsError, match="no such profile; use one of aggressive, balanced, conservative"):
        load(PROFILE="reckless")


def test_the_cli_says_what_the_profile_changes_and_refuses_a_bad_one(tmp_path):
    r = run_cli("--backtest", "--profile", "conservative", "--start", "2024-01-02", "--end", "2024-01-19",
             "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    first = r.stdout.splitlines()[0]
    assert first.startswith("profile conservative: RISK_PER_TRADE_PCT: 0.01 -> 0.005; CONFIDENCE_THRESHOLD: 0.6 -> 0.7")
    settings = (next((tmp_path / "reports").iterdir()) / "settings.json").read_text()
    assert '"risk_per_trade_pct": 0.005' in settings
    r = run_cli("--backtest", "--profile", "reckless", cwd=tmp_path)
    assert r.returncode == 2 and "no such profile" in r.stderr and "Traceback" not in r.stderr
