"""The running bot and its model's life, on the fake Alpaca server: after the close it starts a retrain in a
process of its own and goes on without waiting; the outcome is said once; a new champion (promoted by the
retrain, trained by hand, or rolled back) is picked up at the next iteration with old and new versions, and one
that cannot be trusted is refused once while the old model keeps working."""

import time

import pandas as pd
import pytest

from models.features import FeatureParams
from models.meta_model import MetaModel, load_meta_model
from models.model_files import write_model
from models.registry import ModelStore
from models.schedule import life_line, read_state
from ops.alert_events import event_for
from tests.edge_market import edge_market, write_csv
from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import NY, LiveBot, bot_environment, scripted_market
from tests.test_meta_model import ConstantEnsemble, card_for
from trading.settings import Settings, as_text

pytestmark = pytest.mark.usefixtures("close_bots")
AFTER_CLOSE = pd.Timestamp("2023-07-05 17:00", tz=NY)  # a Wednesday


def server() -> FakeAlpaca:
    return FakeAlpaca(scripted_market(day="2023-07-06", days=1, history_sessions=5), now=AFTER_CLOSE).start()


def rows(bot, action: str) -> list[dict]:
    return [r for r in bot.strategy.decision_log.records if r.get("action") == action]


def install(model_path, members, params) -> str:
    card = card_for(feature_params=params.as_dict())
    write_model(model_path, ConstantEnsemble(members), card)
    return card["version"]


def bot_with_model(srv, tmp_path, env: dict, members) -> tuple[LiveBot, FeatureParams, str]:
    """A bot started with a constant model installed at env's MODEL_PATH as its champion."""
    params = FeatureParams.from_settings(Settings.load(environ=bot_environment(srv, **env), dotenv_path=None))
    version = install(env["MODEL_PATH"], members, params)
    bot = LiveBot(srv, tmp_path / "journal.sqlite", env=env, scorer=load_meta_model(env["MODEL_PATH"], params))
    return bot, params, version


def test_the_bot_retrains_after_the_close_without_waiting_and_picks_up_the_winner(tmp_path, monkeypatch):
    d = Settings.defaults()
    write_csv(edge_market(d), tmp_path / "bars")  # 2022-01 .. 2023-06: a market with a learnable edge
    monkeypatch.chdir(tmp_path)  # relative paths, as in a user's .env: the child must read and write the same files
    srv = server()
    try:
        env = {"UNIVERSE": as_text(d.universe), "BELLWETHERS": as_text(d.bellwethers), "RETRAIN_EVERY": "1D",
               "RETRAIN_DATA": "csv:bars", "RETRAIN_WINDOW_DAYS": "548", "MODEL_PATH": "models/meta_model.joblib"}
        bot = LiveBot(srv, tmp_path / "journal.sqlite", env=env)
        assert not isinstance(bot.strategy.scorer, MetaModel)
        t0 = time.monotonic()
        bot.iterate()  # the market is closed: the retrain starts beside the bot
        took = time.monotonic() - t0
        proc = bot.strategy._retrain
        assert proc is not None and proc.poll() is None and took < 5, "the iteration did not wait for the fit"
        log = tmp_path / "models" / "retrain.log"
        assert proc.wait(timeout=300) == 0, log.read_text()[-2000:]
        state = read_state(ModelStore(env["MODEL_PATH"]))
        assert state["outcome"] == "promoted", state["why"]
        for _ in range(3):
            srv.advance(pd.Timedelta(hours=1))
            bot.iterate()
        said = [r["reason"] for r in bot.strategy.decision_log.records if "scheduled retrain" in r["reason"]]
        assert len(said) == 1 and said[0].startswith("scheduled retrain promoted: promoted: on the"), said
        (changed,) = rows(bot, "model-changed")
        assert changed["reason"].startswith("model changed: rule-based score") and state["version"] in \
            changed["reason"]
        assert event_for(changed).event == "model_changed"
        assert isinstance(bot.strategy.scorer, MetaModel) and bot.strategy.scorer.version == state["version"]
        assert bot.strategy._retrain is None, "not due again until the next close: nothing relaunched"
        assert "ALPACA_API_SECRET" not in log.read_text() and srv.secret not in log.read_text()
        srv.advance(pd.Timedelta(hours=17, minutes=31))  # the next session: the new model scores with features
        bot.iterate()
        assert bot.strategy.venue.history_bars == 1500 and bot.strategy.features is not None
        errors = [r["reason"] for r in bot.strategy.decision_log.records if r.get("level") == "error"]
        assert not errors and bot.strategy.session == "regular"
        line = life_line(bot.settings)  # what check_positions_now.py and the status record show
        assert f"champion {state['version']} (trained on 2022-01-03 .. 2023-06-30)" in line
        assert "last retrain 2023-07-05T17:00: promoted" in line and "RETRAIN_EVERY=1D" in line
    finally:
        srv.stop()


