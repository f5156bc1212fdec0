"""The model's live watch (models/model_watch.py): the trades entered since it was trained against its card's
out-of-sample record. MODEL_DEGRADED_ACTION=warn says so once a day; stop also blocks new entries, through the
real strategy on the fake Alpaca server; the journal hands the watch exactly the trades entered since training."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from models.meta_model import load_meta_model
from tests.test_meta_model import PARAMS, constant_model
from trading.records.journal import Journal

RECORD = {"mean": 0.2, "sd": 1.2, "n": 2_000}
CREATED = datetime(2024, 1, 2, tzinfo=UTC)


def trade(entered: datetime, r: float, kind: str = "entry") -> dict:
    return {"symbol": "JPM", "kind": kind, "qty": 10, "entry_time": entered, "entry_price": 100.0,
            "exit_time": entered + timedelta(days=1), "exit_price": 100.0 + 5 * r, "exit_reason": "stop",
            "pnl_usd": 50.0 * r, "return_pct": 0.05 * r, "r_multiple": r, "mfe_r": 0.0, "mae_r": 0.0,
            "hedged": False}


def losing_journal(path, n: int = 30, r: float = -0.6) -> None:
    j = Journal(path)
    before = [trade(CREATED - timedelta(days=3), 2.0)]  # entered before the model existed: not its record
    hedge = [trade(CREATED + timedelta(days=1), 3.0, kind="hedge")]
    losers = [trade(CREATED + timedelta(days=1, hours=k), r) for k in range(n)]
    j.record_fill(CREATED + timedelta(days=40), "f1", "JPM", "sell", 10, 100.0, "stop", before + hedge + losers)
    j.close()


def test_the_journal_gives_the_r_of_entries_made_since_a_time(tmp_path):
    losing_journal(tmp_path / "j.sqlite", n=3)
    j = Journal(tmp_path / "j.sqlite")
    assert j.entry_r_since(CREATED) == [-0.6, -0.6, -0.6], "hedges and earlier entries are not the model's"
    assert j.entry_r_since(CREATED - timedelta(days=5)) == [2.0, -0.6, -0.6, -0.6]
    j.record_fill(CREATED + timedelta(days=41), "f2", "JPM", "sell", 10, 100.0, "target",
                  [trade(CREATED + timedelta(days=2), 3.0)])
    assert j.entry_r_since(CREATED)[-1] == 3.0, "a trade closed now is seen without re-reading the file"
    j.record_fill(CREATED + timedelta(days=42), "f3", "JPM", "sell", 10, 100.0, "stop", [trade(CREATED, -1.0)])
    assert j.entry_r_since(CREATED)[-1] == -1.0, "entered at the very moment the model was trained: its own"
    j.close()


@pytest.mark.parametrize("action, blocked", [("warn", False), ("stop", True)])
def test_a_decayed_edge_warns_or_blocks_entries(tmp_path, caplog, action, blocked):
    model = load_meta_model(constant_model(tmp_path, (0.5, 0.5, 0.5), created=CREATED, live_expectation=RECORD),
                            PARAMS, max_age_days=1e6)
    model.watch.action = action
    now = CREATED + timedelta(days=40)
    model.observe_results([0.3] * 30)
    assert model.gate(now) is None, "a record like the card's"
    model.observe_results([-0.6] * 30)
    with caplog.at_level("INFO", logger="trader.model"):
        reason = model.gate(now + timedelta(days=1))
        model.gate(now + timedelta(days=1, hours=1))
    assert (reason is not None) == blocked
    if blocked:
        assert "decayed" in reason and "MODEL_DEGRADED_ACTION=stop" in reason
    said = [r for r in caplog.records if "decayed" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING", "once a day, whatever the action"
    model.observe_results([-0.6] * 30 + [0.6] * 50)
    assert model.gate(now + timedelta(days=2)) is None, "the last 50 trades recovered: entries resume"


@pytest.mark.usefixtures("close_bots")
@pytest.mark.parametrize("action", ["warn", "stop", "fallback"])
def test_stop_blocks_new_entries_through_the_strategy_on_the_fake_server(day_bars, tmp_path, action):
    from models.features import FeatureParams
    from tests.fake_alpaca import FakeAlpaca
    from tests.live_harness import NY, LiveBot, accepted_orders, bot_environment
    from trading.settings import Settings

    srv = FakeAlpaca(day_bars, now=pd.Timestamp("2024-03-05 09:31", tz=NY)).start()
    try:
        journal = tmp_path / "journal.sqlite"
        losing_journal(journal)
        env = {"BREADTH_ENTRY_GATE": "false", "MODEL_DEGRADED_ACTION": action}
        settings = Settings.load(environ=bot_environment(srv, **env), dotenv_path=None)
        path = constant_model(tmp_path, (0.5, 0.5, 0.5), created=CREATED, live_expectation=RECORD,
                              feature_params=FeatureParams.from_settings(settings).as_dict())
        model = load_meta_model(path, FeatureParams.from_settings(settings), max_age_days=1e6)
        model.watch.action = settings.model_degraded_action
        bot = LiveBot(srv, journal, env=env, scorer=model)
        bot.iterate()
        entries = [o for o in accepted_orders(srv) if "-enter-" in o.get("client_order_id", "")]
        lines = bot.lines("entry")
        judged = [line for line in lines if "expected R" in line]  # candidates the model scored
        if action == "stop":
            assert entries == [] and not judged and any("decayed" in line for line in lines), lines
            blocked = [r for r in bot.strategy.decision_log.records if r["action"] == "blocked"]
            assert blocked and blocked[0].get("gate") == "model", "counted under its own gate"
        elif action == "fallback":  # the rule-based score judges, and JPM's dip (RSI 3.7) goes out as a bracket
            assert not judged and any("(rule)" in line for line in lines) and entries, lines
            (note,) = [r for r in bot.strategy.decision_log.records if r["action"] == "fallback"]
            assert "decayed" in note["reason"] and note.get("gate") == "model"
        else:  # warn: the candidates are judged as usual (the scripted window is too short for every feature)
            assert judged and not any("decayed" in line for line in lines), lines
        assert model.watch.verdict.n == 30 and model.watch.verdict.degraded
        from trading.records.status import model_watch_line, read_status

        status = read_status(journal)  # what the API, the dashboard and check_positions_now.py read
        edge = status["model"]["watch"]["edge"]
        assert edge["decayed"] and edge["trades"] == 30 and edge["average_r"] == pytest.approx(-0.6)
        assert status["model"]["watch"]["action"] == action
        line = model_watch_line(status)
        assert f"MODEL_DEGRADED_ACTION={action}" in line and "edge has decayed" in line
    finally:
        srv.stop()


def test_the_settings_reach_the_watch(tmp_path):
    from models.meta_model import load_confidence
    from trading.settings import Settings

    path = constant_model(tmp_path, (0.5, 0.5, 0.5), live_expectation=RECORD)
    s = Settings.defaults(model_path=str(path), model_degraded_action="stop", model_watch_min_trades=40)
    model = load_confidence(s)
    assert (model.watch.action, model.watch.min_trades) == ("stop", 40)
    model.observe_results([-0.6] * 39)
    assert model.watch.verdict is None, "fewer than MODEL_WATCH_MIN_TRADES: no verdict yet"


def test_no_model_no_watch_line():
    from trading.records.status import model_watch_line

    assert model_watch_line({"model": {"describe": "rule-based", "watch": None}}) is None
    assert model_watch_line(None) is None
