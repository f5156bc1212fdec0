"""JSON views in Alpaca's shapes: account, positions, assets, clock, calendar."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from .orders import asset_uuid
from .values import fmt_money, fmt_num, iso_ny, iso_utc

if TYPE_CHECKING:
    from .engine import Engine


def account(engine: Engine) -> dict:
    lmv, smv = engine.market_values()
    equity = engine.cash + lmv + smv
    last_equity = engine.cash
    for sym, p in engine.positions.items():
        last_equity += p.qty * (engine.lastday_price(sym) or engine.mark(sym) or p.avg_entry_price)
    bp = engine.buying_power()
    s = engine.settings
    body = {
        "id": engine.account_id,
        "account_number": engine.account_number,
        "status": "ACTIVE",
        "crypto_status": "ACTIVE",
        "currency": "USD",
        "cash": fmt_money(engine.cash),
        "buying_power": fmt_money(bp),
        "regt_buying_power": fmt_money(bp),
        "non_marginable_buying_power": fmt_money(max(min(engine.cash, bp), 0.0)),
        "options_buying_power": fmt_money(max(min(engine.cash, bp), 0.0)),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "portfolio_value": fmt_money(equity),
        "equity": fmt_money(equity),
        "last_equity": fmt_money(last_equity),
        "long_market_value": fmt_money(lmv),
        "short_market_value": fmt_money(smv),
        "initial_margin": fmt_money(0.5 * lmv + 0.5 * abs(smv)),
        "maintenance_margin": fmt_money(0.25 * lmv + 0.3 * abs(smv)),
        "last_maintenance_margin": fmt_money(0.25 * lmv + 0.3 * abs(smv)),
        "sma": "0",
        "multiplier": str(engine.multiplier()),
        "shorting_enabled": bool(s.shorting_enabled and equity >= 2000),
        "trading_blocked": s.trading_blocked,
        "transfers_blocked": s.transfers_blocked,
        "account_blocked": s.account_blocked,
        "trade_suspended_by_user": s.trade_suspended_by_user,
        "created_at": iso_utc(engine.created_at),
        "options_approved_level": 0,
        "options_trading_level": 0,
    }
    if s.legacy_pdt_fields:  # removed from /v2/account on 2026-07-06 (A12); kept behind a switch
        body["pattern_day_trader"] = False
        body["daytrade_count"] = 0
        body["daytrading_buying_power"] = "0"
    return body


def position(engine: Engine, symbol: str) -> dict:
    p = engine.positions[symbol]
    price = engine.mark(symbol) or p.avg_entry_price
    lastday = engine.lastday_price(symbol) or price
    side = "long" if p.qty > 0 else "short"
    held, _ = engine.held_for_orders(symbol, "sell" if p.qty > 0 else "buy")
    available = abs(p.qty) - held
    mv = p.qty * price
    cost = p.qty * p.avg_entry_price
    pl = mv - cost
    asset = engine.assets.get(symbol) or engine._default_asset(symbol)
    return {
        "asset_id": asset_uuid(symbol),
        "symbol": symbol,
        "exchange": asset["exchange"],
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": fmt_num(p.avg_entry_price, 6),
        "qty": fmt_num(p.qty),
        "qty_available": fmt_num(available if p.qty > 0 else -available),
        "side": side,
        "market_value": fmt_money(mv),
        "cost_basis": fmt_money(cost),
        "unrealized_pl": fmt_money(pl),
        "unrealized_plpc": fmt_num(pl / abs(cost), 6) if cost else "0",
        "unrealized_intraday_pl": fmt_money((price - lastday) * p.qty),
        "unrealized_intraday_plpc": fmt_num((price / lastday - 1) * (1 if p.qty > 0 else -1), 6) if lastday else "0",
        "current_price": fmt_num(price, 4),
        "lastday_price": fmt_num(lastday, 4),
        "change_today": fmt_num(price / lastday - 1, 6) if lastday else "0",
    }


def asset(engine: Engine, symbol: str) -> dict:
    a = engine.assets[symbol]
    return {
        "id": asset_uuid(symbol),
        "class": "us_equity",
        "exchange": a["exchange"],
        "symbol": symbol,
        "name": f"{symbol} (fake)",
        "status": a["status"],
        "tradable": a["tradable"],
        "marginable": a["marginable"],
        "shortable": a["shortable"],
        "easy_to_borrow": a["easy_to_borrow"],
        "fractionable": a["fractionable"],
        "maintenance_margin_requirement": 30,
        "margin_requirement_long": "30",
        "margin_requirement_short": "100",
        "attributes": [],
    }


def clock(engine: Engine) -> dict:
    now = engine.now
    is_open = engine.is_open_at(now)
    current = engine.sessions.session_at(now)
    nxt = engine.sessions.next_session(now)
    next_close = current[1] if current is not None else nxt[1]
    return {"timestamp": iso_ny(now), "is_open": is_open, "next_open": iso_ny(nxt[0]), "next_close": iso_ny(next_close)}


def calendar(engine: Engine, start: date | None, end: date | None) -> list[dict]:
    today = engine.now.date()
    start = start or today - timedelta(days=365)
    end = end or today + timedelta(days=365)
    out = []
    for d, o, c in engine.sessions.between(start, end):
        settle = d + timedelta(days=1)
        while settle.weekday() >= 5 or not engine.sessions.is_trading_day(settle):
            settle += timedelta(days=1)
            if (settle - d).days > 7:
                break
        out.append({"date": d.isoformat(), "open": o.strftime("%H:%M"), "close": c.strftime("%H:%M"),
                    "session_open": "0400", "session_close": "2000", "settlement_date": settle.isoformat()})
    return out