def test_a_failed_scheduled_retrain_is_said_once_and_the_model_stays(tmp_path):
    srv = server()
    try:
        path = tmp_path / "models" / "meta_model.joblib"
        env = {"RETRAIN_EVERY": "1D", "RETRAIN_DATA": f"csv:{tmp_path / 'nowhere'}", "MODEL_PATH": str(path)}
        bot, _, old = bot_with_model(srv, tmp_path, env, (0.5, 0.5, 0.5))
        bot.iterate()
        assert bot.strategy._retrain.wait(timeout=120) == 2
        for _ in range(3):
            srv.advance(pd.Timedelta(hours=1))
            bot.iterate()
        (failed,) = rows(bot, "retrain-failed")
        assert "no such folder" in failed["reason"] and f"the champion {old} stays" in failed["reason"]
        assert failed["level"] == "warning" and event_for(failed).event == "retrain_failed"
        assert bot.strategy.scorer.version == old and not rows(bot, "model-changed")
    finally:
        srv.stop()


def test_a_new_champion_is_picked_up_and_one_that_cannot_be_trusted_is_refused_once(tmp_path):
    srv = server()
    try:
        path = tmp_path / "models" / "meta_model.joblib"
        env = {"MODEL_PATH": str(path)}
        bot, params, a = bot_with_model(srv, tmp_path, env, (0.1, 0.1, 0.1))
        bot.iterate()
        assert not rows(bot, "model-changed")
        b = install(path, (0.9, 0.9, 0.9), params)  # trained by hand while the bot runs
        srv.advance(pd.Timedelta(hours=1))
        bot.iterate()
        (changed,) = rows(bot, "model-changed")
        assert f"meta-model {a}" in changed["reason"].split("->")[0] and f"meta-model {b}" in changed["reason"]
        assert bot.strategy.scorer.version == b
        store = ModelStore(path)
        c = store.add(ConstantEnsemble((0.3, 0.3, 0.3)), card_for(feature_params=params.as_dict()))
        target = store.versions / c / "meta_model.joblib"
        target.write_bytes(target.read_bytes() + b"\0")  # changed after training: its card no longer vouches
        store.promote(c, "test")
        for _ in range(2):
            srv.advance(pd.Timedelta(hours=1))
            bot.iterate()
        (refused,) = rows(bot, "retrain-failed")
        assert "is refused" in refused["reason"] and "the file changed since training" in refused["reason"]
        assert bot.strategy.scorer.version == b, "the model in hand keeps working"
        store.rollback()  # back to b: the same model, nothing to change
        srv.advance(pd.Timedelta(hours=1))
        bot.iterate()
        assert len(rows(bot, "model-changed")) == 1 and bot.strategy.scorer.version == b
    finally:
        srv.stop()


