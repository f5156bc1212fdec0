"""Step 4: new bracket entries in oversold universe stocks the confidence gate lets through.

Candidates: universe stocks with RSI below RSI_OVERSOLD (with REENTRY_DAYS, also those whose last trade ended
at its take-profit within that many days while the close stays above the 200-bar trend line: the trend that
paid is bought again), not held, without an open entry order and not being sold this iteration; none while
bellwether breadth is at or above BEARISH_THRESHOLD (with BREADTH_ENTRY_GATE: the market looks overextended and
the hedge is on); then the entry filters
(entry_filters.py: market volatility, trend, volatility band, liquidity, spread, correlation with the book).
All candidates left are scored in one batched call and judged by the gates of the scorer (_judge: the rule
score against CONFIDENCE_THRESHOLD, or the meta-model's expected R, agreement and uncertainty); they are
ranked by score (then by lower RSI) and each passing one gets a bracket sized by the per-entry limit and the
cash left above MIN_CASH_RESERVE (each buy budgeted at Alpaca's market-buy price collar, so the last entry of
an iteration still fits a cash account). A scorer that fails blocks entries for the iteration: the strategy
never trades ungated.
"""

import math
from dataclasses import dataclass

import numpy as np

from models.ensemble import failed_gates
from trading.confidence import ConfidenceModel
from trading.intents import Decision, Intent, IntentKind, Step
from trading.orders import MARKET_BUY_COLLAR, Refusal, build_bracket
from trading.settings import Settings
from trading.sizing import bracket_levels, entry_size
from trading.snapshot import Snapshot
from trading.steps.entry_filters import CorrelationBook, market_gate, market_volatility, screen


