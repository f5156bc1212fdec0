"""EXIT_CONFIDENCE: each iteration the meta-model re-scores the open trades, and one it no longer expects to pay is
closed at market, its legs cancelled first, through the one order path; on the fake Alpaca server the position is
gone and the journal says why ('model')."""

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from tests.builders import oco_legs, snapshot
from trading.intents import IntentKind
from trading.order_ids import OrderIds
from trading.records.ledger import Lot
from trading.settings import Settings
from trading.steps.exits import plan_exits, rescore

NY = ZoneInfo("America/New_York")
S = replace(Settings.defaults(), exit_confidence=0.0)
IDS = OrderIds("combined", snapshot().now)


def lot(sym="JPM", entry=100.0, hours=5.0, kind="entry") -> Lot:
    return Lot(sym, 100, entry, datetime(2024, 3, 4, 9, 30, tzinfo=NY), kind, entry * 0.95, entry * 0.95,
               entry * 1.15, hours_held=hours)


def held(price=101.0):
    return snapshot(cash=50_000, holdings=[("JPM", 100, 100.0)], orders=oco_legs("JPM", 100, 95.0, 115.0),
                    prices={"JPM": {"close": price, "atr": 2.0}})


@pytest.mark.parametrize("expected_r, threshold, exits", [
    (-0.2, 0.0, True), (0.0, 0.0, False),  # at the threshold it stays
    (0.3, 0.5, True), (float("nan"), 0.0, False),  # no complete features: never exits on them
    (-3.0, None, False),  # EXIT_CONFIDENCE empty: off
])
def test_a_trade_the_model_no_longer_expects_to_pay_is_closed(expected_r, threshold, exits):
    s = replace(S, exit_confidence=threshold)
    out = plan_exits(held(), s, {"JPM": lot()}, set(), IDS, {"JPM": expected_r})
    kinds = [d.intent.kind for d in out if d.intent]
    assert (kinds == [IntentKind.MODEL_EXIT]) == exits
    if exits:
        (d,) = out
        assert d.intent.orders[0].qty == 100 and set(d.intent.cancel_order_ids) == {"g1", "g1-tp", "g1-sl"}
        assert "EXIT_CONFIDENCE" in d.reason and d.data["expected_r"] == expected_r


class Scorer:
    def __init__(self, values=None, fail=False):
        self.values, self.fail, self.calls = values, fail, []

    def assess(self, rows, record=True):
        assert record is False, "open trades are not entry candidates: kept out of the drift window"
        self.calls.append(list(rows.index))
        if self.fail:
            raise RuntimeError("corrupt")
        return pd.DataFrame({"expected_r": self.values[: len(rows)]}, index=rows.index)


def test_rescore_scores_the_open_entry_trades_in_one_call_and_never_the_hedge():
    snap = snapshot(cash=50_000, holdings=[("JPM", 100, 100.0), ("SH", 50, 14.0), ("XOM", 10, 100.0)],
                    prices={"JPM": 101.0, "SH": 14.0, "XOM": 99.0})
    trades = {"JPM": lot(), "SH": lot("SH", 14.0, kind="hedge"), "XOM": lot("XOM")}
    model = Scorer(np.array([-0.5, 0.4]))
    scores, notes = rescore(snap, S, model, trades)
    assert model.calls == [["JPM", "XOM"]] and scores == {"JPM": -0.5, "XOM": 0.4} and notes == []
    assert rescore(snap, replace(S, exit_confidence=None), model, trades) == ({}, [])
    assert rescore(snap, S, object(), trades) == ({}, []), "the rule-based score has no expected R"
    scores, (note,) = rescore(snap, S, Scorer(fail=True), trades)
    assert scores == {} and "failed" in note.reason and note.level == "warning"


def test_a_time_exit_due_goes_first():
    s = replace(S, time_exit_hours=24.0)
    (d,) = plan_exits(held(), s, {"JPM": lot(hours=30)}, set(), IDS, {"JPM": -1.0})
    assert d.intent.kind == IntentKind.TIME_EXIT


@pytest.mark.usefixtures("close_bots")
def test_the_model_exit_sells_through_the_order_path_on_the_fake_server(tmp_path):
    from models.features import FeatureParams
    from models.meta_model import load_meta_model
    from tests.fake_alpaca import FakeAlpaca
    from tests.live_harness import LiveBot, bot_environment, scripted_market
    from tests.test_meta_model import constant_model

    bars = scripted_market(history_sessions=230)  # the model's features need a 1,500-bar window
    rng = np.random.default_rng(2)
    for df in bars.values():  # and a volume that varies (its z-score is a feature)
        df["volume"] = (df["volume"] * rng.uniform(0.5, 1.5, len(df))).round()
    srv = FakeAlpaca(bars, now=pd.Timestamp("2024-03-05 09:31", tz=NY)).start()
    try:
        srv.add_position("MSFT", 10, 390.0)
        env = {"EXIT_CONFIDENCE": "0", "BREADTH_ENTRY_GATE": "false", "UNIVERSE": "MSFT"}
        settings = Settings.load(environ=bot_environment(srv, **env), dotenv_path=None)
        params = FeatureParams.from_settings(settings)
        path = constant_model(tmp_path, (-0.5, -0.4, -0.6), feature_params=params.as_dict())
        bot = LiveBot(srv, tmp_path / "journal.sqlite", env=env, scorer=load_meta_model(path, params))
        bot.iterate()  # MSFT found unprotected, re-scored at -0.5R < 0: sold rather than protected
        protect = [r for r in bot.strategy.decision_log.records if r["symbol"] == "MSFT" and r["action"] == "protect"]
        assert protect and "superseded by the model-exit" in protect[0]["reason"]
        srv.advance(pd.Timedelta(minutes=5))  # the market order fills on a later step, as on Alpaca
        bot.iterate()
        assert "MSFT" not in srv.positions(), bot.lines("exits")
        (line,) = [x for x in bot.lines("exits") if "EXIT_CONFIDENCE" in x]
        assert "expected R -0.50 < EXIT_CONFIDENCE +0.00" in line
        trades = bot.journal.frame("closed_trades")
        assert trades.loc[trades["symbol"] == "MSFT", "exit_reason"].tolist() == ["model"]
        live = [o for o in srv.orders.values() if o["symbol"] == "MSFT" and o["status"] in ("new", "accepted", "held")]
        assert live == [], "no order left behind"
    finally:
        srv.stop()


def test_a_model_exit_is_fitted_to_the_brokers_position_like_any_full_exit():
    """After its legs are cancelled the sale is re-sized from what the broker then holds (a leg may have filled
    meanwhile): exactly as a time exit is, never more than is held, nothing when flat."""
    from tests.test_resize import FULL, LEGS, SYM, sell
    from trading.execution.resize import fit_to_position
    from trading.intents import Intent

    for case, position, _, _ in FULL:
        model = fit_to_position(Intent(IntentKind.MODEL_EXIT, SYM, (sell(10, "model-exit"),), LEGS), position)
        timed = fit_to_position(Intent(IntentKind.TIME_EXIT, SYM, (sell(10, "model-exit"),), LEGS), position)
        assert model == timed, case


def test_a_halt_still_lets_a_model_exit_close_the_position():
    from trading.intents import Intent

    assert Intent(IntentKind.MODEL_EXIT, "JPM", ()).protective, "HALTED keeps protective intents: closing is one"
    assert not Intent(IntentKind.ENTER, "JPM", ()).protective
