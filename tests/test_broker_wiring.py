"""Unit tests of how the live bot is wired to Alpaca: the alpaca-py clients (broker/clients.py), the launcher's
account check, money gates and banner (broker/launcher.py), and the corrected Lumibot Alpaca broker
(broker/lumibot_alpaca.py), in-process against the fake Alpaca server (one per module; no bot process, no
backtest)."""

from __future__ import annotations

import json
import logging
import signal
from decimal import Decimal
from types import SimpleNamespace

import pandas as pd
import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AccountStatus, OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest, StopLossRequest, TakeProfitRequest
from lumibot.brokers import Alpaca
from lumibot.entities import Order as LumiOrder

from broker import launcher
from broker.clients import make_clients
from broker.errors import BrokerUnavailable
from broker.gateway import AlpacaGateway
from broker.launcher import LaunchError, banner, connect, lumibot_broker, mask, money_gate
from broker.lumibot_alpaca import GROUP_CLASSES, AlpacaBroker
from tests.fake_alpaca import FakeAlpaca
from trading.settings import Settings

NY = "America/New_York"
HOUR = pd.Timedelta(hours=1)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=NY)


def hourly(price: float, days=("2024-03-04", "2024-03-05")) -> pd.DataFrame:
    stamps = [ts(f"{d} 09:30") + HOUR * h for d in days for h in range(7)]
    closes = [price + 0.25 * i for i in range(len(stamps))]
    return pd.DataFrame({"open": closes, "high": [c + 0.5 for c in closes], "low": [c - 0.5 for c in closes],
                         "close": closes, "volume": 1_000_000.0}, index=pd.DatetimeIndex(stamps))


def api_error(status: int, body: dict) -> APIError:
    response = requests.Response()
    response.status_code = status
    return APIError(json.dumps(body), requests.HTTPError(response=response))


@pytest.fixture(scope="module")
def srv():
    server = FakeAlpaca({"AAPL": hourly(100.0), "MSFT": hourly(400.0)}, now=ts("2024-03-05 10:30")).start()
    yield server
    server.stop()


def settings_for(srv: FakeAlpaca | None = None, **overrides: str) -> Settings:
    env = {"ALPACA_API_KEY": "PKFAKE", "ALPACA_API_SECRET": "fake-secret"}
    if srv is not None:
        env.update({"ALPACA_API_KEY": srv.key, "ALPACA_API_SECRET": srv.secret, "ALPACA_API_URL": srv.url,
                    "ALPACA_DATA_URL": srv.url, "BROKER_TIMEOUT_SECONDS": "3"})
    env.update(overrides)
    return Settings.load(environ=env, dotenv_path=None)


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """Every HTTP request the clients send, as (method, url, keyword arguments), still sent for real."""
    calls: list[dict] = []
    real = requests.Session.request

    def request(self, method, url, **kwargs):
        calls.append({"method": method, "url": url, **kwargs})
        return real(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    return calls


@pytest.fixture(scope="module")
def connected(srv):
    s = settings_for(srv)
    gateway, account = connect(s)
    yield s, gateway, account
    gateway.trading._session.close()
    gateway.data._session.close()


# ====================================================================== broker/clients.py
def test_clients_point_at_the_configured_urls_with_the_keys(srv):
    trading, data = make_clients(settings_for(srv))
    assert isinstance(trading, TradingClient) and isinstance(data, StockHistoricalDataClient)
    assert trading._base_url == srv.url and data._base_url == srv.url
    assert (trading._api_key, trading._secret_key) == (srv.key, srv.secret)
    assert (data._api_key, data._secret_key) == (srv.key, srv.secret)
    srv.clear_log()
    assert trading.get_account().account_number  # the fake accepted the keys
    assert srv.count("/v2/account", "GET") == 1


def test_without_overrides_paper_and_live_go_to_alpacas_own_hosts():
    trading, data = make_clients(settings_for())
    assert trading._base_url == "https://paper-api.alpaca.markets"
    assert data._base_url == "https://data.alpaca.markets"
    live, live_data = make_clients(settings_for(ALPACA_PAPER="false"))
    assert live._base_url == "https://api.alpaca.markets"
    assert live_data._base_url == "https://data.alpaca.markets"


def test_every_request_carries_the_configured_timeout_unless_one_is_given(srv, sent):
    trading, data = make_clients(settings_for(srv, BROKER_TIMEOUT_SECONDS="7.5"))
    trading.get_account()
    assert sent and all(c["timeout"] == 7.5 for c in sent)
    sent.clear()
    data._session.request("GET", srv.url + "/v2/stocks/bars", params={"symbols": "AAPL", "timeframe": "1Hour"},
                          headers={"APCA-API-KEY-ID": srv.key, "APCA-API-SECRET-KEY": srv.secret})
    assert [c["timeout"] for c in sent] == [7.5]
    sent.clear()
    trading._session.request("GET", srv.url + "/v2/clock", timeout=1.25,
                             headers={"APCA-API-KEY-ID": srv.key, "APCA-API-SECRET-KEY": srv.secret})
    assert [c["timeout"] for c in sent] == [1.25]  # an explicit timeout is kept


def test_a_hung_server_raises_instead_of_hanging(srv):
    trading, _ = make_clients(settings_for(srv, BROKER_TIMEOUT_SECONDS="0.3"))
    fault = srv.faults.add("timeout", path="/v2/account", seconds=1.5)
    try:
        with pytest.raises(requests.exceptions.Timeout):
            trading.get_account()
    finally:
        srv.faults.remove(fault)


def test_the_sdk_never_resends_a_request(srv):
    trading, data = make_clients(settings_for(srv))
    assert trading._retry == 0 and data._retry == 0
    srv.clear_log()
    fault = srv.faults.add("429", path="/v2/orders", times=5)
    try:
        with pytest.raises(APIError):
            trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                                    time_in_force=TimeInForce.DAY))
    finally:
        srv.faults.remove(fault)
    assert srv.count("/v2/orders", "POST") == 1


