"""The API started with the live bot against the fake Alpaca server: what it shows is what the broker holds, and
its control calls change what the bot does at its next iteration."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from tests.fake_alpaca import FakeAlpaca
from tests.live_harness import NY, LiveBot, accepted_orders, unprotected_positions
from tests.ops.conftest import TOKEN, start_api

pytestmark = pytest.mark.usefixtures("close_bots")
OPEN = "2024-03-05 09:31"


@pytest.fixture
def srv(day_bars):
    """$100k and an unprotected XOM position worth a quarter of the account (above the 15% cap)."""
    s = FakeAlpaca(day_bars, now=pd.Timestamp(OPEN, tz=NY)).start()
    s.add_position("XOM", int(0.25 / 0.75 * 100_000 / s.price("XOM")), 80.0)
    yield s
    s.stop()


@pytest.fixture
def bot_api(srv, tmp_path):
    bot = LiveBot(srv, tmp_path / "journal.sqlite")
    server = start_api(bot.journal_path, bot=bot.strategy)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
        yield bot, client
    server.stop()


def sells(srv: FakeAlpaca, symbol: str, intent: str) -> list[dict]:
    """The bot's orders for one intent (client ids are strategy-SYMBOL-intent-YYYYmmddTHHMM-hash)."""
    return [o for o in accepted_orders(srv) if o["symbol"] == symbol
            and "-".join(o.get("client_order_id", "").split("-")[2:-2]) == intent]


def test_positions_and_orders_show_the_protection_the_iteration_just_placed(srv, bot_api):
    bot, api = bot_api
    assert api.get("/api/status").json()["has_status"] is False  # nothing before the first iteration
    bot.iterate()
    srv.advance(pd.Timedelta(minutes=1))
    status = api.get("/api/status").json()
    assert status["mode"] == "paper" and status["risk"]["mode"] == "ACTIVE" and status["broker"]["reachable"]
    assert pd.Timestamp(status["next_iteration"]) - pd.Timestamp(status["time"]) == pd.Timedelta(hours=1)
    (xom,) = [p for p in api.get("/api/positions").json()["positions"] if p["symbol"] == "XOM"]
    assert unprotected_positions(srv) == [] and xom["protected"] is True and status["unprotected"] == []
    stop = next(o for o in srv.orders.values() if o["symbol"] == "XOM" and o["type"] == "stop"
                and o["status"] in ("new", "accepted", "held"))
    assert xom["stop"] == pytest.approx(float(stop["stop_price"]))
    assert xom["qty"] == pytest.approx(float(srv.positions()["XOM"]["qty"]))  # after the trim, as the broker has it
    legs = [leg for o in api.get("/api/orders").json()["orders"] for leg in [o, *o["legs"]] if o["symbol"] == "XOM"]
    assert {leg["role"] for leg in legs} >= {"stop"}
    health = api.get("/api/health").json()
    assert health["bot_attached"] and health["bot_iterations"] == 1


def test_a_settings_change_through_the_api_changes_the_next_iteration_and_survives_a_restart(srv, bot_api, tmp_path):
    bot, api = bot_api
    # with the cap at 30% the quarter-sized XOM is no longer above it: the first iteration protects it, no trim
    r = api.post("/api/settings", json={"MAX_POSITION_PCT": 0.30})
    assert r.status_code == 200
    bot.iterate()
    assert sells(srv, "XOM", "trim") == [] and unprotected_positions(srv) == []
    assert bot.strategy.settings.max_position_pct == 0.30
    assert any("settings changed (api 127.0.0.1): MAX_POSITION_PCT 0.15 -> 0.3" in line for line in bot.lines("plan"))
    restarted = LiveBot(srv, bot.journal_path)
    assert restarted.strategy.settings.max_position_pct == 0.30
    # back to 15%: the next iteration trims, as the default would have
    assert api.post("/api/settings", json={"MAX_POSITION_PCT": 0.15}).status_code == 200
    srv.advance(pd.Timedelta(hours=1))
    restarted.iterate()
    assert len(sells(srv, "XOM", "trim")) == 1


def test_halt_and_flatten_from_the_api_reach_the_bot(srv, bot_api):
    bot, api = bot_api
    bot.iterate()
    assert api.post("/api/halt").status_code == 200
    srv.advance(pd.Timedelta(hours=1))
    bot.iterate()
    status = api.get("/api/status").json()
    assert bot.strategy.risk.mode.name == "HALTED" and status["risk"]["mode"] == "HALTED"
    assert "halted by the halt command" in status["risk"]["why"]
    assert unprotected_positions(srv) == []  # a halt keeps protection
    assert api.post("/api/flatten").status_code == 200
    srv.advance(pd.Timedelta(hours=1))
    bot.iterate()
    srv.advance(pd.Timedelta(minutes=1))  # market orders fill after their POST answered, as on Alpaca
    assert srv.positions() == {}
    controls = api.get("/api/controls").json()
    assert [c["action"] for c in controls] == ["flatten", "halt"] and {c["source"] for c in controls} == {
        "api 127.0.0.1"}


def test_an_outage_shows_as_broker_unreachable(srv, bot_api):
    bot, api = bot_api
    bot.iterate()
    srv.faults.add("503", times=None)
    srv.advance(pd.Timedelta(hours=1))
    bot.iterate()
    status = api.get("/api/status").json()
    assert status["broker"]["reachable"] is False and status["broker"]["outage_iterations"] == 1
    srv.faults.clear()
    srv.advance(pd.Timedelta(hours=1))
    bot.iterate()
    assert api.get("/api/status").json()["broker"]["reachable"] is True
