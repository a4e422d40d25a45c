"""The Robinhood broker's calls against the fake: mapping of account, positions, orders and
clock; ref_id; cancel; 429 backoff and the persisted cool-down; hostile answers."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.fakes.robinhood_fixtures import fake_robinhood, robinhood_settings  # noqa: F401
from trading.brokers import broker_health, get_broker
from trading.brokers.base import BrokerError, OrderRequest
from trading.brokers.robinhood_orders import REF_NAMESPACE, map_state, ref_id_for
from trading.models import RobinhoodLogin

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(robinhood_settings):  # noqa: F811
    return robinhood_settings


def request(client_order_id="c-1", **overrides) -> OrderRequest:
    fields = {"symbol": "SPY", "side": "buy", "type": "market", "qty": Decimal("2")}
    return OrderRequest(client_order_id=client_order_id, **{**fields, **overrides})


def test_ref_id_is_the_stable_uuid5_of_our_client_order_id():
    assert ref_id_for("trp-abc") == str(uuid.uuid5(REF_NAMESPACE, "trp-abc"))
    assert ref_id_for("trp-abc") == ref_id_for("trp-abc") != ref_id_for("trp-abd")


def test_account_and_positions_map_from_robinhood_fields(fake):
    fake.add_position("AAPL", "3.50000000", "150.2500")
    broker = get_broker()

    account = broker.account()
    [position] = broker.positions()

    assert account.cash == account.buying_power == Decimal("10000")
    assert account.equity == Decimal("10000") + Decimal("3.5") * Decimal("200.00")
    assert account.status == "ACTIVE"
    # Robinhood's positions name no symbol: the adapter reads it from the instrument.
    assert (position.symbol, position.qty, position.avg_entry_price) == (
        "AAPL",
        Decimal("3.5"),
        Decimal("150.25"),
    )
    assert fake.violations == []


def test_market_buy_is_sent_as_robin_stocks_sends_it_with_our_ref_id(fake):
    order = get_broker().submit(request("trp-123"))

    [post] = fake.requests_to("POST", "/orders/")
    form = post.body
    assert form["ref_id"] == ref_id_for("trp-123")
    # robin-stocks: a regular-hours market buy is a limit at the ask with a 5% collar.
    assert (form["type"], form["preset_percent_limit"], form["price"]) == (
        "limit",
        "0.05",
        "100.00",
    )
    assert (form["trigger"], form["time_in_force"], form["side"]) == ("immediate", "gfd", "buy")
    assert form["instrument"] == fake.instrument_url("SPY") and form["quantity"] == "2"
    assert (order.status, order.type, order.client_order_id) == ("accepted", "market", "trp-123")
    assert order.broker_order_id == fake.order_by_ref(ref_id_for("trp-123"))["id"]
    assert fake.violations == []


@pytest.mark.parametrize(
    ("ours", "expected"),
    [
        ({"type": "limit", "limit_price": Decimal("99.5")}, {"type": "limit", "price": "99.5"}),
        (
            {"type": "stop", "side": "sell", "stop_price": Decimal("90")},
            {"type": "market", "trigger": "stop", "stop_price": "90"},
        ),
        (
            {"type": "stop_limit", "limit_price": Decimal("101"), "stop_price": Decimal("100")},
            {"type": "limit", "trigger": "stop", "price": "101", "stop_price": "100"},
        ),
        ({"side": "sell", "time_in_force": "gtc"}, {"type": "market", "time_in_force": "gtc"}),
    ],
)
def test_order_types_map_to_robinhood_payloads_and_back(fake, ours, expected):
    order = get_broker().submit(request(**ours))

    form = fake.requests_to("POST", "/orders/")[0].body
    assert {key: form.get(key) for key in expected} == expected
    if ours.get("side") == "sell" and ours.get("type", "market") == "market":
        assert "price" not in form  # robin-stocks drops the price of a market sell
    assert order.type == ours.get("type", "market")


def test_same_client_order_id_twice_is_one_order_at_robinhood(fake):
    broker = get_broker()
    first = broker.submit(request("dup-1"))
    second = broker.submit(request("dup-1"))

    assert first.broker_order_id == second.broker_order_id
    assert len(fake.orders) == 1 and fake.duplicate_posts == 1


def test_lookup_by_client_order_id_after_a_lost_answer(fake):
    broker = get_broker()
    fake.lose_response_next("POST", "/orders/")
    with pytest.raises(BrokerError) as caught:
        broker.submit(request("lost-1"))
    assert not caught.value.permanent and caught.value.code == "broker_unavailable"
    assert len(fake.orders) == 1  # it did arrive

    found = broker.order_by_client_id("lost-1")

    assert found.broker_order_id == next(iter(fake.orders))
    assert found.client_order_id == "lost-1"
    assert broker.order_by_client_id("never-sent") is None


@pytest.mark.parametrize(
    ("state", "filled", "ours"),
    [
        ("queued", "0", "accepted"),
        ("unconfirmed", "0", "accepted"),
        ("confirmed", "0", "new"),
        ("confirmed", "1", "partially_filled"),
        ("partially_filled", "1", "partially_filled"),
        ("filled", "2", "filled"),
        ("cancelled", "0", "canceled"),
        ("cancelled", "1", "canceled"),
        ("rejected", "0", "rejected"),
        ("failed", "0", "rejected"),
        ("voided", "0", "rejected"),
        ("some_new_state", "0", "new"),
    ],
)
def test_state_mapping(state, filled, ours):
    assert map_state(state, filled_qty=Decimal(filled)) == ours


def test_fills_come_from_executions_and_open_orders_from_the_listing(fake):
    broker = get_broker()
    placed = broker.submit(request("fill-1"))
    other = broker.submit(request("rest-1", type="limit", limit_price=Decimal("50")))
    fake.set_state(placed.broker_order_id, "filled", fill_price="100.25")
    fake.set_state(other.broker_order_id, "confirmed")

    filled = broker.order_by_client_id("fill-1")
    [open_order] = broker.open_orders()

    assert (filled.status, filled.filled_qty, filled.filled_avg_price) == (
        "filled",
        Decimal("2"),
        Decimal("100.25"),
    )
    [fill] = filled.fills
    assert (fill.qty, fill.price) == (Decimal("2"), Decimal("100.25"))
    assert (open_order.client_order_id, open_order.status) == ("rest-1", "new")


def test_orders_placed_in_the_app_are_listed_under_their_ref_id(fake):
    broker = get_broker()
    broker.submit(request("ours-1"))
    fake.orders[next(iter(fake.orders))]["ref_id"] = ref = str(uuid.uuid4())  # as if elsewhere

    [listed] = broker.open_orders()

    assert listed.client_order_id == f"rh-{ref}" and listed.symbol == "SPY"


def test_listing_follows_pages(fake):
    fake.page_size = 2
    broker = get_broker()
    for n in range(5):
        broker.submit(request(f"page-{n}", qty=Decimal("1")))

    assert {o.client_order_id for o in broker.open_orders()} == {f"page-{n}" for n in range(5)}
    assert len(fake.requests_to("GET", "/orders/")) == 3


def test_next_link_to_another_origin_is_not_followed(fake):
    broker = get_broker()
    broker.account()
    fake.raw_next("GET", "/orders/", b'{"next": "https://evil.example/orders/?c=2", "results": []}')
    with pytest.raises(BrokerError) as caught:
        broker.open_orders()
    assert caught.value.code == "broker_bad_response" and not caught.value.permanent


def test_cancel_and_cancel_refused(fake):
    broker = get_broker()
    placed = broker.submit(request("cancel-1", type="limit", limit_price=Decimal("50")))

    broker.cancel(placed.broker_order_id)

    assert fake.orders[placed.broker_order_id]["state"] == "cancelled"
    assert broker.order_by_client_id("cancel-1").status == "canceled"
    with pytest.raises(BrokerError) as caught:
        broker.cancel(placed.broker_order_id)
    assert caught.value.permanent and caught.value.code == "order_not_cancelable"


def test_refusals_are_permanent_errors(fake):
    broker = get_broker()
    with pytest.raises(BrokerError) as caught:
        broker.submit(request(symbol="NOPE"))
    assert caught.value.permanent and "unknown symbol" in caught.value.message

    with pytest.raises(BrokerError) as caught:
        broker.submit(request(qty=Decimal("1000")))
    assert caught.value.permanent and caught.value.code == "insufficient_buying_power"
    assert fake.orders == {}


def test_clock_from_market_hours(fake):
    clock = get_broker()._run(get_broker().get_clock)
    now = timezone.now()

    assert clock.next_open > now and clock.next_close > now
    assert clock.next_close.astimezone(UTC).hour in (20, 21)  # 16:00 New York
    weekday = datetime.now(UTC).weekday() < 5
    assert clock.is_open == (
        weekday and clock.next_open > clock.next_close  # open now: the close comes first
    )


def test_quote(fake):
    quote = get_broker()._run(get_broker().get_quote, "AAPL")
    assert quote["ask_price"] == "200.00"


# --- rate limits ------------------------------------------------------------------------------


def test_short_retry_after_is_waited_out_once(fake):
    broker = get_broker()
    broker.account()
    fake.fail_next("GET", "/positions/", status=429, headers={"Retry-After": "1"})

    started = time.monotonic()
    assert broker.positions() == []

    assert time.monotonic() - started >= 1.0
    assert [r.status for r in fake.requests_to("GET", "/positions/")] == [429, 200]


def test_long_retry_after_starts_a_cool_down_that_survives_a_restart(fake, reader):
    broker = get_broker()
    broker.account()
    fake.fail_next("GET", "/positions/", status=429, headers={"Retry-After": "600"})

    with pytest.raises(BrokerError) as caught:
        broker.positions()
    assert caught.value.code == "rate_limited" and not caught.value.permanent
    row = RobinhoodLogin.objects.get()
    assert 590 <= (row.cooldown_until - timezone.now()).total_seconds() <= 600

    # A new broker (a restarted worker) makes no call until the cool-down is over.
    before = len(fake.requests)
    with pytest.raises(BrokerError) as caught:
        get_broker().account()
    assert caught.value.code == "rate_limited" and len(fake.requests) == before
    assert broker_health()["state"] == "rate_limited"
    assert reader.get("/api/v1/health").json()["broker_state"]["cooldown_until"]

    RobinhoodLogin.objects.update(cooldown_until=timezone.now())
    assert get_broker().positions() == []
    assert broker_health()["ok"] is True
    assert RobinhoodLogin.objects.get().rate_limit_strikes == 0


def test_repeated_429s_without_retry_after_double_the_cool_down(fake, settings):
    settings.ROBINHOOD_COOLDOWN_SECONDS = 60
    broker = get_broker()
    broker.account()
    lengths = []
    for _ in range(3):
        fake.fail_next("GET", "/positions/", status=429)
        with pytest.raises(BrokerError):
            broker.positions()
        row = RobinhoodLogin.objects.get()
        lengths.append(round((row.cooldown_until - timezone.now()).total_seconds() / 60))
        RobinhoodLogin.objects.update(cooldown_until=None)
    assert lengths == [1, 2, 4]


def test_calls_are_paced(fake, settings):
    settings.ROBINHOOD_MIN_INTERVAL_SECONDS = 0.25
    broker = get_broker()
    broker.account()  # login, accounts, portfolio
    started = time.monotonic()
    for _ in range(4):
        broker.positions()
    assert time.monotonic() - started >= 0.75
    gaps = [
        (b.at - a.at).total_seconds()
        for a, b in zip(fake.requests[-4:-1], fake.requests[-3:], strict=True)
    ]
    assert min(gaps) >= 0.2


# --- hostile answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 200, "broker_bad_response"),
        (b"<html>bad gateway</html>", 502, "broker_bad_response"),
        (b'{"detail": "down"}', 503, "broker_unavailable"),
        (b'["a list"]', 200, "broker_bad_response"),
        (b'{"results": "not a list"}', 200, "broker_bad_response"),
    ],
)
def test_malformed_answers_are_temporary_errors(fake, body, status, code):
    broker = get_broker()
    broker.account()
    fake.raw_next("GET", "/positions/", body, status=status)

    with pytest.raises(BrokerError) as caught:
        broker.positions()

    assert caught.value.code == code and not caught.value.permanent


def test_huge_answer_is_cut_off_as_a_temporary_error(fake, settings):
    settings.OUTBOUND_HTTP_MAX_BYTES = 64 * 1024
    broker = get_broker()
    broker.account()
    fake.raw_next("GET", "/positions/", b'{"results": [' + b'{"a": 1},' * 200_000 + b"{}]}")

    with pytest.raises(BrokerError) as caught:
        broker.positions()

    assert caught.value.code == "broker_unavailable" and "cap" in caught.value.message


def test_hanging_server_times_out(fake, settings):
    settings.ROBINHOOD_TIMEOUT_SECONDS = 0.5
    broker = get_broker()
    broker.account()
    fake.delay_next("GET", "/positions/", 3)
    started = time.monotonic()
    with pytest.raises(BrokerError) as caught:
        broker.positions()
    assert caught.value.code == "broker_unavailable" and not caught.value.permanent
    assert time.monotonic() - started < 2