# ====================================================================== broker/launcher.py
@pytest.mark.parametrize(("number", "masked"), [("PA123456789", "*******6789"), ("1234", "1234"), ("12", "12"),
                                                ("12345", "*2345"), ("", "")])
def test_the_account_number_is_masked_but_its_last_four(number, masked):
    assert mask(number) == masked


def test_connect_returns_the_gateway_and_the_account(srv, connected):
    _, gateway, account = connected
    assert isinstance(gateway, AlpacaGateway)
    assert gateway.trading._base_url == srv.url and gateway.data._base_url == srv.url
    assert gateway.trading._retry == 0
    assert account.account_number == srv.account()["account_number"]


def test_connect_uses_the_configured_feed(srv, monkeypatch):
    seen = {}

    class Gateway:
        def __init__(self, trading, data, feed):
            seen.update(trading=trading, data=data, feed=feed)

        def account(self):
            return "the account"

    monkeypatch.setattr(launcher, "AlpacaGateway", Gateway)
    gateway, account = connect(settings_for(srv, ALPACA_DATA_FEED="sip"))
    assert account == "the account" and isinstance(gateway, Gateway)
    assert seen["feed"] == "sip"
    assert isinstance(seen["trading"], TradingClient) and seen["trading"]._base_url == srv.url
    assert isinstance(seen["data"], StockHistoricalDataClient) and seen["data"]._base_url == srv.url


def test_wrong_paper_keys_say_which_keys_to_check(srv):
    with pytest.raises(LaunchError) as err:
        connect(settings_for(srv, ALPACA_API_SECRET="wrong"))
    assert str(err.value) == ("Alpaca refused the keys (401). Check ALPACA_API_KEY and ALPACA_API_SECRET in .env: "
                              "they must be paper keys (ALPACA_PAPER=true).")
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_wrong_live_keys_say_live(srv):
    with pytest.raises(LaunchError) as err:
        connect(settings_for(srv, ALPACA_API_KEY="AKWRONG", ALPACA_PAPER="false"))
    assert str(err.value) == ("Alpaca refused the keys (401). Check ALPACA_API_KEY and ALPACA_API_SECRET in .env: "
                              "they must be live keys (ALPACA_PAPER=false).")


def failing_gateway(exc: Exception):
    class Gateway:
        def __init__(self, *args):
            pass

        def account(self):
            raise exc

    return Gateway


