"""Start the bot on Alpaca: the account check, the money-safety gates, and Lumibot's broker, built once.

- Paper is the default. Live money needs ALPACA_PAPER=false *and* --live, and a typed confirmation
  unless --yes. The account traded (paper/live, masked number, equity) is printed before anything.
- Lumibot's Alpaca broker is constructed here, explicitly, with the two alpaca-py clients injected
  (LUMIBOT_LAZY_CREDENTIALS keeps Lumibot from building its own at import). The same clients serve the
  gateway's reads, so each API has one HTTP session. Lumibot's order stream and polling thread are
  off: the strategy reconciles fills from the broker itself.
- Lumibot decides market hours with a local calendar; here Alpaca's /v2/clock decides (the strategy
  checks it every iteration), so Lumibot's market is set to 24/7.
- Ctrl-C and SIGTERM both end through Lumibot's on_abrupt_closing: the intent in hand finishes, no
  other starts, and every position is checked for protection before the process exits.
- Alerts (ALERT_URLS): the strategy owns them (and announces the start once initialised); "bot stopped"
  is sent from here when Lumibot's trader returns, and the alert worker is closed last.
"""

import signal
import sys

from alpaca.common.exceptions import APIError

from broker.clients import make_clients
from broker.errors import BrokerUnavailable, status_of
from broker.gateway import AlpacaGateway
from trading.settings import Settings
from utils.redact import mask


class LaunchError(Exception):
    """The bot cannot start; the message says why and what to do (exit code 2)."""


def connect(settings: Settings) -> tuple[AlpacaGateway, object]:
    """The gateway and the account, or LaunchError with the reason."""
    trading, data = make_clients(settings)
    gateway = AlpacaGateway(trading, data, settings.alpaca_data_feed)
    try:
        account = gateway.account()
    except APIError as exc:
        if status_of(exc) in (401, 403):
            which = "paper" if settings.alpaca_paper else "live"
            raise LaunchError(f"Alpaca refused the keys ({status_of(exc)}). Check ALPACA_API_KEY and "
                              f"ALPACA_API_SECRET in .env: they must be {which} keys (ALPACA_PAPER="
                              f"{str(settings.alpaca_paper).lower()}).") from None
        raise LaunchError(f"Alpaca refused the account request ({status_of(exc)}: {exc}); check ALPACA_API_URL "
                          "and ALPACA_PAPER in .env") from None
    except BrokerUnavailable as exc:
        raise LaunchError(f"cannot reach Alpaca ({exc}); check the network and try again") from None
    return gateway, account


def money_gate(settings: Settings, live_flag: bool, yes: bool, account) -> None:
    if not settings.alpaca_paper and not live_flag:
        raise LaunchError("ALPACA_PAPER=false trades real money: add --live to confirm, or set ALPACA_PAPER=true.")
    if live_flag and settings.alpaca_paper:
        raise LaunchError("--live asks for real money but ALPACA_PAPER=true: set ALPACA_PAPER=false with live keys.")
    if live_flag and not yes:
        try:
            answer = input(f"Type LIVE to trade real money on account {mask(account.account_number)}: ")
        except EOFError:  # no terminal (systemd, cron): nobody to confirm
            raise LaunchError("--live asks for a typed confirmation but there is no terminal; add --yes to start "
                              "unattended on real money") from None
        if answer.strip() != "LIVE":
            raise LaunchError("not confirmed: nothing was started")


def banner(settings: Settings, account, dry_run: bool) -> str:
    mode = "PAPER" if settings.alpaca_paper else "LIVE MONEY"
    extra = " | DRY RUN: decisions only, nothing is sent" if dry_run else ""
    return (f"Alpaca {mode} account {mask(account.account_number)} | equity ${float(account.equity):,.2f} | "
            f"cash ${float(account.cash):,.2f} | status {getattr(account.status, 'value', account.status)}{extra}")


def lumibot_broker(settings: Settings, gateway: AlpacaGateway):
    from lumibot.data_sources import AlpacaData

    from broker.lumibot_alpaca import AlpacaBroker

    cfg = {"API_KEY": settings.alpaca_api_key.reveal(), "API_SECRET": settings.alpaca_api_secret.reveal(),
           "PAPER": settings.alpaca_paper}
    data = AlpacaData(cfg, stock_client=gateway.data, delay=0)
    return AlpacaBroker(cfg, trading_client=gateway.trading, data_source=data, connect_stream=False,
                        start_orders_thread=False)


def build_strategy(settings: Settings, gateway: AlpacaGateway, scorer, dry_run: bool, journal=None, clock=None,
                   strategy: str = "combined", alerter=None, account_label: str = ""):
    from ops.alerts import check_alert_urls
    from strategies import strategy_class, strategy_name

    check_alert_urls(settings)  # a bad ALERT_URLS entry stops start-up here (exit code 2), not in Lumibot's thread
    broker = lumibot_broker(settings, gateway)
    params = {"settings": settings, "gateway": gateway, "scorer": scorer, "dry_run": dry_run}
    if journal is not None:
        params["journal"] = journal
    if clock is not None:
        params["clock"] = clock
    if alerter is not None:
        params["alerter"] = alerter
    if account_label:
        params["account_label"] = account_label  # masked: the status the API shows carries it
    # data_source given explicitly: otherwise Lumibot's Strategy builds a default Alpaca broker from the
    # environment's keys (with its own websocket to the real Alpaca) and swaps in its data source
    # force_start_immediately: the first iteration runs a minute after start (then hourly at that minute),
    # not at the next top of the hour: positions found unprotected at start are protected at once
    cls = strategy_class(strategy)
    instance = cls(broker=broker, data_source=broker.data_source, name=strategy_name(strategy),
                   parameters=params, benchmark_asset=None, force_start_immediately=True)
    instance.set_market("24/7")
    return instance


def run(settings: Settings, gateway: AlpacaGateway, scorer, dry_run: bool, strategy: str = "combined",
        api: bool = False, account_label: str = "") -> int:
    from lumibot.traders import Trader

    kw = {"account_label": account_label} if account_label else {}
    instance = build_strategy(settings, gateway, scorer, dry_run, strategy=strategy, **kw)
    server = None
    if api:  # the status and control API and the dashboard, in a thread beside Lumibot's loop
        from ops.api.server import start_with_bot

        server = start_with_bot(settings, instance)
        print(f"API and dashboard on {server.url} (Authorization: Bearer <API_TOKEN>; sign in at {server.url}/)",
              flush=True)
    trader = Trader()
    trader.add_strategy(instance)
    # Lumibot traps SIGINT only; route SIGTERM (service managers, docker stop) through the same path
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    error: Exception | None = None
    try:
        trader.run_all()
    except Exception as exc:
        error = exc
        raise
    finally:
        # the strategy announced the start once initialised (it owns the journal the alerts are kept in);
        # the stop is announced here, last, and the alert worker gets a few seconds to send what it holds
        alerts = getattr(instance, "alerts", None)
        if alerts is not None:
            alerts.stopped(error)
        if server is not None:
            server.stop()
        stop_streams = getattr(instance, "stop_streams", None)
        if callable(stop_streams):  # Ctrl-C stopped them already (on_abrupt_closing); a trader that returned did not
            stop_streams()
    print("stopped; every position was checked for protection", file=sys.stderr)
    return 0
