"""Costs in backtests (backtest/costs.py): Alpaca's regulatory fees through Lumibot's TradingFee, adverse
slippage on market and stop fills, limit fills at their price, and the gross/net summary."""

from datetime import date

import pandas as pd
import pytest

from backtest.costs import BacktestCosts
from backtest.report import render_table, summarize
from backtest.runner import BacktestConfig, run_backtest
from trading.settings import Settings

JANUARY = BacktestConfig(start=date(2024, 1, 2), end=date(2024, 1, 31), progress=False)
MARKET_ROLES = {"entry", "exit", "trim", "time-exit", "hedge", "unhedge", "partial"}


def _run(tmp_path_factory, name: str, **env):
    out = tmp_path_factory.mktemp(name)
    run = run_backtest(JANUARY, Settings.from_mapping(env), out_dir=out / "report")
    return run, summarize(run)


@pytest.fixture(scope="module")
def with_costs(tmp_path_factory):
    return _run(tmp_path_factory, "costs")


@pytest.fixture(scope="module")
def without_costs(tmp_path_factory):
    return _run(tmp_path_factory, "gross", BACKTEST_COSTS="false")


def _fills(run) -> pd.DataFrame:
    """The ledger's fills with the bar each filled in (Lumibot fills at the bar that starts at the fill time)."""
    f = run.strategy.ledger.fills_frame()
    f["open"] = [float(run.market.bars[s].loc[t, "open"]) for s, t in zip(f["symbol"], f["time"], strict=True)]
    f["atr_before"] = [float(run.costs.atr[s].asof(t)) if run.costs.atr else 0.0
                       for s, t in zip(f["symbol"], f["time"], strict=True)]
    return f


def _orders(run) -> dict:
    return {str(o.identifier): o for o in run.strategy.get_orders()}


def test_market_fills_pay_the_modelled_slippage_against_the_order(with_costs):
    run, _ = with_costs
    s = run.settings
    f = _fills(run)
    market = f[f["role"].isin(MARKET_ROLES)]
    assert len(market) >= 10 and set(market["side"]) == {"buy", "sell"}
    slip = market["open"] * s.slippage_bps / 1e4 + s.slippage_atr_fraction * market["atr_before"]
    expected = market["open"] + slip.where(market["side"] == "buy", -slip)
    assert (market["price"] - expected).abs().max() < 1e-6
    assert (slip > 0).all()


def test_stop_fills_slip_and_limit_fills_keep_their_price(with_costs):
    run, _ = with_costs
    s = run.settings
    f = _fills(run)
    orders = _orders(run)
    stops, limits = f[f["role"] == "stop"], f[f["role"] == "target"]
    assert len(stops) >= 2 and len(limits) >= 1
    for _, r in stops.iterrows():
        trigger = min(float(orders[r["order_id"]].stop_price), r["open"])  # past a gap the stop fills at the open
        assert r["price"] == pytest.approx(trigger * (1 - s.slippage_bps / 1e4) - s.slippage_atr_fraction
                                           * r["atr_before"], abs=1e-6)
    for _, r in limits.iterrows():
        assert r["price"] == pytest.approx(float(orders[r["order_id"]].limit_price), abs=1e-9)


def test_fees_are_alpacas_regulatory_fees_charged_on_every_fill(with_costs):
    run, _ = with_costs
    s = run.settings
    f = run.strategy.ledger.fills_frame()
    sells, buys = f[f["side"] == "sell"], f[f["side"] == "buy"]
    expected = ((sells["price"] * sells["qty"]).sum() * s.sec_fee_per_million / 1e6
                + sells["qty"].sum() * (s.finra_taf_per_share + s.cat_fee_per_share)
                + buys["qty"].sum() * s.cat_fee_per_share)
    assert run.costs.tally.fees == pytest.approx(expected, rel=1e-9)
    charged = sum(float(o.trade_cost or 0) for o in run.strategy.get_orders() if getattr(o, "trade_cost", None))
    assert charged == pytest.approx(expected, rel=1e-9)  # what Lumibot took from the cash


def test_the_summary_shows_net_and_gross_returns_and_what_was_paid(with_costs):
    _, summary = with_costs
    st = summary["strategy"]
    assert st["fees"] > 0 and st["slippage"] > st["fees"]
    paid = (st["fees"] + st["slippage"]) / st["start_value"]
    assert st["gross_return"] - st["total_return"] == pytest.approx(paid, rel=1e-6)
    table = render_table(summary)
    assert "Total return (net of costs)" in table and "Total return, gross" in table
    assert f"${st['fees']:,.0f} / ${st['slippage']:,.0f}" in table
    assert "SEC $27.8/$1M sold" in table


def test_costs_off_fills_at_the_bar_and_charges_nothing(without_costs):
    run, summary = without_costs
    f = _fills(run)
    market = f[f["role"].isin(MARKET_ROLES)]
    assert len(market) >= 10
    assert (market["price"] - market["open"]).abs().max() < 1e-9
    assert run.costs.tally.fees == 0 and run.costs.tally.slippage == 0
    assert summary["strategy"]["gross_return"] == summary["strategy"]["total_return"]
    assert "costs off (BACKTEST_COSTS=false)" in render_table(summary)


def test_slippage_uses_the_atr_known_before_the_fill_bar():
    idx = pd.date_range("2024-01-02 09:30", periods=4, freq="h", tz="America/New_York")
    frame = pd.DataFrame({"atr": [1.0, 2.0, 3.0, 400.0]}, index=idx)  # the last bar is a crash nobody knew of
    costs = BacktestCosts.from_settings(Settings.defaults(slippage_bps=10.0, slippage_atr_fraction=0.5),
                                        {"X": frame})
    assert costs.slipped("X", "buy", "market", 100.0, idx[3]) == pytest.approx(100.0 + 0.1 + 0.5 * 3.0)
    assert costs.slipped("X", "sell", "stop", 100.0, idx[3]) == pytest.approx(100.0 - 0.1 - 0.5 * 3.0)
    assert costs.slipped("X", "sell", "limit", 100.0, idx[3]) == 100.0
    assert costs.slipped("X", "buy", "market", 100.0, idx[0]) == pytest.approx(100.1)  # no ATR yet: bps only


def test_trading_fees_are_lumibots_fee_objects_for_each_side():
    costs = BacktestCosts.from_settings(Settings.defaults(sec_fee_per_million=20.0, finra_taf_per_share=0.0002,
                                                          cat_fee_per_share=0.00003), {})
    (buy,), (sell,) = costs.trading_fees()
    assert float(buy.per_contract_fee) == pytest.approx(0.00003) and float(buy.percent_fee) == 0
    assert float(sell.percent_fee) == pytest.approx(20e-6)
    assert float(sell.per_contract_fee) == pytest.approx(0.00023)
    assert BacktestCosts.from_settings(Settings.defaults(backtest_costs=False), {}).trading_fees() == ([], [])


@pytest.mark.parametrize("env, problem", [({"SLIPPAGE_BPS": "-1"}, "SLIPPAGE_BPS"),
                                          ({"SEC_FEE_PER_MILLION": "abc"}, "SEC_FEE_PER_MILLION"),
                                          ({"BACKTEST_COSTS": "maybe"}, "BACKTEST_COSTS")])
def test_a_bad_cost_setting_is_refused_by_name(env, problem):
    from trading.settings import SettingsError

    with pytest.raises(SettingsError, match=problem):
        Settings.from_mapping(env)