def test_forbidden_is_a_key_problem_too(srv, monkeypatch):
    monkeypatch.setattr(launcher, "AlpacaGateway", failing_gateway(api_error(403, {"message": "forbidden"})))
    with pytest.raises(LaunchError, match=r"^Alpaca refused the keys \(403\)\. Check ALPACA_API_KEY"):
        connect(settings_for(srv))


def test_other_api_errors_are_not_hidden(srv, monkeypatch):
    """Any other refusal of the account read stops the start with Alpaca's own status and message (exit 2 and the
    "did not start" alert, not a traceback)."""
    error = api_error(422, {"code": 42210000, "message": "odd"})
    monkeypatch.setattr(launcher, "AlpacaGateway", failing_gateway(error))
    with pytest.raises(LaunchError) as err:
        connect(settings_for(srv))
    assert "Alpaca refused the account request (422" in str(err.value) and "odd" in str(err.value)
    assert "ALPACA_API_URL" in str(err.value)


def test_an_unreachable_alpaca_says_to_check_the_network(srv, monkeypatch):
    monkeypatch.setattr(launcher, "AlpacaGateway", failing_gateway(BrokerUnavailable("account: connection refused")))
    with pytest.raises(LaunchError) as err:
        connect(settings_for(srv))
    assert str(err.value) == ("cannot reach Alpaca (account: connection refused); check the network and try again")
    assert err.value.__suppress_context__


ACCOUNT = SimpleNamespace(account_number="PA3ABCD1234", equity="101234.5", cash="2500", status=AccountStatus.ACTIVE)


@pytest.fixture
def prompts(monkeypatch):
    """What the bot asks on the terminal, answered from `answers`."""
    asked: list[str] = []
    answers: list[str] = []

    def ask(prompt=""):
        asked.append(prompt)
        return answers.pop(0)

    monkeypatch.setattr("builtins.input", ask)
    return SimpleNamespace(asked=asked, answers=answers)


def test_paper_needs_no_flag_and_asks_nothing(prompts):
    money_gate(settings_for(), live_flag=False, yes=False, account=ACCOUNT)
    assert prompts.asked == []


def test_live_settings_without_live_flag_refuse(prompts):
    with pytest.raises(LaunchError) as err:
        money_gate(settings_for(ALPACA_PAPER="false"), live_flag=False, yes=True, account=ACCOUNT)
    assert str(err.value) == ("ALPACA_PAPER=false trades real money: add --live to confirm, or set "
                              "ALPACA_PAPER=true.")
    assert prompts.asked == []


def test_live_flag_with_paper_settings_refuses(prompts):
    with pytest.raises(LaunchError) as err:
        money_gate(settings_for(), live_flag=True, yes=True, account=ACCOUNT)
    assert str(err.value) == "--live asks for real money but ALPACA_PAPER=true: set ALPACA_PAPER=false with live keys."
    with pytest.raises(LaunchError, match="--live asks for real money"):
        money_gate(settings_for(), live_flag=True, yes=False, account=ACCOUNT)
    assert prompts.asked == []


def test_live_with_yes_asks_nothing(prompts):
    money_gate(settings_for(ALPACA_PAPER="false"), live_flag=True, yes=True, account=ACCOUNT)
    assert prompts.asked == []


@pytest.mark.parametrize("answer", ["LIVE", "  LIVE \n"])
def test_live_asks_to_type_live_showing_the_masked_account(prompts, answer):
    prompts.answers.append(answer)
    money_gate(settings_for(ALPACA_PAPER="false"), live_flag=True, yes=False, account=ACCOUNT)
    assert prompts.asked == ["Type LIVE to trade real money on account *******1234: "]


@pytest.mark.parametrize("answer", ["live", "", "yes", "LIVE!"])
def test_anything_but_live_starts_nothing(prompts, answer):
    prompts.answers.append(answer)
    with pytest.raises(LaunchError) as err:
        money_gate(settings_for(ALPACA_PAPER="false"), live_flag=True, yes=False, account=ACCOUNT)
    assert str(err.value) == "not confirmed: nothing was started"


