"""Prometheus metrics at /metrics (behind the same token), computed from the journal at each scrape, so Grafana
sees what the dashboard sees."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from ops.api import views
from ops.api.context import ApiContext

RISK_LEVEL = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}


def render(ctx: ApiContext) -> tuple[bytes, str]:
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value) -> None:
        Gauge(name, doc, registry=registry).set(float("nan") if value is None else float(value))

    with ctx.journal() as j:
        st = views.status(j)
        alerts = dict(j.conn.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall())
    values = st.get("account_values") or {}
    gauge("trader_equity_usd", "Portfolio value at the last iteration", values.get("equity"))
    gauge("trader_cash_usd", "Cash at the last iteration", values.get("cash"))
    gauge("trader_day_pnl_usd", "Equity change since the previous day's last reading", st["day"].get("pnl_usd"))
    gauge("trader_positions", "Open positions", st["positions"])
    gauge("trader_unprotected_positions", "Positions without a resting stop", len(st["unprotected"]))
    gauge("trader_risk_level", "Risk state: 0 ACTIVE, 1 REDUCING, 2 HALTED", RISK_LEVEL.get(st["risk"]["mode"]))
    gauge("trader_broker_reachable", "1 when the last iteration reached the broker", st["broker"].get("reachable"))
    gauge("trader_iterations", "Iterations completed by the bot", st.get("iterations"))
    gauge("trader_api_auth_refused", "Requests refused for a missing or wrong token", ctx.guard.refused)
    a = Gauge("trader_alerts", "Alerts by status (sent, suppressed, dropped, ...)", ["status"], registry=registry)
    for status, n in alerts.items():
        a.labels(status=status).set(n)
    return generate_latest(registry), CONTENT_TYPE_LATEST
