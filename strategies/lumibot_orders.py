"""Our order value objects as Lumibot orders: what both venues hand to `strategy.submit_order`, so the
order a backtest places is the order Lumibot's Alpaca broker sends live."""

from lumibot.entities import Order as LumiOrder

from trading.orders import BracketOrder, LimitOrder, MarketOrder, OcoOrder


def to_lumibot(strategy, order) -> LumiOrder:
    """The Lumibot order for `order`, tagged with its client order id (Alpaca's client_order_id live)."""
    cid = {"client_order_id": order.client_order_id}
    if isinstance(order, BracketOrder):
        lumi = strategy.create_order(order.symbol, order.qty, "buy", order_class=LumiOrder.OrderClass.BRACKET,
                                     secondary_limit_price=float(order.take_profit),
                                     secondary_stop_price=float(order.stop_loss),
                                     time_in_force=order.time_in_force, custom_params=cid)
    elif isinstance(order, OcoOrder):
        lumi = strategy.create_order(order.symbol, order.qty, "sell", limit_price=float(order.take_profit),
                                     stop_price=float(order.stop_loss), order_class=LumiOrder.OrderClass.OCO,
                                     time_in_force=order.time_in_force, custom_params=cid)
    elif isinstance(order, MarketOrder):
        lumi = strategy.create_order(order.symbol, order.qty, order.side, time_in_force=order.time_in_force,
                                     custom_params=cid)
    elif isinstance(order, LimitOrder):
        params = dict(cid, extended_hours=True) if order.extended_hours else cid
        lumi = strategy.create_order(order.symbol, order.qty, order.side, limit_price=float(order.limit_price),
                                     time_in_force=order.time_in_force, custom_params=params)
    else:
        raise TypeError(f"unknown order type {type(order).__name__}")
    lumi.tag = order.client_order_id
    return lumi