def test_the_banner_names_the_account_and_the_money():
    assert banner(settings_for(), ACCOUNT, dry_run=False) == (
        "Alpaca PAPER account *******1234 | equity $101,234.50 | cash $2,500.00 | status ACTIVE")
    live = SimpleNamespace(account_number="9876", equity=5.0, cash=-12.345, status="ACCOUNT_UPDATED")
    assert banner(settings_for(ALPACA_PAPER="false"), live, dry_run=True) == (
        "Alpaca LIVE MONEY account 9876 | equity $5.00 | cash $-12.35 | status ACCOUNT_UPDATED"
        " | DRY RUN: decisions only, nothing is sent")
    coded = SimpleNamespace(account_number="77", equity=1, cash=0, status=SimpleNamespace(value="ONBOARDING"))
    assert banner(settings_for(), coded, dry_run=False).endswith("| status ONBOARDING")


def test_lumibot_broker_shares_the_clients(connected):
    s, gateway, _ = connected
    broker = lumibot_broker(s, gateway)
    assert isinstance(broker, AlpacaBroker)
    assert broker.api is gateway.trading
    assert broker.api_key == s.alpaca_api_key.reveal() and broker.api_secret == s.alpaca_api_secret.reveal()
    assert broker.is_paper is True
    assert broker.data_source._stock_client is gateway.data
    assert broker._use_polling is True
    assert broker.data_source._delay_minutes == 0  # Alpaca's data source would otherwise lag 16 minutes
    assert broker._orders_thread is None  # no polling thread and no websocket: the strategy reconciles itself
    assert getattr(broker, "stream", None) is None


def test_lumibot_broker_for_live_settings_is_live(srv):
    s = settings_for(srv, ALPACA_PAPER="false")
    trading, data = make_clients(s)
    broker = lumibot_broker(s, AlpacaGateway(trading, data, "iex"))
    assert broker.is_paper is False


def test_run_routes_sigterm_through_ctrl_c_and_reports(monkeypatch, capsys):
    import lumibot.traders

    events: list = []
    handlers: dict = {}

    class Trader:
        def add_strategy(self, instance):
            events.append(("add", instance))

        def run_all(self):
            events.append("run_all")

    def build(settings, gateway, scorer, dry_run, strategy="combined"):
        events.append(("build", settings, gateway, scorer, dry_run, strategy))
        return "the strategy"

    monkeypatch.setattr(lumibot.traders, "Trader", Trader)
    monkeypatch.setattr(launcher, "build_strategy", build)
    monkeypatch.setattr(launcher.signal, "signal", lambda sig, handler: handlers.__setitem__(sig, handler))
    raised: list = []
    monkeypatch.setattr(launcher.signal, "raise_signal", raised.append)
    assert launcher.run("S", "G", "scorer", True, strategy="mean_reversion") == 0
    assert events == [("build", "S", "G", "scorer", True, "mean_reversion"), ("add", "the strategy"), "run_all"]
    assert set(handlers) == {signal.SIGTERM}
    handlers[signal.SIGTERM](signal.SIGTERM, None)
    assert raised == [signal.SIGINT]
    assert capsys.readouterr().err == "stopped; every position was checked for protection\n"
    events.clear()
    launcher.run("S", "G", None, False)  # the strategy by default is the combined one
    assert events[0] == ("build", "S", "G", None, False, "combined")


# ====================================================================== broker/lumibot_alpaca.py
@pytest.fixture(scope="module")
def broker(connected):
    s, gateway, _ = connected
    return lumibot_broker(s, gateway)


@pytest.fixture(scope="module")
def group_orders(srv, connected):
    """Alpaca's order list after a bracket was sent: the entry and each leg, all marked `bracket`."""
    _, gateway, _ = connected
    gateway.trading.submit_order(MarketOrderRequest(
        symbol="MSFT", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=480.0), stop_loss=StopLossRequest(stop_price=380.0),
        client_order_id="wiring-bracket"))
    listed = gateway.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=False, limit=100,
                                                         symbols=["MSFT"]))
    members = [o for o in listed if o.order_class == OrderClass.BRACKET]
    assert members
    return members


