"""The status and control API, served by real uvicorn on a loopback port, driven with httpx, over the journal of a
short backtest."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.ops.conftest import TOKEN, start_api
from trading.records.journal import Journal
from trading.risk.kill_switch import COMMAND_KEY
from trading.settings_runtime import OVERRIDES_KEY

READS = ("/api/status", "/api/positions", "/api/orders", "/api/decisions", "/api/trades", "/api/performance",
         "/api/equity", "/api/alerts", "/api/controls", "/api/health", "/api/settings", "/metrics", "/docs",
         "/openapi.json", "/static/plotly.min.js")
CONTROLS = ("/api/halt", "/api/resume", "/api/flatten")


def test_every_endpoint_refuses_without_or_with_a_wrong_token_and_never_logs_it(api, caplog):
    caplog.set_level(logging.WARNING, logger="trader.api")
    api.server.ctx.guard.max_failures = 100  # the rate limit has its own test
    with httpx.Client(base_url=api.server.url, timeout=10) as anon:
        for path in READS + CONTROLS:
            method = anon.post if path in CONTROLS else anon.get
            r = method(path)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"] == "Bearer"
        r = anon.post("/api/settings", json={"CONFIDENCE_THRESHOLD": 0.1}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
    assert Journal(api.journal).get_state(COMMAND_KEY) is None  # no refused call changed anything
    assert Journal(api.journal).get_state(OVERRIDES_KEY) is None
    assert "refused GET /api/status from 127.0.0.1: no token" in caplog.text
    assert TOKEN not in caplog.text and "nope" not in caplog.text
    for path in READS:
        assert api.get(path).status_code == 200, path


def test_failed_auth_is_rate_limited_per_address(journal_copy):
    server = start_api(journal_copy)
    try:
        with httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": "Bearer wrong"}) as bad:
            codes = [bad.get("/api/status").status_code for _ in range(12)]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
        # the right token from the same address waits too: the lockout is per address, not per token
        r = httpx.get(server.url + "/api/status", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    finally:
        server.stop()


def test_status_positions_and_orders_match_the_backtest_end_state(api, backtest_journal):
    final = json.loads((backtest_journal.parent / "final_state.json").read_text())
    status = api.get("/api/status").json()
    assert status["mode"] == "backtest" and status["has_status"]
    assert status["risk"]["mode"] in ("ACTIVE", "REDUCING", "HALTED")
    assert status["account_values"]["equity"] == pytest.approx(final["totals"]["equity"])
    assert status["positions"] == len(final["positions"])
    positions = api.get("/api/positions").json()["positions"]
    assert [p["symbol"] for p in positions] == [p["symbol"] for p in final["positions"]]
    for p, f in zip(positions, final["positions"], strict=True):
        assert (p["protected"], p["stop"], p["target"]) == (f["protected"], f["stop"], f["target"])
    protected = [p for p in positions if p["protected"]]
    assert protected, "the backtest should end with a bracket-protected position"
    legs = [leg for o in api.get("/api/orders").json()["orders"] for leg in [o, *o["legs"]]]
    for p in protected:  # every protected position's stop is among the open orders, as a stop leg
        assert any(o["symbol"] == p["symbol"] and o["role"] == "stop" and o["stop"] == p["stop"] for o in legs)


def test_decisions_filter_by_step_symbol_and_since(api):
    every = api.get("/api/decisions", params={"limit": 5000}).json()
    assert len(every) > 50 and every[0]["id"] > every[-1]["id"]  # newest first
    enters = api.get("/api/decisions", params={"step": "entry", "limit": 5000}).json()
    assert enters and {d["step"] for d in enters} == {"entry"}
    sym = enters[0]["symbol"]
    mine = api.get("/api/decisions", params={"symbol": sym.lower(), "limit": 5000}).json()
    assert mine and {d["symbol"] for d in mine} == {sym}
    cut = every[len(every) // 2]["time"]
    late = api.get("/api/decisions", params={"since": cut, "limit": 5000}).json()
    assert late and all(d["time"] >= cut for d in late) and len(late) < len(every)
    assert api.get("/api/decisions", params={"step": "dance"}).status_code == 422
    assert api.get("/api/decisions", params={"since": "yesterday"}).status_code == 422
    assert api.get("/api/decisions", params={"limit": 0}).status_code == 422


def test_trades_performance_and_equity_come_from_the_journal(api):
    journal = Journal(api.journal)
    closed = journal.frame("closed_trades")
    trades = api.get("/api/trades", params={"limit": 10000}).json()
    assert len(trades) == len(closed) > 0
    assert sum(t["pnl_usd"] for t in trades) == pytest.approx(closed["pnl_usd"].sum())
    perf = api.get("/api/performance").json()
    assert perf["overall"]["trades"] == len(closed) and set(perf["per_step"]) == {"entries", "hedges"}
    assert "confidence" in perf["blocked_by_gate"]
    eq = api.get("/api/equity").json()
    rows = journal.frame("equity")
    assert len(eq["equity"]) == len(rows) and eq["equity"][-1] == pytest.approx(rows["portfolio_value"].iloc[-1])
    assert max(eq["drawdown"]) <= 0 and min(eq["drawdown"]) < 0
    assert eq["benchmark"][0] == pytest.approx(eq["equity"][0])  # SPY scaled to the first equity reading
    assert eq["benchmark"][-1] != pytest.approx(eq["benchmark"][0])
    thin = api.get("/api/equity", params={"points": 10}).json()
    assert 10 <= len(thin["time"]) <= 12 and thin["time"][-1] == eq["time"][-1]


def test_health_metrics_and_docs(api):
    api.get("/api/status")
    health = api.get("/api/health").json()
    assert health["rss_mb"] > 10 and health["uptime_s"] >= 0 and health["sockets"] >= 1
    assert health["requests"]["GET /api/status 200"] >= 1 and health["bot_attached"] is False
    metrics = api.get("/metrics").text
    equity = api.get("/api/status").json()["account_values"]["equity"]
    line = next(x for x in metrics.splitlines() if x.startswith("trader_equity_usd "))
    assert float(line.split()[1]) == pytest.approx(equity)
    assert "trader_unprotected_positions" in metrics
    assert "swagger" in api.get("/docs").text.lower()
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/api/status", "/api/positions", "/api/halt", "/api/settings"} <= set(paths)


@pytest.mark.parametrize("command", ["halt", "resume", "flatten"])
def test_control_calls_write_the_cli_command_and_are_journaled(api, command):
    r = api.post(f"/api/{command}")
    assert r.status_code == 200 and "next iteration" in r.json()["effect"]
    journal = Journal(api.journal)
    assert journal.get_state(COMMAND_KEY)["command"] == command
    (row,) = journal.frame("controls").to_dict("records")
    assert (row["source"], row["action"]) == ("api 127.0.0.1", command) and row["result"].startswith("ok")


def test_settings_change_is_validated_persisted_and_journaled(api):
    r = api.post("/api/settings", json={"CONFIDENCE_THRESHOLD": 0.45, "MAX_POSITIONS": 4})
    assert r.status_code == 200, r.text
    assert {(c["setting"], c["old"], c["new"]) for c in r.json()["changed"]} == {
        ("CONFIDENCE_THRESHOLD", "0.6", "0.45"), ("MAX_POSITIONS", "10", "4")}
    journal = Journal(api.journal)
    assert journal.get_state(OVERRIDES_KEY)["values"] == {"CONFIDENCE_THRESHOLD": "0.45", "MAX_POSITIONS": "4"}
    row = journal.frame("controls").iloc[-1]
    assert "CONFIDENCE_THRESHOLD 0.6 -> 0.45" in row["detail"] and row["source"] == "api 127.0.0.1"
    shown = api.get("/api/settings").json()
    assert shown["effective"]["confidence_threshold"] == 0.45 and shown["changed"]["MAX_POSITIONS"] == "4"


@pytest.mark.parametrize(("body", "problem"), [
    ({"NOT_A_SETTING": 1}, "NOT_A_SETTING is not a setting"),
    ({"UNIVERSE": "AAPL"}, "UNIVERSE cannot change while the bot runs"),
    ({"CONFIDENCE_THRESHOLD": 1.5}, "Allowed: 0 <= x <= 1"),
    ({"MAX_POSITIONS": "many"}, "MAX_POSITIONS='many' is invalid"),
    ({"MAX_ENTRY_PCT": 0.5}, "must not exceed MAX_POSITION_PCT"),
    ({}, "no settings given"),
    ({"MAX_POSITIONS": [1]}, "MAX_POSITIONS: give a number, true/false or text, not list"),
])
def test_bad_settings_get_422_with_the_rule_and_change_nothing(api, body, problem):
    r = api.post("/api/settings", json=body)
    assert r.status_code == 422
    assert problem in " ".join(r.json()["detail"]["problems"])
    journal = Journal(api.journal)
    assert journal.get_state(OVERRIDES_KEY) is None
    assert api.get("/api/settings").json()["effective"]["confidence_threshold"] == 0.6
    (row,) = journal.frame("controls").to_dict("records")  # refused calls are journaled too
    assert row["result"].startswith("refused")


def test_malformed_json_gets_422_and_changes_nothing(api):
    for content in (b"{not json", b"[1, 2]", b'"text"'):
        r = api.post("/api/settings", content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, content
    assert Journal(api.journal).get_state(OVERRIDES_KEY) is None


def test_dashboard_login_sets_a_session_that_reads_but_needs_the_header_to_act(api):
    with httpx.Client(base_url=api.server.url, timeout=10) as browser:
        page = browser.get("/")
        assert page.status_code == 401 and 'name="token"' in page.text  # the 401 page is the login form
        assert browser.post("/login", data={"token": "wrong"}).status_code == 401
        r = browser.post("/login", data={"token": TOKEN})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and TOKEN.lower() not in cookie
        assert browser.get("/").status_code == 200 and "dashboard.js" in browser.get("/").text
        assert browser.get("/api/status").status_code == 200
        assert browser.post("/api/halt").status_code == 403  # a cross-site form could send the cookie, not the header
        assert Journal(api.journal).get_state(COMMAND_KEY) is None
        assert browser.post("/api/halt", headers={"X-Dashboard": "1"}).status_code == 200
        assert Journal(api.journal).get_state(COMMAND_KEY)["command"] == "halt"


def test_no_cors_headers_for_another_origin(api):
    r = api.options("/api/status", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers
    r = api.get("/api/status", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_commands_are_refused_with_409_when_the_risk_controller_is_off(journal_copy):
    status = Journal(journal_copy).get_state("status")
    Journal(journal_copy).set_state("status", {**status, "risk": {"mode": "ACTIVE", "why": "risk controller off "
                                                                  "(RISK_ENABLED=false)"}})  # as that bot writes it
    server = start_api(journal_copy)
    try:
        r = httpx.post(server.url + "/api/halt", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 409 and "RISK_ENABLED=false" in r.json()["detail"]
    finally:
        server.stop()
    journal = Journal(journal_copy)
    assert journal.get_state(COMMAND_KEY) is None  # nothing a bot would pretend to obey
    (row,) = journal.frame("controls").to_dict("records")
    assert row["action"] == "halt" and row["result"].startswith("refused: RISK_ENABLED=false")


def test_a_proxys_basic_auth_header_is_not_a_failed_attempt_and_the_cookie_still_works(api):
    with httpx.Client(base_url=api.server.url, timeout=10) as browser:
        browser.post("/login", data={"token": TOKEN})
        for _ in range(15):  # a reverse proxy in front sends its own Authorization on every request
            r = browser.get("/api/status", headers={"Authorization": "Basic dXNlcjpwYXNz"})
            assert r.status_code == 200
    assert api.server.ctx.guard.refused == 0
