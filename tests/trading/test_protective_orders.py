"""Protective orders on the paper broker, through the API and the order service: bracket, OTO,
OCO and trailing stops; legs shown nested; one exit fills, the other is canceled."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketdata.selectors import last_price
from tests.helpers import next_bar, submit
from tests.trading.test_market_hours import at  # noqa: F401 - the exchange-clock fixture
from trading import selectors, services
from trading.api.serializers import OrderSerializer
from trading.models import Order, OrderStatus, Position, Trade

pytestmark = pytest.mark.django_db


def bracket(client, price, *, tp=5, sl=5, **body):
    return submit(
        client,
        qty="10",
        order_class="bracket",
        take_profit={"limit_price": str(price + tp)},
        stop_loss={"stop_price": str(price - sl)},
        **body,
    )


def legs_by_role(order_json):
    return {leg["leg_role"]: leg for leg in order_json["legs"]}


def test_done_when_a_bracket_shows_its_legs_and_one_exit_fills_when_a_bar_crosses_both(
    ready, trader
):
    price = last_price("SPY")
    answer = bracket(trader, price)
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["order_class"] == "bracket" and body["status"] == "filled"
    legs = legs_by_role(body)
    assert set(legs) == {"take_profit", "stop_loss"}
    # The entry filled at once (market), so both exits work now, for the filled quantity.
    assert {leg["status"] for leg in legs.values()} == {"accepted"}
    assert legs["take_profit"]["type"] == "limit" and legs["take_profit"]["side"] == "sell"
    assert Decimal(legs["take_profit"]["limit_price"]) == price + 5
    assert legs["stop_loss"]["type"] == "stop"
    assert Decimal(legs["stop_loss"]["stop_price"]) == price - 5
    assert {leg["parent_id"] for leg in legs.values()} == {body["id"]}

    detail = trader.get(f"/api/v1/orders/{body['id']}").json()
    assert legs_by_role(detail).keys() == legs.keys()
    listed = trader.get("/api/v1/orders").json()["results"]
    # Legs are nested under their parent, not listed beside it.
    assert [o["id"] for o in listed] == [body["id"]]
    assert len(listed[0]["legs"]) == 2

    # One bar whose range covers both the take-profit and the stop: exactly one exit fills.
    next_bar("SPY", open_=price, high=price + 8, low=price - 8, close=price)
    services.orders_process_bars()
    detail = trader.get(f"/api/v1/orders/{body['id']}").json()
    legs = legs_by_role(detail)
    assert legs["stop_loss"]["status"] == "filled"  # the conservative same-bar rule
    assert legs["take_profit"]["status"] == "canceled"
    assert "one-cancels-other" in legs["take_profit"]["reject_reason"]
    assert Position.objects.get(symbol="SPY").qty == 0
    assert Trade.objects.filter(order__parent_id=body["id"]).count() == 1
    # Later bars change nothing.
    next_bar("SPY", open_=price + 9, high=price + 9, low=price - 9, close=price)
    services.orders_process_bars()
    assert Trade.objects.filter(order__parent_id=body["id"]).count() == 1


def test_a_bar_opening_through_the_take_profit_fills_it_at_the_open(ready, trader):
    price = last_price("SPY")
    body = bracket(trader, price).json()
    next_bar("SPY", open_=price + 7, high=price + 8, low=price - 8, close=price)
    services.orders_process_bars()
    legs = legs_by_role(trader.get(f"/api/v1/orders/{body['id']}").json())
    assert legs["take_profit"]["status"] == "filled"
    assert Decimal(legs["take_profit"]["filled_avg_price"]) == price + 7  # the better open
    assert legs["stop_loss"]["status"] == "canceled"


def test_a_stop_gapped_through_fills_at_the_open_with_slippage(ready, trader, settings):
    price = last_price("SPY")
    body = bracket(trader, price).json()
    next_bar("SPY", open_=price - 10, high=price - 9, low=price - 12, close=price - 11)
    services.orders_process_bars()
    stop = Order.objects.get(parent_id=body["id"], leg_role="stop_loss")
    assert stop.status == OrderStatus.FILLED
    slip = (price - 10) * settings.PAPER_SLIPPAGE_BPS / Decimal(10000)
    assert stop.filled_avg_price == (price - 10 - slip).quantize(Decimal("0.0001"))


def test_limit_entry_legs_are_held_until_the_entry_fills(ready, trader):
    price = last_price("SPY")
    body = bracket(trader, price - 2, type="limit", limit_price=str(price - 2)).json()
    assert body["status"] == "accepted"
    assert {leg["status"] for leg in body["legs"]} == {"held"}
    # A bar that would cross the take-profit but not the entry: nothing happens.
    next_bar("SPY", open_=price, high=price + 10, low=price - 1, close=price)
    services.orders_process_bars()
    assert set(Order.objects.filter(parent_id=body["id"]).values_list("status", flat=True)) == {
        "held"
    }
    next_bar("SPY", open_=price - 1, high=price - 1, low=price - 3, close=price - 2)
    services.orders_process_bars()
    assert Order.objects.get(pk=body["id"]).status == OrderStatus.FILLED
    assert set(Order.objects.filter(parent_id=body["id"]).values_list("status", flat=True)) == {
        "accepted"
    }
    # The entry's own bar does not fill the exits: they work from the next bar on.
    next_bar("SPY", open_=price, high=price + 4, low=price - 1, close=price + 3)
    services.orders_process_bars()
    take_profit = Order.objects.get(parent_id=body["id"], leg_role="take_profit")
    assert take_profit.status == OrderStatus.FILLED
    assert take_profit.filled_avg_price == price + 3


def test_canceling_the_parent_cancels_its_legs(ready, trader):
    price = last_price("SPY")
    body = bracket(trader, price - 2, type="limit", limit_price=str(price - 2)).json()
    answer = trader.delete(f"/api/v1/orders/{body['id']}")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "canceled"
    assert {leg["status"] for leg in answer.json()["legs"]} == {"canceled"}


def test_kill_switch_cancels_legs_and_flatten_closes_the_position(ready, trader):
    price = last_price("SPY")
    body = bracket(trader, price).json()
    result = services.trading_halt(reason="test", flatten=True)
    assert result.cancel_failed == []
    assert set(Order.objects.filter(parent_id=body["id"]).values_list("status", flat=True)) == {
        "canceled"
    }
    assert Position.objects.get(symbol="SPY").qty == 0
    # The canceled exits never fill afterwards.
    next_bar("SPY", open_=price, high=price + 8, low=price - 8, close=price)
    services.orders_process_bars()
    assert Trade.objects.filter(order__parent_id=body["id"]).count() == 0


def test_kill_switch_cancels_a_held_bracket_whole(ready, trader):
    price = last_price("SPY")
    body = bracket(trader, price - 2, type="limit", limit_price=str(price - 2)).json()
    result = services.trading_halt(reason="test")
    assert result.cancel_failed == []
    assert {str(o.pk) for o in result.canceled} >= {body["id"]}
    assert Order.objects.filter(status__in=["held", "accepted"]).count() == 0


def test_oto_with_a_stop_loss_only(ready, trader):
    price = last_price("SPY")
    answer = submit(trader, qty="3", order_class="oto", stop_loss={"stop_price": str(price - 1)})
    assert answer.status_code == 201, answer.json()
    assert [leg["leg_role"] for leg in answer.json()["legs"]] == ["stop_loss"]
    next_bar("SPY", open_=price, high=price + 50, low=price - 2, close=price)
    services.orders_process_bars()
    assert Position.objects.get(symbol="SPY").qty == 0


def test_oco_is_exit_only_and_one_cancels_the_other(ready, trader):
    price = last_price("SPY")
    oco = {
        "side": "sell",
        "qty": "4",
        "type": "limit",
        "order_class": "oco",
        "take_profit": {"limit_price": str(price + 3)},
        "stop_loss": {"stop_price": str(price - 3), "limit_price": str(price - 4)},
    }
    refused = submit(trader, **oco)
    assert refused.status_code == 400, refused.json()
    assert refused.json()["error"]["details"]["field"] == "qty", refused.json()
    assert Order.objects.count() == 0
    assert submit(trader, qty="4").status_code == 201  # the position it may close
    answer = submit(trader, **oco)
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["leg_role"] == "take_profit" and body["limit_price"] == f"{price + 3:.6f}"
    assert [leg["leg_role"] for leg in body["legs"]] == ["stop_loss"]
    assert body["legs"][0]["type"] == "stop_limit" and body["legs"][0]["status"] == "accepted"
    next_bar("SPY", open_=price + 1, high=price + 3, low=price, close=price + 2)
    services.orders_process_bars()
    root = Order.objects.get(pk=body["id"])
    assert root.status == OrderStatus.FILLED and root.filled_avg_price == price + 3
    assert Order.objects.get(parent=root).status == OrderStatus.CANCELED
    assert Position.objects.get(symbol="SPY").qty == 0


def test_trailing_stop_tracks_its_high_water_mark_and_reports_it(ready, trader):
    price = last_price("SPY")
    assert submit(trader, qty="5").status_code == 201
    answer = submit(
        trader, side="sell", qty="5", type="trailing_stop", trail_price="2", time_in_force="gtc"
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert Decimal(body["hwm"]) == price and Decimal(body["stop_price"]) == price - 2
    next_bar("SPY", open_=price + 1, high=price + 6, low=price + 1, close=price + 5)
    services.orders_process_bars()
    shown = trader.get(f"/api/v1/orders/{body['id']}").json()
    assert Decimal(shown["hwm"]) == price + 6
    assert Decimal(shown["stop_price"]) == price + 4
    assert shown["status"] == "accepted"
    next_bar("SPY", open_=price + 5, high=price + 5, low=price + 3, close=price + 3)
    services.orders_process_bars()
    order = Order.objects.get(pk=body["id"])
    assert order.status == OrderStatus.FILLED
    assert order.filled_avg_price <= price + 4 and order.filled_avg_price > price + 3
    assert Position.objects.get(symbol="SPY").qty == 0


def test_trailing_percent_buy_tracks_the_low_water_mark(ready, trader):
    price = last_price("SPY")
    answer = submit(trader, qty="1", type="trailing_stop", trail_percent="10")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert Decimal(body["stop_price"]) == (price * Decimal("1.1")).quantize(Decimal("0.000001"))
    next_bar("SPY", open_=price - 1, high=price - 1, low=price - 20, close=price - 19)
    services.orders_process_bars()
    order = Order.objects.get(pk=body["id"])
    assert order.hwm == price - 20  # the low-water mark, for a buy
    assert order.status == OrderStatus.ACCEPTED


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"order_class": "bracket", "take_profit": {"limit_price": "9999"}}, "stop_loss"),
        ({"order_class": "bracket", "stop_loss": {"stop_price": "1"}}, "take_profit"),
        (
            {
                "order_class": "bracket",
                "take_profit": {"limit_price": "1"},
                "stop_loss": {"stop_price": "0.5"},
            },
            "take_profit.limit_price",
        ),
        (
            {
                "order_class": "bracket",
                "take_profit": {"limit_price": "9999"},
                "stop_loss": {"stop_price": "9000"},
            },
            "stop_loss.stop_price",
        ),
        (
            {
                "order_class": "bracket",
                "take_profit": {"limit_price": "9999"},
                "stop_loss": {"stop_price": "1", "limit_price": "2"},
            },
            "stop_loss.limit_price",
        ),
        (
            {
                "order_class": "oto",
                "take_profit": {"limit_price": "9999"},
                "stop_loss": {"stop_price": "1"},
            },
            "take_profit",
        ),
        ({"order_class": "oto"}, "stop_loss"),
        ({"take_profit": {"limit_price": "9999"}}, "take_profit"),
        (
            {
                "order_class": "oco",
                "take_profit": {"limit_price": "9999"},
                "stop_loss": {"stop_price": "1"},
            },
            "type",
        ),
        ({"type": "trailing_stop"}, "trail_price"),
        ({"type": "trailing_stop", "trail_price": "1", "trail_percent": "1"}, "trail_price"),
        ({"type": "trailing_stop", "trail_percent": "100"}, "trail_percent"),
        ({"type": "trailing_stop", "trail_percent": "0"}, "trail_percent"),
        ({"type": "trailing_stop", "trail_price": "1", "stop_price": "3"}, "stop_price"),
        ({"trail_price": "1"}, "trail_price"),
        (
            {
                "type": "trailing_stop",
                "trail_price": "1",
                "order_class": "oto",
                "stop_loss": {"stop_price": "1"},
            },
            "order_class",
        ),
        ({"order_class": "mleg"}, "order_class"),
        ({"order_class": "bracket", "take_profit": {"price": "1"}}, "take_profit"),
    ],
)
def test_bad_protective_orders_are_a_400_naming_the_field(ready, trader, body, field):
    answer = submit(trader, **body)
    assert answer.status_code == 400, answer.json()
    error = answer.json()["error"]
    named = error["details"].get("field") or next(iter(error["details"]))
    assert named == field or named.startswith(field.split(".")[0]), error
    if "." in field:
        assert named == field
    assert Order.objects.count() == 0


def test_the_service_refuses_what_the_api_refuses(ready):
    with pytest.raises(services.InvalidOrder) as refused:
        services.order_submit(
            symbol="SPY",
            side="sell",
            qty=Decimal("1"),
            order_class="bracket",
            take_profit={"limit_price": Decimal("99999")},
            stop_loss={"stop_price": Decimal("99998")},
        )
    assert refused.value.details["field"] == "take_profit.limit_price"
    assert Order.objects.count() == 0


def test_a_bracket_counts_as_one_open_order_and_legs_are_not_exposure(ready, trader):
    services.session_stop(session=ready, reason="restart with limits")
    services.session_start(risk_limits={"max_open_orders": 2})
    price = last_price("SPY")
    # Two brackets with resting entries: four legs, yet two open orders.
    for offset in (2, 3):
        answer = bracket(trader, price - offset, type="limit", limit_price=str(price - offset))
        assert answer.status_code == 201, answer.json()
    third = bracket(trader, price - 4, type="limit", limit_price=str(price - 4))
    assert third.status_code == 422
    assert third.json()["error"]["code"] == "max_open_orders"


def test_order_event_payload_is_the_serializer_shape_with_legs(ready, trader):
    price = last_price("SPY")
    body = bracket(trader, price).json()
    order = Order.objects.get(pk=body["id"])
    assert selectors.order_payload(order) == OrderSerializer(order).data
    leg = order.legs.first()
    assert selectors.order_payload(leg) == OrderSerializer(leg).data
    assert selectors.order_payload(leg)["legs"] == []


def test_dashboard_snapshot_and_admin_show_legs_under_their_parent(ready, trader, admin_client):
    from streaming.selectors import dashboard_snapshot

    price = last_price("SPY")
    body = bracket(trader, price).json()
    snapshot = dashboard_snapshot()
    # The entry filled, its exits still work: the parent is listed with its legs nested.
    listed = {o["id"]: o for o in snapshot["open_orders"]}
    assert listed[body["id"]]["status"] == "filled"
    assert {leg["leg_role"] for leg in listed[body["id"]]["legs"]} == {"take_profit", "stop_loss"}
    page = admin_client.get(f"/admin/trading/order/{body['id']}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "legs (protective exits)" in text.lower()
    assert "Take Profit" in text and "Stop Loss" in text


def test_a_bracket_queued_for_the_open_goes_out_whole_and_its_legs_never_alone(
    at,  # noqa: F811 - the fixture imported above
    trader,
    settings,
):
    settings.RISK_QUEUE_WHEN_CLOSED = True
    at(2024, 7, 4, 16, 0)
    price = last_price("SPY")
    body = bracket(trader, price).json()
    assert body["status"] == "pending_submit"
    assert {leg["status"] for leg in body["legs"]} == {"pending_submit"}
    services.orders_process_bars()
    services.reconcile()  # reconciliation leaves queued orders and their legs alone
    assert set(Order.objects.values_list("status", flat=True)) == {"pending_submit"}
    assert set(Order.objects.values_list("submit_attempts", flat=True)) == {0}

    at(2024, 7, 5, 13, 35)
    services.orders_process_bars()
    entry = Order.objects.get(pk=body["id"])
    assert entry.status == OrderStatus.FILLED
    assert set(entry.legs.values_list("status", flat=True)) == {"accepted"}
    assert set(entry.legs.values_list("submit_attempts", flat=True)) == {0}
    assert Trade.objects.count() == 1  # the entry's fill only
    services.reconcile()
    assert set(entry.legs.values_list("status", flat=True)) == {"accepted"}


def test_an_exit_never_opens_the_other_side_when_the_position_was_closed_meanwhile(ready, trader):
    price = last_price("SPY")
    body = bracket(trader, price).json()
    assert submit(trader, side="sell", qty="10").status_code == 201  # closed by hand
    next_bar("SPY", open_=price, high=price + 1, low=price - 8, close=price - 7)
    services.orders_process_bars()
    stop = Order.objects.get(parent_id=body["id"], leg_role="stop_loss")
    assert stop.status == OrderStatus.CANCELED and "exceeds the position" in stop.reject_reason
    assert Position.objects.get(symbol="SPY").qty == 0


def test_a_trailing_stop_that_moves_publishes_its_new_mark(ready, trader):
    from unittest import mock

    price = last_price("SPY")
    assert submit(trader, qty="5").status_code == 201
    body = submit(
        trader, side="sell", qty="5", type="trailing_stop", trail_price="2", time_in_force="gtc"
    ).json()
    next_bar("SPY", open_=price + 1, high=price + 6, low=price + 1, close=price + 5)
    with mock.patch("trading.services.fills.publish_many") as published:
        services.orders_process_bars()
    events = [payload for call in published.call_args_list for _kind, payload in call.args[0]]
    moved = [e for e in events if e.get("id") == body["id"]]
    assert moved and Decimal(moved[-1]["hwm"]) == price + 6
    assert Decimal(moved[-1]["stop_price"]) == price + 4


def test_exits_react_to_a_single_price_too(ready, trader):
    """The hook for live quotes: one price is a path; the conservative rule is the same."""
    from django.utils import timezone

    from trading.brokers import get_broker
    from trading.brokers.paper_exits import exits_at_price

    price = last_price("SPY")
    body = bracket(trader, price).json()
    later = timezone.now() + timezone.timedelta(days=3650)
    assert list(exits_at_price(get_broker(), "SPY", price + 1, later)) == []
    (state,) = exits_at_price(get_broker(), "SPY", price + 5, later)
    services.order_record_broker_state(
        order_id=Order.objects.get(client_order_id=state.client_order_id).pk, state=state
    )
    legs = legs_by_role(trader.get(f"/api/v1/orders/{body['id']}").json())
    assert legs["take_profit"]["status"] == "filled"
    assert legs["stop_loss"]["status"] == "canceled"