def test_lumibot_itself_refuses_alpacas_group_members(broker, group_orders):
    """The defect corrected: Lumibot's own parser raises on a member of a bracket."""
    with pytest.raises(Exception, match=r"(?i)bracket"):
        Alpaca._parse_broker_order(broker, group_orders[0], "combined")


@pytest.mark.parametrize("cls", [OrderClass.BRACKET, OrderClass.OCO, OrderClass.OTO, "bracket", "oco", "oto"])
def test_group_members_are_read_as_simple_orders(broker, group_orders, cls):
    for member in group_orders:
        response = member.model_copy(update={"order_class": cls})
        order = broker._parse_broker_order(response, "combined")
        assert isinstance(order, LumiOrder)
        assert order.asset.symbol == "MSFT"
        assert float(order.quantity) == 3
        assert str(order.identifier) == str(member.id)
        assert order.order_class == LumiOrder.OrderClass.SIMPLE
        assert response.order_class == cls  # the response itself is left alone


def test_a_member_keeps_its_own_price(broker, group_orders):
    parsed = {str(o.id): broker._parse_broker_order(o, "combined") for o in group_orders}
    for member in group_orders:
        order = parsed[str(member.id)]
        if member.stop_price is not None:
            assert float(order.stop_price) == float(member.stop_price)
        if member.limit_price is not None:
            assert float(order.limit_price) == float(member.limit_price)
    assert GROUP_CLASSES == ("bracket", "oco", "oto")


def test_simple_orders_reach_lumibot_unchanged(broker, monkeypatch):
    seen = []
    monkeypatch.setattr(Alpaca, "_parse_broker_order",
                        lambda self, response, name, strategy_object=None: seen.append((response, name,
                                                                                        strategy_object)) or "ok")
    plain = SimpleNamespace(order_class=OrderClass.SIMPLE, symbol="AAPL")
    assert broker._parse_broker_order(plain, "combined", strategy_object="strat") == "ok"
    assert seen == [(plain, "combined", "strat")]
    no_copy = SimpleNamespace(order_class="bracket")  # not an alpaca-py model: passed on as it is
    broker._parse_broker_order(no_copy, "x")
    assert seen[-1] == (no_copy, "x", None)
    missing = SimpleNamespace(symbol="AAPL")  # no order_class at all
    broker._parse_broker_order(missing, "x")
    assert seen[-1][0] is missing
    model = SimpleNamespace(order_class="oco", model_copy=lambda update: ("copied", update))
    broker._parse_broker_order(model, "x", strategy_object="s")
    assert seen[-1] == (("copied", {"order_class": OrderClass.SIMPLE}), "x", "s")


def lumi_order(cls, children=()):
    return SimpleNamespace(order_class=cls, child_orders=list(children), stop_price=95.0, limit_price=120.0)


@pytest.mark.parametrize(("cls", "children", "stop_kept"), [
    (LumiOrder.OrderClass.OCO, ["take profit", "stop"], False),
    (LumiOrder.OrderClass.OCO, [], True),
    (LumiOrder.OrderClass.BRACKET, ["take profit", "stop"], True),
    (LumiOrder.OrderClass.OTO, ["stop"], True),
    (None, [], True),
])
def test_an_oco_is_sent_without_a_top_level_stop(broker, monkeypatch, cls, children, stop_kept):
    submitted = []
    monkeypatch.setattr(Alpaca, "_submit_order", lambda self, order: submitted.append(
        (order.stop_price, order.limit_price)) or "sent")
    assert broker._submit_order(lumi_order(cls, children)) == "sent"
    assert submitted == [(95.0 if stop_kept else None, 120.0)]


def transient() -> Exception:
    return requests.ConnectionError("connection reset by peer")