def plan_entries(snap: Snapshot, s: Settings, scorer: ConfidenceModel, cash_available: float,
                 exiting: set[str], ids, kelly_cap_usd: float | None = None,
                 breadth: float = math.nan) -> list[Decision]:
    step = Step.ENTRY
    oversold = {sym: snap.rsi(sym) for sym in s.universe if snap.rsi(sym) < s.rsi_oversold}  # NaN never is
    again = reentries(snap, s, oversold)
    oversold.update(again)
    blocked = {sym: why for sym in oversold for why in [_blocked(snap, sym, exiting)] if why}
    candidates = sorted((sym for sym in oversold if sym not in blocked), key=oversold.get)
    decisions = [Decision(step, sym, "skip", f"RSI {oversold[sym]:.1f} but {why}") for sym, why in blocked.items()]
    if not candidates:
        decisions.append(Decision(step, None, "none", f"no new candidates (no free universe stock below RSI "
                                  f"{s.rsi_oversold:g}); cash ${snap.cash:,.0f}"))
        return decisions
    if s.breadth_entry_gate and breadth >= s.bearish_threshold:  # NaN (no bellwether data) never is
        return decisions + [Decision(step, sym, "skip", f"RSI {oversold[sym]:.1f} but bellwether breadth "
                                     f"{breadth:.0%} >= {s.bearish_threshold:.0%}: no new longs while the market "
                                     "looks overextended (BREADTH_ENTRY_GATE)", data={"rsi": oversold[sym],
                                                                                      "gate": "breadth"})
                            for sym in candidates]

    market = market_gate(snap, s)
    if market:
        return decisions + [Decision(step, sym, "skip", f"RSI {oversold[sym]:.1f} but {market}",
                                     data={"rsi": oversold[sym], "gate": "market_vol"}) for sym in candidates]
    book = CorrelationBook(snap, s, candidates) if s.correlation_max < 1 else None
    screened = screen(snap, s, candidates, book)  # the filters (entry_filters.py), before anything is scored
    decisions += [Decision(step, sym, "skip", f"RSI {oversold[sym]:.1f} but {why}",
                           data={"rsi": oversold[sym], "gate": gate}) for sym, (gate, why) in screened.items()]
    candidates = [sym for sym in candidates if sym not in screened]
    if not candidates:
        return decisions

    blocked_by = scorer.gate(snap.now) if hasattr(scorer, "gate") else None
    if blocked_by:
        decisions.append(Decision(step, None, "blocked", f"{len(candidates)} candidate(s) but {blocked_by}; no "
                                  "entries this iteration", level="warning", data={"gate": "model"}))
        return decisions
    rows = snap.rows(candidates)
    try:
        judged = _judge(scorer, rows, s)
    except Exception as exc:  # noqa: BLE001 - any scorer failure must block entries, and say why
        decisions.append(Decision(step, None, "blocked", f"{len(candidates)} candidate(s) but the confidence "
                                  f"model ({scorer.name}) failed: {type(exc).__name__}: {exc}; no entries this "
                                  "iteration", level="warning"))
        return decisions

    ranked = sorted(zip(candidates, judged, strict=True), key=lambda cj: (-_finite(cj[1].rank), oversold[cj[0]]))
    market_vol = market_volatility(snap) if s.vol_target_pct > 0 else math.nan
    available = cash_available
    for sym, j in ranked:
        r = oversold[sym]
        data = {"rsi": r, **j.data, "source": scorer.name, **({"reentry": True} if sym in again else {})}
        if j.gate:
            decisions.append(Decision(step, sym, "skip", f"RSI {r:.1f}, {j.why} ({scorer.name})",
                                      data={**data, "gate": j.gate}))
            continue
        correlated = book.check(sym) if book is not None and book.planned else None  # a twin of an entry above
        if correlated:
            decisions.append(Decision(step, sym, "skip", f"RSI {r:.1f}, {j.what} ({scorer.name}) but {correlated[1]}",
                                      data={**data, "gate": correlated[0]}))
            continue
        conf = j.size_confidence
        price = snap.price(sym)
        head = f"RSI {r:.1f}, {j.what} ({scorer.name}) but"
        if available < price * (1 + MARKET_BUY_COLLAR):
            why = (f"no cash to spend (${max(available, 0):,.2f} above the reserve)" if available <= 0 else
                   f"one share costs ${price:,.2f} but only ${available:,.2f} is available "
                   "(brackets need whole shares)")
            decisions.append(Decision(step, sym, "skip", f"{head} {why}", data={**data, "gate": "cash"}))
            continue
        levels = bracket_levels(price, s, snap.atr(sym), j.stop_pct)
        if levels is None:
            why = ("no stop from the stop model (STOP_MODE=model needs a meta-model trained with one)"
                   if s.stop_mode == "model" else "no ATR yet (STOP_MODE=atr)")
            decisions.append(Decision(step, sym, "skip", f"{head} {why}", data={**data, "gate": "stop"}))
            continue
        size = entry_size(s, snap.portfolio_value, price, float(levels[0]), conf, available / (1 + MARKET_BUY_COLLAR),
                          kelly_cap_usd, market_vol)
        order = build_bracket(sym, price, size.qty, *levels, ids(sym, "enter"), snap.session)
        if isinstance(order, Refusal):
            decisions.append(Decision(step, sym, "skip", f"{head} {order.reason} ({size.why})", data=data))
            continue
        available -= order.notional * (1 + MARKET_BUY_COLLAR)
        if book is not None:
            book.add(sym, float(order.notional))
        data.update(qty=order.qty, price=price, notional=order.notional, stop=float(order.stop_loss))
        decisions.append(Decision(step, sym, "enter",
                                  f"{_REENTRY if sym in again else ''}RSI {r:.1f}, {j.why} ({scorer.name}): "
                                  f"buy {order.qty} @ ~{order.reference_price} "
                                  f"(${order.notional:,.0f}; {size.why}), stop {order.stop_loss}, "
                                  f"target {order.take_profit}",
                                  Intent(IntentKind.ENTER, sym, (order,)), data=data))
    return decisions