def test_the_drift_watch_keeps_its_recent_candidates_across_a_model_change_and_a_restart(tmp_path):
    """What the watch saw is saved after the close and taken back by the next process; a new champion with the
    same features keeps it too (the market's recent candidates do not change with the model)."""
    import numpy as np

    from strategies.model_life import WATCH_STATE

    srv = server()  # after the close
    try:
        path = tmp_path / "models" / "meta_model.joblib"
        env = {"MODEL_PATH": str(path)}
        bot, params, _ = bot_with_model(srv, tmp_path, env, (0.5, 0.5, 0.5))
        n = len(bot.strategy.scorer.watch.features)
        seen = np.arange(7 * n, dtype=float).reshape(7, n)
        bot.strategy.scorer.watch.record(seen)  # seven candidates scored during the day
        bot.iterate()
        assert bot.journal.get_state(WATCH_STATE)["rows"] == seen.tolist()
        install(path, (0.6, 0.6, 0.6), params)  # a new champion
        srv.advance(pd.Timedelta(hours=1))
        bot.iterate()
        assert rows(bot, "model-changed") and bot.strategy.scorer.watch.window()["rows"] == seen.tolist()
        bot.close()

        again, _, _ = bot_with_model(srv, tmp_path, env, (0.6, 0.6, 0.6))  # the bot restarted
        assert again.strategy.scorer.watch.window()["rows"] == seen.tolist()
        assert any("the features of 7 recent candidates taken back" in r["reason"]
                   for r in again.strategy.decision_log.records)
    finally:
        srv.stop()


def bot_with_child(srv, tmp_path, monkeypatch, body: str) -> LiveBot:
    """A bot due to retrain after the close, whose retrain child is this shell script instead of models.train."""
    import strategies.model_life as life

    path = tmp_path / "child.sh"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    monkeypatch.setattr(life.sys, "executable", str(path))
    env = {"RETRAIN_EVERY": "1D", "RETRAIN_DATA": "builtin", "MODEL_PATH": str(tmp_path / "m" / "meta_model.joblib")}
    return LiveBot(srv, tmp_path / "journal.sqlite", env=env)


def test_a_retrain_that_dies_without_an_outcome_is_said_once_and_not_relaunched_the_same_night(tmp_path,
                                                                                               monkeypatch):
    srv = server()
    try:
        bot = bot_with_child(srv, tmp_path, monkeypatch, "exit 9")  # killed, or it could not start
        bot.iterate()
        first = bot.strategy._retrain
        assert first is not None and first.wait(timeout=30) == 9
        for _ in range(3):
            srv.advance(pd.Timedelta(hours=1))
            bot.iterate()
        (said,) = rows(bot, "retrain-failed")
        assert "ended (exit code 9) without an outcome" in said["reason"] and event_for(said).event == "retrain_failed"
        assert bot.strategy._retrain is None, "one launch per close, whatever became of it"
    finally:
        srv.stop()


def test_a_retrain_still_running_at_the_open_is_stopped(tmp_path, monkeypatch):
    srv = server()
    try:
        bot = bot_with_child(srv, tmp_path, monkeypatch, "exec sleep 120")
        bot.iterate()
        child = bot.strategy._retrain
        assert child is not None and child.poll() is None
        srv.advance(pd.Timedelta(hours=16, minutes=31))  # 09:31 the next morning
        bot.iterate()
        assert child.poll() is not None and bot.strategy._retrain is None
        (said,) = rows(bot, "retrain-failed")
        assert said["reason"].startswith("scheduled retrain stopped: the market opened; the champion stays")
    finally:
        srv.stop()


def test_model_housekeeping_that_fails_never_stops_the_trading(tmp_path, monkeypatch):
    import strategies.model_life as life

    srv = server()
    try:
        path = tmp_path / "models" / "meta_model.joblib"
        env = {"MODEL_PATH": str(path)}
        bot, params, _ = bot_with_model(srv, tmp_path, env, (0.1, 0.1, 0.1))

        def broken(settings):
            raise RuntimeError("the disk said no")

        monkeypatch.setattr(life, "load_confidence", broken)
        install(path, (0.9, 0.9, 0.9), params)
        for _ in range(3):
            srv.advance(pd.Timedelta(hours=1))
            bot.iterate()  # no exception reaches Lumibot (it would stop the bot)
        (said,) = rows(bot, "retrain-failed")
        assert said["reason"].startswith("model housekeeping failed (RuntimeError: the disk said no); trading goes "
                                         "on")
        srv.advance(pd.Timedelta(hours=13, minutes=31))  # 09:31: the session
        bot.iterate()
        assert bot.strategy.iterations == 1 and bot.strategy.scorer.version, "the bot trades on with its model"
    finally:
        srv.stop()
