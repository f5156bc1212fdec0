"""Lumibot's Alpaca broker with three defects of Lumibot 4.6.30 corrected (all found against the fake Alpaca
server, which applies Alpaca's order rules; see tests/test_live_alpaca.py and tests/test_live_tools.py).

- Sending: for an OCO Lumibot puts the stop at the top level (`stop_price`) beside `type=limit`, a price
  field a limit order does not take ("limit orders require no stop price"). The stop belongs in
  `stop_loss`, which Lumibot fills from the child leg; the top-level copy is dropped.
- Reading: before every live iteration Lumibot's executor re-reads the account, the positions and the
  orders into its own books. During an outage (429, 5xx, timeouts) that raises before the strategy
  runs, with a traceback every iteration; these reads keep Lumibot's last copy instead, so the
  strategy runs, meets the outage in its own reads (broker/gateway.py retries them, logs the outage
  once and skips the iteration) and comes back cleanly.
- Parsing: Lumibot's executor rebuilds each order it re-reads as a Lumibot Order. Alpaca lists a
  bracket, OCO or OTO as separate orders (the entry, each leg) that all carry the group's order_class,
  each with only its own price; Lumibot's Order refuses such a class without the secondary prices
  ("Order class is BRACKET but no child orders ..."), and the exception ends the iteration before the
  strategy runs, every hour, for as long as one such order is among the account's last 100. Each
  member is read as the simple order it is. Nothing depends on Lumibot's copy: the bot reads positions
  and orders from Alpaca itself (broker/snapshot.py).
- Forgetting: with its trade stream off (the bot reconciles fills itself, broker/fills.py) Lumibot keeps
  every order the bot ever sent. A filled bracket entry counts as active for as long as Lumibot's own copies
  of its legs say "new" (they are never updated: the legs are tracked as orders of their own), and once it
  has dropped out of the last 100 orders the executor re-reads it by id before every iteration: 90 extra
  requests an iteration after 300 iterations of a 500-symbol universe, and memory that grew with every
  order. Before each re-read, the orders whose own status is final leave Lumibot's books.
"""

import logging

from alpaca.trading.enums import OrderClass
from lumibot.brokers import Alpaca
from lumibot.entities import Order

from broker.errors import is_transient

logger = logging.getLogger("trader.broker")
GROUP_CLASSES = ("bracket", "oco", "oto")
# an order's own status, not is_active(): a filled bracket parent stays "active" while its legs' copies do
FINAL = {Order.OrderStatus.FILLED, Order.OrderStatus.CANCELED, Order.OrderStatus.ERROR, Order.OrderStatus.EXPIRED,
         Order.OrderStatus.UNKNOWN}


class AlpacaBroker(Alpaca):
    def __init__(self, *args, **kwargs):
        self._last_read: dict[str, object] = {"positions": [], "orders": []}
        super().__init__(*args, **kwargs)

    def _keep_last(self, what: str, read):
        try:
            value = read()
        except Exception as exc:
            if not is_transient(exc) or what not in self._last_read:
                raise
            logger.debug("Lumibot's %s re-read failed (%s); its last copy is kept", what, exc)
            return self._last_read[what]
        self._last_read[what] = value
        return value

    def _get_balances_at_broker(self, quote_asset, strategy):
        return self._keep_last("balances", lambda: super(AlpacaBroker, self)._get_balances_at_broker(quote_asset,
                                                                                                     strategy))

    def _pull_broker_positions(self, strategy=None):
        return self._keep_last("positions", lambda: super(AlpacaBroker, self)._pull_broker_positions(strategy))

    def _pull_broker_all_orders(self):
        return self._keep_last("orders", lambda: super(AlpacaBroker, self)._pull_broker_all_orders())

    def _pull_all_orders(self, strategy_name, strategy_object):
        self.forget_finished_orders()  # what the last re-read found final is not re-read again, nor kept
        return super()._pull_all_orders(strategy_name, strategy_object)

    def tracked_orders(self) -> list[Order]:
        """Every order in Lumibot's books, each bucket included (the buckets are Lumibot's internals)."""
        return [o for bucket in self._buckets() for o in bucket.get_list()]

    def forget_finished_orders(self) -> int:
        """Drop from Lumibot's books every order whose own status is final; returns how many."""
        dropped = 0
        with self._lock:
            for bucket in self._buckets():
                for order in list(bucket.get_list()):  # a copy: removing while iterating would skip the next one
                    if order.status in FINAL:
                        bucket.remove(order)
                        dropped += 1
            if dropped:
                self._invalidate_order_caches()
        return dropped

    def _buckets(self) -> tuple:
        return (self._unprocessed_orders, self._placeholder_orders, self._new_orders, self._partially_filled_orders,
                self._filled_orders, self._canceled_orders, self._error_orders)

    def _submit_order(self, order):
        if order.order_class == Order.OrderClass.OCO and order.child_orders:
            order.stop_price = None  # the stop travels in stop_loss (built from the stop child)
        return super()._submit_order(order)

    def _parse_broker_order(self, response, strategy_name, strategy_object=None):
        order_class = getattr(response, "order_class", None)
        if str(getattr(order_class, "value", order_class)) in GROUP_CLASSES and hasattr(response, "model_copy"):
            response = response.model_copy(update={"order_class": OrderClass.SIMPLE})
        return super()._parse_broker_order(response, strategy_name, strategy_object=strategy_object)