@pytest.mark.parametrize(("method", "parent", "args"), [
    ("_pull_broker_positions", "_pull_broker_positions", ("strategy",)),
    ("_pull_broker_all_orders", "_pull_broker_all_orders", ()),
    ("_get_balances_at_broker", "_get_balances_at_broker", ("USD", "strategy")),
])
def test_an_outage_keeps_lumibots_last_copy(broker, monkeypatch, caplog, method, parent, args):
    answers: list = [["first"], transient(), ["second"], api_error(422, {"message": "permanent"})]
    calls = []

    def read(self, *got):
        calls.append(got)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(Alpaca, parent, read)
    monkeypatch.setattr(broker, "_last_read", {"positions": [], "orders": []})
    assert getattr(broker, method)(*args) == ["first"]
    with caplog.at_level(logging.DEBUG, logger="trader.broker"):
        assert getattr(broker, method)(*args) == ["first"]  # the outage: the last copy
    what = {"_pull_broker_positions": "positions", "_pull_broker_all_orders": "orders"}.get(method, "balances")
    assert f"Lumibot's {what} re-read failed (connection reset by peer); its last copy is kept" in caplog.messages
    assert getattr(broker, method)(*args) == ["second"]
    with pytest.raises(APIError):  # a permanent error is not hidden
        getattr(broker, method)(*args)
    assert calls == [args] * 4


@pytest.mark.parametrize(("method", "parent", "args", "before"), [
    ("_pull_broker_positions", "_pull_broker_positions", (None,), []),
    ("_pull_broker_all_orders", "_pull_broker_all_orders", (), []),
])
def test_an_outage_before_any_read_gives_empty_books(broker, monkeypatch, method, parent, args, before):
    def read(self, *got):
        raise transient()

    monkeypatch.setattr(Alpaca, parent, read)
    monkeypatch.setattr(broker, "_last_read", {"positions": [], "orders": []})
    assert getattr(broker, method)(*args) == before


def test_balances_have_no_copy_before_the_first_read(broker, monkeypatch):
    def read(self, *got):
        raise transient()

    monkeypatch.setattr(Alpaca, "_get_balances_at_broker", read)
    monkeypatch.setattr(broker, "_last_read", {"positions": [], "orders": []})
    with pytest.raises(requests.ConnectionError):
        broker._get_balances_at_broker("USD", None)


def test_a_new_broker_starts_with_empty_positions_and_orders(connected):
    s, gateway, _ = connected
    fresh = lumibot_broker(s, gateway)
    assert fresh._last_read == {"positions": [], "orders": []}


def test_lumibots_reads_through_the_broker_against_alpaca(broker, srv):
    """The real reads (no stand-ins): positions and orders come back from the fake, then survive a 503."""
    srv.add_position("AAPL", 4, 99.0)
    positions = broker._pull_broker_positions()
    assert any(getattr(p, "symbol", None) == "AAPL" for p in positions)
    fault = srv.faults.add("503", path="/v2/positions", times=1)
    try:
        assert broker._pull_broker_positions() is positions
    finally:
        srv.faults.remove(fault)


def test_build_strategy_wires_the_broker_and_the_parameters(connected, tmp_path, monkeypatch):
    import lumibot.strategies._strategy as lumibot_strategy

    from strategies.combined_strategy import CombinedStrategy
    from trading.records.journal import Journal

    s, gateway, _ = connected
    # a DATA_SOURCE in the environment would make Lumibot swap in its own data source if the strategy were not
    # given the broker's explicitly
    monkeypatch.setattr(lumibot_strategy, "DATA_SOURCE", SimpleNamespace(name="lumibot's own"), raising=False)
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        clock = lambda: ts("2024-03-05 10:30")  # noqa: E731
        instance = launcher.build_strategy(s, gateway, "scorer", True, journal=journal, clock=clock)
        assert isinstance(instance, CombinedStrategy) and instance.name == "CombinedStrategy"
        assert isinstance(instance.broker, AlpacaBroker) and instance.broker.api is gateway.trading
        assert instance.broker.data_source._stock_client is gateway.data
        params = instance.parameters
        assert params["settings"] is s and params["gateway"] is gateway and params["scorer"] == "scorer"
        assert params["dry_run"] is True and params["journal"] is journal and params["clock"] is clock
        assert instance.force_start_immediately is True
        assert instance._benchmark_asset is None
        assert instance.broker.market == "24/7"
        bare = launcher.build_strategy(s, gateway, None, False)
        assert "journal" not in bare.parameters and "clock" not in bare.parameters
        assert bare.parameters["dry_run"] is False and bare.parameters["scorer"] is None
    finally:
        journal.close()


