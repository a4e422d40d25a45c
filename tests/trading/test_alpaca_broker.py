"""AlpacaBroker against the spec-driven fake Alpaca on 127.0.0.1 (alpaca-py is not mocked)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.fakes.alpaca_fixtures import fake_alpaca  # noqa: F401
from tests.fakes.alpaca_server import API_KEY, SECRET_KEY, FakeAlpaca
from trading.brokers.alpaca import ALPACA_STATUS_MAP, AlpacaBroker
from trading.brokers.base import BrokerError, OrderRequest

OUR_STATUSES = {
    "pending_submit",
    "held",
    "new",
    "accepted",
    "partially_filled",
    "filled",
    "canceled",
    "expired",
    "rejected",
}


def run(coro):
    return asyncio.run(coro)


def make_broker(fake: FakeAlpaca, **kwargs) -> AlpacaBroker:
    options = {"timeout": 2.0, "rate_limit_backoff": 0.01} | kwargs
    return AlpacaBroker(
        api_key=API_KEY,
        secret_key=SECRET_KEY,
        paper=True,
        url_override=fake.trading_url,
        **options,
    )


def limit_buy(client_order_id: str = "cid-1", **overrides) -> OrderRequest:
    values = {
        "client_order_id": client_order_id,
        "symbol": "AAPL",
        "side": "buy",
        "type": "limit",
        "qty": Decimal("2"),
        "limit_price": Decimal("150.25"),
        "time_in_force": "day",
    }
    return OrderRequest(**(values | overrides))


@pytest.fixture
def broker(fake_alpaca: FakeAlpaca) -> AlpacaBroker:  # noqa: F811
    return make_broker(fake_alpaca)


# -- reads ---------------------------------------------------------------------------------


def test_account_maps_to_decimals(fake_alpaca, broker):  # noqa: F811
    fake_alpaca.set_account(cash="1234.56", buying_power="2469.12", equity="5000.01")

    account = run(broker.get_account())

    assert account.cash == Decimal("1234.56")
    assert account.buying_power == Decimal("2469.12")
    assert account.equity == Decimal("5000.01")
    assert account.currency == "USD"
    assert account.status == "ACTIVE"
    assert fake_alpaca.violations == []


def test_requests_carry_alpaca_auth_headers(fake_alpaca, broker):  # noqa: F811
    run(broker.initialize())

    (request,) = fake_alpaca.requests_to("GET", "/v2/account")
    assert request.headers["apca-api-key-id"] == API_KEY
    assert request.headers["apca-api-secret-key"] == SECRET_KEY


def test_wrong_keys_are_a_permanent_auth_error(fake_alpaca):  # noqa: F811
    broker = AlpacaBroker(
        api_key="nope", secret_key="nope", paper=True, url_override=fake_alpaca.trading_url
    )

    with pytest.raises(BrokerError) as info:
        run(broker.initialize())

    assert info.value.permanent is True
    assert info.value.code == "broker_auth_error"


def test_positions_map_long_and_short(fake_alpaca, broker):  # noqa: F811
    fake_alpaca.set_position("AAPL", qty="5", avg_entry_price="100", current_price="120")
    fake_alpaca.set_position("TSLA", qty="-3", avg_entry_price="250.5", current_price="240")

    positions = {p.symbol: p for p in run(broker.get_positions())}

    assert positions["AAPL"].qty == Decimal("5")
    assert positions["AAPL"].avg_entry_price == Decimal("100")
    assert positions["AAPL"].market_value == Decimal("600")
    assert positions["AAPL"].unrealized_pl == Decimal("100")
    assert positions["TSLA"].qty == Decimal("-3")
    assert positions["TSLA"].avg_entry_price == Decimal("250.5")
    assert fake_alpaca.violations == []


def test_clock_is_utc(fake_alpaca, broker):  # noqa: F811
    clock = run(broker.get_clock())

    assert clock.is_open is True
    assert clock.timestamp == datetime(2024, 1, 2, 15, 15, tzinfo=UTC)
    assert clock.timestamp.utcoffset().total_seconds() == 0
    assert clock.next_open == datetime(2024, 1, 3, 14, 30, tzinfo=UTC)
    assert clock.next_close == datetime(2024, 1, 2, 21, 0, tzinfo=UTC)
    assert fake_alpaca.violations == []


# -- submit --------------------------------------------------------------------------------


def test_submit_sends_our_client_order_id_and_a_spec_valid_body(fake_alpaca, broker):  # noqa: F811
    order = run(broker.submit_order(limit_buy("cid-submit")))

    (request,) = fake_alpaca.requests_to("POST", "/v2/orders")
    assert request.json["client_order_id"] == "cid-submit"
    assert request.json["symbol"] == "AAPL"
    assert request.json["side"] == "buy"
    assert request.json["type"] == "limit"
    assert request.json["time_in_force"] == "day"
    assert Decimal(str(request.json["qty"])) == Decimal("2")
    assert Decimal(str(request.json["limit_price"])) == Decimal("150.25")
    assert fake_alpaca.violations == []
    # alpaca-py sends numbers where the spec says string: tolerated, and noticed.
    assert any("limit_price sent as number" in q for q in fake_alpaca.quirks)

    assert order.client_order_id == "cid-submit"
    assert order.broker_order_id == fake_alpaca.order_by_client_id("cid-submit")["id"]
    assert order.status == "accepted"
    assert order.qty == Decimal("2")
    assert order.limit_price == Decimal("150.25")
    assert order.filled_qty == Decimal("0")
    assert order.fills == []
    assert order.submitted_at is not None


@pytest.mark.parametrize(
    "overrides",
    [
        {"type": "market", "limit_price": None},
        {"type": "stop", "limit_price": None, "stop_price": Decimal("140")},
        {"type": "stop_limit", "stop_price": Decimal("149"), "side": "sell"},
        {"time_in_force": "gtc", "qty": Decimal("0.5"), "type": "market", "limit_price": None},
    ],
)
def test_every_order_type_validates_against_the_spec(fake_alpaca, broker, overrides):  # noqa: F811
    order = run(broker.submit_order(limit_buy("cid-type", **overrides)))

    assert order.type == overrides.get("type", "limit")
    assert order.status == "accepted"
    assert fake_alpaca.violations == []


def test_insufficient_buying_power_is_permanent(fake_alpaca, broker):  # noqa: F811
    fake_alpaca.set_account(buying_power="100")

    with pytest.raises(BrokerError) as info:
        run(broker.submit_order(limit_buy()))

    assert info.value.permanent is True
    assert info.value.code == "insufficient_buying_power"
    assert fake_alpaca.orders == {}


def test_injected_403_maps_to_insufficient_buying_power(fake_alpaca, broker):  # noqa: F811
    fake_alpaca.fail_next("POST", "/v2/orders", status=403)

    with pytest.raises(BrokerError) as info:
        run(broker.submit_order(limit_buy()))

    assert (info.value.permanent, info.value.code) == (True, "insufficient_buying_power")


def test_422_passes_alpacas_message_through(fake_alpaca, broker):  # noqa: F811
    fake_alpaca.fail_next(
        "POST",
        "/v2/orders",
        status=422,
        body={"code": 40010001, "message": "qty must be integer for this asset"},
    )

    with pytest.raises(BrokerError) as info:
        run(broker.submit_order(limit_buy()))

    assert info.value.permanent is True
    assert info.value.code == "broker_validation_error"
    assert info.value.message == "qty must be integer for this asset"


def test_duplicate_client_order_id_is_refused_not_duplicated(fake_alpaca, broker):  # noqa: F811
    run(broker.submit_order(limit_buy("cid-dup")))

    with pytest.raises(BrokerError) as info:
        run(broker.submit_order(limit_buy("cid-dup")))

    assert info.value.code == "broker_validation_error"
    assert "client_order_id" in info.value.message
    assert len(fake_alpaca.orders) == 1


def test_rate_limit_is_retried_with_backoff_then_succeeds(fake_alpaca, broker):  # noqa: F811
    fake_alpaca.fail_next("POST", "/v2/orders", status=429, times=2)

    order = run(broker.submit_order(limit_buy("cid-429")))

    assert order.client_order_id == "cid-429"
    assert [r.status for r in fake_alpaca.requests_to("POST", "/v2/orders")] == [429, 429, 200]
    assert len(fake_alpaca.orders) == 1


def test_rate_limit_that_persists_is_a_temporary_error(fake_alpaca, broker):  # noqa: F811
    fake_alpaca.fail_next("POST", "/v2/orders", status=429, times=5)

    with pytest.raises(BrokerError) as info:
        run(broker.submit_order(limit_buy()))

    assert (info.value.permanent, info.value.code) == (False, "rate_limited")
    assert len(fake_alpaca.requests_to("POST", "/v2/orders")) == 3  # bounded
    assert fake_alpaca.orders == {}


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_temporary_and_never_retried_for_submit(
    fake_alpaca,  # noqa: F811
    broker,
    status,
):
    fake_alpaca.fail_next("POST", "/v2/orders", status=status)

    with pytest.raises(BrokerError) as info:
        run(broker.submit_order(limit_buy()))

    assert (info.value.permanent, info.value.code) == (False, "broker_unavailable")
    # alpaca-py's own retry (3 tries on 429/504) is off: exactly one POST.
    assert len(fake_alpaca.requests_to("POST", "/v2/orders")) == 1


def test_timeout_is_temporary(fake_alpaca):  # noqa: F811
    broker = make_broker(fake_alpaca, timeout=0.3)
    fake_alpaca.delay_next("GET", "/v2/account", 2.0)

    with pytest.raises(BrokerError) as info:
        run(broker.get_account())

    assert (info.value.permanent, info.value.code) == (False, "broker_unavailable")


def test_connection_refused_is_temporary():
    fake = FakeAlpaca()
    broker = make_broker(fake)
    fake.stop()

    with pytest.raises(BrokerError) as info:
        run(broker.get_account())

    assert (info.value.permanent, info.value.code) == (False, "broker_unavailable")


@pytest.mark.parametrize(
    ("lose", "timeout"),
    [
        ({"status": 504}, 2.0),
        ({"status": 500}, 2.0),
        ({"status": None}, 2.0),  # connection dropped after the order was created
        ({"status": 504, "delay": 1.5}, 0.3),  # the client times out first
    ],
)
def test_lost_response_is_recovered_by_client_order_id(fake_alpaca, lose, timeout):  # noqa: F811
    broker = make_broker(fake_alpaca, timeout=timeout)
    fake_alpaca.lose_response_next("POST", "/v2/orders", **lose)

    with pytest.raises(BrokerError) as info:
        run(broker.submit_order(limit_buy("cid-lost")))
    assert info.value.permanent is False

    # The order exists at the broker although the caller never heard back.
    found = run(broker.get_order_by_client_id("cid-lost"))
    assert found is not None
    assert found.client_order_id == "cid-lost"
    assert found.status == "accepted"
    assert len(fake_alpaca.orders) == 1
    assert len(fake_alpaca.requests_to("POST", "/v2/orders")) == 1  # nothing was resent
    assert fake_alpaca.violations == []


def test_get_order_by_client_id_returns_none_when_unknown(fake_alpaca, broker):  # noqa: F811
    assert run(broker.get_order_by_client_id("never-sent")) is None
    (request,) = fake_alpaca.requests_to("GET", "/v2/orders:by_client_order_id")
    assert request.query == {"client_order_id": "never-sent"}
    assert fake_alpaca.violations == []


def test_get_order_by_client_id_server_error_is_not_none(fake_alpaca, broker):  # noqa: F811
    fake_alpaca.fail_next("GET", "/v2/orders:by_client_order_id", status=503)

    with pytest.raises(BrokerError) as info:
        run(broker.get_order_by_client_id("cid"))

    assert info.value.permanent is False


# -- status mapping and fills --------------------------------------------------------------


@pytest.mark.parametrize(
    ("alpaca_status", "filled_qty", "expected"),
    [
        ("new", None, "new"),
        ("accepted", None, "accepted"),
        ("pending_new", None, "accepted"),
        ("accepted_for_bidding", None, "accepted"),
        ("partially_filled", "1", "partially_filled"),
        ("filled", "2", "filled"),
        ("done_for_day", None, "new"),
        ("done_for_day", "1", "partially_filled"),
        ("canceled", None, "canceled"),
        ("expired", None, "expired"),
        ("replaced", None, "canceled"),
        ("pending_cancel", None, "new"),
        ("pending_cancel", "1", "partially_filled"),
        ("pending_replace", None, "new"),
        ("stopped", None, "new"),
        ("rejected", None, "rejected"),
        ("suspended", None, "accepted"),
        ("calculated", "2", "filled"),
        ("calculated", "1", "partially_filled"),
        ("held", None, "held"),
    ],
)
def test_status_mapping(fake_alpaca, broker, alpaca_status, filled_qty, expected):  # noqa: F811
    run(broker.submit_order(limit_buy("cid-status")))
    fake_alpaca.set_order_status(
        "cid-status",
        alpaca_status,
        filled_qty=filled_qty,
        filled_avg_price="150.10" if filled_qty else None,
    )

    order = run(broker.get_order_by_client_id("cid-status"))

    assert order.status == expected
    assert fake_alpaca.violations == []


def test_every_spec_status_is_mapped_to_one_of_ours(fake_alpaca):  # noqa: F811
    spec_statuses = fake_alpaca.trading_spec.raw["components"]["schemas"]["OrderStatus"]["enum"]
    assert set(spec_statuses) <= set(ALPACA_STATUS_MAP)
    for status in spec_statuses:
        from trading.brokers.alpaca import map_status

        for filled in (Decimal("0"), Decimal("1"), Decimal("2")):
            assert map_status(status, filled_qty=filled, qty=Decimal("2")) in OUR_STATUSES


def test_unknown_future_status_is_treated_as_live():
    from trading.brokers.alpaca import map_status

    assert map_status("brand_new_state", filled_qty=Decimal("0"), qty=Decimal("2")) == "new"


def test_fill_is_reported_from_filled_qty_and_avg_price(fake_alpaca, broker):  # noqa: F811
    run(broker.submit_order(limit_buy("cid-fill", qty=Decimal("10"))))
    fake_alpaca.set_order_status(
        "cid-fill", "partially_filled", filled_qty="4", filled_avg_price="150.125"
    )

    partial = run(broker.get_order_by_client_id("cid-fill"))
    (fill,) = partial.fills
    assert (fill.qty, fill.price, fill.fee) == (Decimal("4"), Decimal("150.125"), Decimal("0"))
    assert fill.executed_at.tzinfo is not None

    fake_alpaca.set_order_status("cid-fill", "filled", filled_qty="10", filled_avg_price="150.2")
    done = run(broker.get_order_by_client_id("cid-fill"))
    assert done.status == "filled"
    assert done.filled_qty == Decimal("10")
    assert done.filled_avg_price == Decimal("150.2")
    (fill,) = done.fills
    assert fill.qty == Decimal("10")
    assert fill.broker_trade_id != partial.fills[0].broker_trade_id


# -- lists and cancel ----------------------------------------------------------------------


def test_get_orders_filters_open_and_closed(fake_alpaca, broker):  # noqa: F811
    run(broker.submit_order(limit_buy("cid-open")))
    run(broker.submit_order(limit_buy("cid-done")))
    fake_alpaca.set_order_status("cid-done", "filled", filled_avg_price="150")

    open_ids = {o.client_order_id for o in run(broker.get_orders(status="open"))}
    closed_ids = {o.client_order_id for o in run(broker.get_orders(status="closed"))}
    all_ids = {o.client_order_id for o in run(broker.get_orders(status="all"))}

    assert open_ids == {"cid-open"}
    assert closed_ids == {"cid-done"}
    assert all_ids == {"cid-open", "cid-done"}
    assert fake_alpaca.violations == []


def test_get_orders_rejects_unknown_filter(broker):
    with pytest.raises(ValueError):
        run(broker.get_orders(status="filled"))


def test_cancel(fake_alpaca, broker):  # noqa: F811
    order = run(broker.submit_order(limit_buy("cid-cancel")))

    run(broker.cancel_order(order.broker_order_id))

    assert fake_alpaca.orders[order.broker_order_id]["status"] == "canceled"
    again = run(broker.get_order_by_client_id("cid-cancel"))
    assert again.status == "canceled"
    assert fake_alpaca.violations == []


def test_cancel_of_a_filled_order_is_permanent(fake_alpaca, broker):  # noqa: F811
    order = run(broker.submit_order(limit_buy("cid-filled")))
    fake_alpaca.set_order_status("cid-filled", "filled", filled_avg_price="150")

    with pytest.raises(BrokerError) as info:
        run(broker.cancel_order(order.broker_order_id))

    assert (info.value.permanent, info.value.code) == (True, "order_not_cancelable")


def test_cancel_of_an_unknown_order_is_permanent(fake_alpaca, broker):  # noqa: F811
    with pytest.raises(BrokerError) as info:
        run(broker.cancel_order("5b1c2f3e-0000-4000-8000-000000000000"))

    assert (info.value.permanent, info.value.code) == (True, "order_not_found")


# -- the fake itself -----------------------------------------------------------------------


def test_fake_reports_requests_that_break_the_spec(fake_alpaca):  # noqa: F811
    import requests

    headers = {"APCA-API-KEY-ID": API_KEY, "APCA-API-SECRET-KEY": SECRET_KEY}
    bad = requests.post(
        f"{fake_alpaca.trading_url}/v2/orders",
        json={"symbol": "AAPL", "qty": "1", "side": "sideways", "type": "market"},
        headers=headers,
        timeout=5,
    )
    missing = requests.get(
        f"{fake_alpaca.trading_url}/v2/orders:by_client_order_id", headers=headers, timeout=5
    )
    unknown = requests.get(f"{fake_alpaca.trading_url}/v2/nothing", headers=headers, timeout=5)

    assert bad.status_code == 422
    assert missing.status_code == 422
    assert unknown.status_code == 404
    text = "\n".join(fake_alpaca.violations)
    assert "'time_in_force' is a required property" in text
    assert "'sideways' is not one of" in text
    assert "missing required query parameter 'client_order_id'" in text
    assert "unknown path GET /v2/nothing" in text
    assert fake_alpaca.orders == {}


def test_fake_catches_response_drift(fake_alpaca, broker):  # noqa: F811
    order = run(broker.submit_order(limit_buy("cid-drift")))
    fake_alpaca.orders[order.broker_order_id]["time_in_force"] = "forever"  # not in the enum

    run(broker.get_order_by_client_id("cid-drift"))

    assert any("'forever' is not one of" in v for v in fake_alpaca.violations)


# -- configuration -------------------------------------------------------------------------


def test_defaults_come_from_settings(fake_alpaca, settings):  # noqa: F811
    settings.ALPACA_API_KEY = API_KEY
    settings.ALPACA_SECRET_KEY = SECRET_KEY
    settings.ALPACA_PAPER = True
    settings.ALPACA_URL_OVERRIDE = fake_alpaca.trading_url

    account = run(AlpacaBroker().get_account())

    assert account.currency == "USD"


def test_missing_keys_fail_at_start_up_naming_the_setting(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.ALPACA_API_KEY = ""
    settings.ALPACA_SECRET_KEY = ""

    with pytest.raises(ImproperlyConfigured, match="ALPACA_API_KEY"):
        AlpacaBroker()
