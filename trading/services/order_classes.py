"""Validating protective orders (order_class, take_profit, stop_loss, trailing stops) by
Alpaca's documented rules, for every path that submits orders.

- bracket: an entry with both a take_profit and a stop_loss; time in force day or gtc; for a
  buy, take_profit.limit_price above and stop_loss.stop_price below the entry's price (its limit,
  its stop, or for a market order the current price); the reverse for a sell;
- oto: an entry with exactly one of the two;
- oco: exit-only, both exits, type limit (the take-profit is the order itself): it closes (part
  of) an existing position on the other side, priced around the current price;
- trailing_stop: exactly one of trail_price (> 0) or trail_percent (in (0, 100)), order_class
  simple (never a leg), time in force day or gtc; its stop follows the price.
Every refusal is InvalidOrder naming the field (`take_profit.limit_price`, ...).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

from trading.exceptions import InvalidOrder
from trading.models import OrderClass, OrderSide, OrderType, TimeInForce

MAX_PRICE = Decimal("1e13")


def _price(value: Any, field: str, *, required: bool = True) -> Decimal | None:
    if value is None:
        if required:
            raise InvalidOrder(f"{field} is required", details={"field": field})
        return None
    if (
        not isinstance(value, Decimal)
        or not value.is_finite()
        or value <= 0
        or value >= MAX_PRICE
        or value.as_tuple().exponent < -6
    ):
        raise InvalidOrder(f"{field} must be a positive price", details={"field": field})
    return value


def _leg(value: Any, name: str, keys: tuple[str, ...]) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidOrder(f"{name} must be an object", details={"field": name})
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise InvalidOrder(
            f"{name}.{unknown[0]} is not a field of {name}",
            details={"field": f"{name}.{unknown[0]}"},
        )
    return value


def validate_supported(*, order_class: str, type: str) -> None:
    """A broker that cannot run protective orders refuses them before anything is recorded."""
    from trading.brokers import broker_protective_orders

    if order_class == OrderClass.SIMPLE and type != OrderType.TRAILING_STOP:
        return
    if not broker_protective_orders():
        field = "type" if type == OrderType.TRAILING_STOP else "order_class"
        raise InvalidOrder(
            f"the {settings.BROKER} broker does not support protective orders "
            "(bracket, oco, oto, trailing_stop)",
            details={"field": field},
        )


def validate_trailing(
    *,
    type: str,
    order_class: str,
    trail_price: Any,
    trail_percent: Any,
    limit_price: Any,
    stop_price: Any,
) -> None:
    if type != OrderType.TRAILING_STOP:
        for name, value in (("trail_price", trail_price), ("trail_percent", trail_percent)):
            if value is not None:
                raise InvalidOrder(
                    f"{name} is only for trailing_stop orders", details={"field": name}
                )
        return
    if order_class != OrderClass.SIMPLE:
        raise InvalidOrder(
            "a trailing stop cannot be part of a bracket, OCO or OTO order",
            details={"field": "order_class"},
        )
    if (trail_price is None) == (trail_percent is None):
        raise InvalidOrder(
            "a trailing stop takes exactly one of trail_price and trail_percent",
            details={"field": "trail_price"},
        )
    for name, value in (("limit_price", limit_price), ("stop_price", stop_price)):
        if value is not None:
            raise InvalidOrder(
                f"{name} is not set on a trailing stop (its stop follows the price)",
                details={"field": name},
            )
    if trail_price is not None:
        _price(trail_price, "trail_price")
    elif not (
        isinstance(trail_percent, Decimal)
        and trail_percent.is_finite()
        and 0 < trail_percent < 100
        and trail_percent.as_tuple().exponent >= -4
    ):
        raise InvalidOrder(
            "trail_percent must be a percentage in (0, 100)", details={"field": "trail_percent"}
        )


def validate_class(
    *,
    order_class: str,
    side: str,
    type: str,
    time_in_force: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    take_profit: Any,
    stop_loss: Any,
) -> tuple[dict | None, dict | None]:
    """The rules that need no market data; returns the cleaned (take_profit, stop_loss)."""
    if order_class not in OrderClass.values:
        raise InvalidOrder(
            f"order_class must be one of {OrderClass.values}", details={"field": "order_class"}
        )
    take_profit = _leg(take_profit, "take_profit", ("limit_price",))
    stop_loss = _leg(stop_loss, "stop_loss", ("stop_price", "limit_price"))
    if order_class == OrderClass.SIMPLE:
        for name, value in (("take_profit", take_profit), ("stop_loss", stop_loss)):
            if value is not None:
                raise InvalidOrder(
                    f"{name} needs order_class bracket, oco or oto", details={"field": name}
                )
        return None, None
    if time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
        raise InvalidOrder(
            f"a {order_class} order's time in force must be day or gtc",
            details={"field": "time_in_force"},
        )
    if order_class in (OrderClass.BRACKET, OrderClass.OCO):
        for name, value in (("take_profit", take_profit), ("stop_loss", stop_loss)):
            if value is None:
                raise InvalidOrder(f"a {order_class} order needs {name}", details={"field": name})
    elif (take_profit is None) == (stop_loss is None):
        raise InvalidOrder(
            "an oto order takes exactly one of take_profit and stop_loss",
            details={"field": "take_profit" if take_profit is not None else "stop_loss"},
        )
    if take_profit is not None:
        take_profit = {
            "limit_price": _price(take_profit.get("limit_price"), "take_profit.limit_price")
        }
    if stop_loss is not None:
        stop_loss = {
            "stop_price": _price(stop_loss.get("stop_price"), "stop_loss.stop_price"),
            "limit_price": _price(
                stop_loss.get("limit_price"), "stop_loss.limit_price", required=False
            ),
        }
    if order_class == OrderClass.OCO:
        if type != OrderType.LIMIT:
            raise InvalidOrder(
                "an oco order's type must be limit (its take-profit)", details={"field": "type"}
            )
        if limit_price is not None and limit_price != take_profit["limit_price"]:
            raise InvalidOrder(
                "an oco order's limit_price is its take_profit.limit_price",
                details={"field": "limit_price"},
            )
    return take_profit, stop_loss


def validate_prices(
    *,
    order_class: str,
    side: str,
    type: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    price: Decimal,
    take_profit: dict | None,
    stop_loss: dict | None,
    position_qty: Decimal,
    qty: Decimal,
) -> None:
    """The rules against the entry price (or the current `price`) and the position."""
    if order_class == OrderClass.SIMPLE:
        return
    if order_class == OrderClass.OCO:
        # Exit-only: the exits are on the order's own side and close a position.
        exit_side, base = side, price
        held = position_qty if side == OrderSide.SELL else -position_qty
        if held < qty:
            owner = "long" if side == OrderSide.SELL else "short"
            raise InvalidOrder(
                f"an oco order is exit-only: a {side} of {qty} needs a {owner} position of at "
                f"least {qty} (it is {position_qty})",
                details={"field": "qty"},
            )
    else:
        exit_side = OrderSide.SELL if side == OrderSide.BUY else OrderSide.BUY
        if type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            base = limit_price
        elif type == OrderType.STOP:
            base = stop_price
        else:
            base = price
    above = exit_side == OrderSide.SELL  # a long's take-profit is above, its stop below
    word = "above" if above else "below"
    other = "below" if above else "above"
    if take_profit is not None:
        limit = take_profit["limit_price"]
        if (limit <= base) if above else (limit >= base):
            raise InvalidOrder(
                f"take_profit.limit_price must be {word} the entry price {base}",
                details={"field": "take_profit.limit_price"},
            )
    if stop_loss is not None:
        stop = stop_loss["stop_price"]
        if (stop >= base) if above else (stop <= base):
            raise InvalidOrder(
                f"stop_loss.stop_price must be {other} the entry price {base}",
                details={"field": "stop_loss.stop_price"},
            )
        stop_limit = stop_loss.get("limit_price")
        if stop_limit is not None and ((stop_limit > stop) if above else (stop_limit < stop)):
            raise InvalidOrder(
                f"stop_loss.limit_price must not be {word} stop_loss.stop_price",
                details={"field": "stop_loss.limit_price"},
            )