@dataclass(frozen=True)
class Judgement:
    rank: float  # higher first
    size_confidence: float  # what entry_size scales risk by
    gate: str | None  # the gate that stops it, or None
    why: str  # the reason, passed or not
    what: str  # the scores, for later reasons
    data: dict
    stop_pct: float | None = None  # STOP_MODE=model: the stop model's distance for this candidate


def _judge(scorer: ConfidenceModel, rows, s: Settings) -> list[Judgement]:
    """One batched call; then each candidate against its gates: the rule score against CONFIDENCE_THRESHOLD, or
    the meta-model's expected R, agreement and uncertainty against MIN_EXPECTED_R (the card's unless set),
    ENSEMBLE_AGREEMENT and MAX_UNCERTAINTY."""
    if not hasattr(scorer, "assess"):
        scores = np.asarray(scorer.score(rows), dtype=float)
        if scores.shape != (len(rows),):
            raise ValueError(f"expected {len(rows)} scores, got shape {scores.shape}")
        out = []
        for c in scores.tolist():
            ok = math.isfinite(c) and c >= s.confidence_threshold
            why = f"confidence {c:.2f} {'>=' if ok else '<'} {s.confidence_threshold:.2f}"
            out.append(Judgement(c, c, None if ok else "confidence", why, f"confidence {c:.2f}", {"confidence": c}))
        return out
    table = scorer.assess(rows)
    if len(table) != len(rows):
        raise ValueError(f"expected {len(rows)} assessments, got {len(table)}")
    thr = scorer.min_expected_r
    er, ag, un = (table[c].to_numpy(dtype=float) for c in ("expected_r", "agreement", "uncertainty"))
    gates = failed_gates(er, ag, un, thr, s.ensemble_agreement, s.max_uncertainty)
    stops = table["stop_pct"].tolist() if "stop_pct" in table else [None] * len(table)
    out = []
    for e, a, u, gate, stop in zip(er.tolist(), ag.tolist(), un.tolist(), gates.tolist(), stops, strict=True):
        what = f"expected R {e:+.2f}, {a:.0%} agree, spread {u:.2f}R"
        why = {"expected_r": f"expected R {e:+.2f} < {thr:+.2f} (MIN_EXPECTED_R)",
               "agreement": f"{a:.0%} of the ensemble predict R >= {thr:+.2f} < ENSEMBLE_AGREEMENT "
                            f"{s.ensemble_agreement:.0%}",
               "uncertainty": f"{what}: spread > MAX_UNCERTAINTY {s.max_uncertainty:g}R",
               "": f"expected R {e:+.2f} >= {thr:+.2f}, {a:.0%} agree, spread {u:.2f}R"}[gate]
        data = {"expected_r": e, "agreement": a, "uncertainty": u, "min_expected_r": thr, "stop_pct": stop}
        out.append(Judgement(e, a, gate or None, why, what, data, stop))
    return out


def reentries(snap: Snapshot, s: Settings, oversold: dict[str, float]) -> dict[str, float]:
    """{symbol: RSI} of the REENTRY_DAYS candidates: a take-profit within the window, close above the trend."""
    if s.reentry_days <= 0 or not snap.take_profits:
        return {}
    recent = [sym for sym, when in snap.take_profits.items() if sym in s.universe and sym not in oversold
              and (snap.now - when).total_seconds() <= s.reentry_days * 86_400]
    if not recent:
        return {}
    rows = snap.rows(recent)
    close, trend = rows["close"].to_numpy(dtype=float), rows["trend"].to_numpy(dtype=float)
    return {sym: snap.rsi(sym) for sym, c, t in zip(recent, close, trend, strict=True) if c > t}  # NaN never is


def _blocked(snap: Snapshot, sym: str, exiting: set[str]) -> str | None:
    if sym in snap.holdings:
        return "already held"
    if snap.has_open_entry(sym):
        return "an entry order is already open"
    if sym in exiting:
        return "being sold this iteration"
    return None


_REENTRY = "re-entry after a take-profit (REENTRY_DAYS), above its trend line: "


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -1.0