def test_an_oco_reaches_alpaca_with_its_stop_in_stop_loss_only(connected, srv):
    """Sent for real through the corrected broker: Alpaca accepts the OCO (a limit with a top-level stop is
    refused: "limit orders require no stop price")."""
    from strategies.lumibot_orders import to_lumibot
    from trading.orders import OcoOrder

    s, gateway, _ = connected
    instance = launcher.build_strategy(s, gateway, None, False)
    srv.add_position("AAPL", 5, 99.0)
    srv.clear_log()
    oco = to_lumibot(instance, OcoOrder(symbol="AAPL", qty=5, take_profit=Decimal("130"), stop_loss=Decimal("90"),
                                        client_order_id="wiring-oco", time_in_force="gtc"))
    instance.broker._submit_order(oco)
    (post,) = [r for r in srv.requests if r["method"] == "POST" and r["path"] == "/v2/orders"]
    assert post["status"] == 200, post
    body = post["body"]
    assert body["order_class"] == "oco" and body["type"] == "limit"
    assert "stop_price" not in body or body["stop_price"] is None
    assert float(body["stop_loss"]["stop_price"]) == 90.0
    assert float(body["take_profit"]["limit_price"]) == 130.0
    assert srv.rejections == []


def test_lumibots_own_oco_is_refused_by_alpaca(connected, srv):
    """The defect corrected: Lumibot alone sends the stop beside type=limit and Alpaca refuses the OCO."""
    from strategies.lumibot_orders import to_lumibot
    from trading.orders import OcoOrder

    s, gateway, _ = connected
    instance = launcher.build_strategy(s, gateway, None, False)
    srv.add_position("AAPL", 5, 99.0)
    srv.clear_log()
    oco = to_lumibot(instance, OcoOrder(symbol="AAPL", qty=5, take_profit=Decimal("131"), stop_loss=Decimal("91"),
                                        client_order_id="wiring-oco-lumibot", time_in_force="gtc"))
    with pytest.raises(APIError, match="limit orders require no stop price"):
        Alpaca._submit_order(instance.broker, oco)
    assert [r["body"]["stop_price"] for r in srv.rejections] == ["91.0"]


def _tracked(status: str, ident: str, children=()) -> LumiOrder:
    from lumibot.entities import Asset

    order = LumiOrder("S", Asset("MSFT", "stock"), 1, "buy", identifier=ident)
    order.status = status
    order.child_orders = list(children)
    return order


def test_lumibots_books_forget_every_order_whose_own_status_is_final(broker, monkeypatch):
    legs = [_tracked("new", "leg-stop"), _tracked("new", "leg-tp")]  # Lumibot's stale copies
    orders = {"filled-bracket": _tracked("fill", "filled-bracket", legs),
              "canceled": _tracked("canceled", "canceled"), "replaced": _tracked("replaced", "replaced"),
              "expired": _tracked("expired", "expired"), "rejected": _tracked("rejected", "rejected"),
              "unknown": _tracked("unknown", "unknown"), "new": _tracked("new", "new"),
              "partial": _tracked("partial_fill", "partial"), "open": _tracked("open", "open")}
    assert orders["filled-bracket"].is_active(), "Lumibot counts it active while its legs' copies say new"
    buckets = [broker._unprocessed_orders, broker._new_orders, broker._partially_filled_orders,
               broker._filled_orders, broker._canceled_orders]
    for i, order in enumerate(orders.values()):
        buckets[i % len(buckets)].append(order)
    try:
        assert broker.forget_finished_orders() == 6
        assert {o.identifier for o in broker.tracked_orders()} == {"new", "partial", "open"}
        assert broker.forget_finished_orders() == 0
        # before Lumibot compares its books with the broker's list (its pre-iteration re-read), the finished go
        late = _tracked("fill", "late")
        broker._new_orders.append(late)
        monkeypatch.setattr(Alpaca, "_pull_all_orders", lambda self, name, strategy: [])
        assert broker._pull_all_orders("S", None) == []
        assert "late" not in {o.identifier for o in broker.tracked_orders()}
    finally:
        for bucket in buckets:
            for o in list(bucket.get_list()):
                bucket.remove(o)
