"""The JSON endpoints: reads over the journal, and the controls (halt, resume, flatten, run-time settings).

Controls write what the CLI writes (the command in the journal's state; settings changes beside it), so the bot
obeys them at its next iteration whichever process wrote them, and a restart keeps them. Every control call is
journaled with time, source address and result, refused ones too.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request

from ops.api import views
from ops.api.context import ApiContext
from trading.intents import Step
from trading.risk.kill_switch import RISK_OFF, risk_off, write_command
from trading.settings import SettingsError, as_text
from trading.settings_runtime import RUNTIME_SETTINGS, change, effective, overrides
from trading.settings_specs import SPECS

STEPS = tuple(s.value for s in Step)


def _now() -> datetime:
    return datetime.now(UTC)


def _source(request: Request) -> str:
    return f"api {request.client.host if request.client else '?'}"


def build_router(ctx: ApiContext) -> APIRouter:
    r = APIRouter(prefix="/api")

    @r.get("/status", summary="Mode, risk state and why, last and next iteration, broker, model, day P&L")
    def status() -> dict:
        with ctx.journal() as j:
            return views.status(j, _now())

    @r.get("/positions", summary="Every position with its protection (stop, target, distance; unprotected flagged)")
    def positions() -> dict:
        with ctx.journal() as j:
            return views.positions(j)

    @r.get("/orders", summary="Open orders, bracket and OCO legs nested under their parent")
    def orders() -> dict:
        with ctx.journal() as j:
            return views.orders(j)

    @r.get("/decisions", summary="Recent decisions with their reasons, newest first")
    def decisions(step: Annotated[str | None, Query(description=f"one of {', '.join(STEPS)}")] = None,
                  symbol: Annotated[str | None, Query(pattern=r"^[A-Za-z.]{1,8}$")] = None,
                  since: Annotated[datetime | None, Query(description="ISO time, e.g. 2024-03-05T10:00:00")] = None,
                  action: str | None = None, limit: Annotated[int, Query(ge=1, le=5000)] = 100) -> list[dict]:
        if step is not None and step not in STEPS:
            raise HTTPException(422, f"unknown step {step!r}; steps: {', '.join(STEPS)}")
        with ctx.journal() as j:
            return views.decisions(j, step, symbol, since, action, limit)

    @r.get("/trades", summary="Closed trades, newest first")
    def trades(limit: Annotated[int, Query(ge=1, le=10000)] = 200) -> list[dict]:
        with ctx.journal() as j:
            return views.trades(j, limit)

    @r.get("/performance", summary="Performance per step, per exit reason, entries blocked per gate")
    def performance() -> dict:
        with ctx.journal() as j:
            return views.performance_tables(j)

    @r.get("/equity", summary="Equity curve with drawdown and SPY scaled to the first reading")
    def equity(since: datetime | None = None, points: Annotated[int, Query(ge=10, le=20000)] = 2000) -> dict:
        with ctx.journal() as j:
            return views.equity(j, since, points)

    @r.get("/alerts", summary="Alerts queued, sent, suppressed or dropped, newest first")
    def alerts(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict]:
        with ctx.journal() as j:
            return views.alerts(j, limit)

    @r.get("/controls", summary="Control calls (API and CLI) with source and result, newest first")
    def controls(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict]:
        with ctx.journal() as j:
            return views.controls(j, limit)

    @r.get("/health", summary="Uptime, memory, sockets, request counts, broker outage state")
    def health() -> dict:
        import psutil

        proc = psutil.Process(os.getpid())
        with ctx.journal() as j:
            st = views.status(j, _now())
        bot = ctx.bot
        return {"uptime_s": round(datetime.now().timestamp() - ctx.started, 1),
                "rss_mb": round(proc.memory_info().rss / 2**20, 1),
                "sockets": len([c for c in proc.net_connections(kind="inet") if c.status != psutil.CONN_LISTEN]),
                "requests": dict(ctx.requests), "auth_refused": ctx.guard.refused,
                "broker": st["broker"], "status_age_s": st.get("status_age_s"),
                "bot_attached": bot is not None,
                "bot_iterations": getattr(bot, "iterations", None), "journal": str(ctx.journal_path)}

    @r.get("/settings", summary="Settings in effect, the ones changeable at run time with their rules, changes")
    def settings() -> dict:
        with ctx.journal() as j:
            now = effective(ctx.settings, j)
            changed = overrides(j)
        by_env = {s.env: s for s in SPECS}
        return {"effective": now.public_dict(), "changed": changed,
                "changeable": [{"name": k, "value": as_text(getattr(now, by_env[k].attr)),
                                "allowed": by_env[k].allowed, "doc": by_env[k].doc} for k in RUNTIME_SETTINGS]}

    @r.post("/settings", summary="Change run-time settings (validated like start-up; effective next iteration)")
    def change_settings(request: Request, body: Annotated[dict[str, Any], Body(
            examples=[{"CONFIDENCE_THRESHOLD": 0.55, "MAX_POSITIONS": 8}])]) -> dict:
        now = _now()
        with ctx.journal() as j:
            try:
                moved = change(j, ctx.settings, body, _source(request), now)
            except SettingsError as exc:
                j.record_control(now, _source(request), "settings", ", ".join(f"{k}={v}" for k, v in body.items()),
                                 "refused: " + "; ".join(exc.problems))
                raise HTTPException(422, {"problems": list(exc.problems)}) from None
        return {"changed": [{**m, "old": as_text(m["old"]), "new": as_text(m["new"])} for m in moved],
                "effective": "at the bot's next iteration" if moved else "nothing changed (same values)"}

    def command(name: str, request: Request) -> dict:
        with ctx.journal() as j:
            if risk_off(j):  # the commands live in the risk controller, which that bot runs without
                j.record_control(_now(), _source(request), name, "", f"refused: {RISK_OFF}")
                raise HTTPException(409, RISK_OFF)
            effect = write_command(j, name, _now(), _source(request))
        return {"command": name, "effect": f"at its next iteration the bot goes {effect}"}

    @r.post("/halt", summary="Halt: protective orders only (the bot obeys at its next iteration)")
    def halt(request: Request) -> dict:
        return command("halt", request)

    @r.post("/resume", summary="Resume: lift the halt (a kill-switch file still halts)")
    def resume(request: Request) -> dict:
        return command("resume", request)

    @r.post("/flatten", summary="Flatten: cancel every order, close every position at market, then halt")
    def flatten(request: Request) -> dict:
        return command("flatten", request)

    return r
