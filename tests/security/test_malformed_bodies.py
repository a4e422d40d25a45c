"""Zero 5xx for any request body (issue 14, finding 12).

The audit's 500 malformed order bodies got 27-41 answers of 500 in each of three runs: a body
over the size cap, JSON nested ~500+ deep (RecursionError in json and in the NUL check), and a
lone surrogate in side/type/time_in_force (the 400 message echoed it and rendering it failed).
The barrage here sends several hundred bodies of every such kind to the write endpoints.
"""

from __future__ import annotations

import json
import random

import pytest
from django.test import override_settings

from trading.models import Order

pytestmark = pytest.mark.django_db

ORDER_FIELDS = [
    "symbol",
    "side",
    "qty",
    "type",
    "time_in_force",
    "limit_price",
    "stop_price",
    "client_order_id",
]
WEIRD_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    1.5,
    -0.0,
    1e308,
    -1e308,
    10**30,
    -(10**30),
    2**63,
    "",
    " ",
    "x" * 5000,
    [],
    {},
    [1, 2],
    {"a": 1},
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999999",
    "9" * 5000,
    "0x10",
    "1_000",
    "１",
    "١",
    "٣٫٥",
    "½",
    "²",
    "\ud800",
    "\udfff",
    "a\ud800b",
    "buy\udc80",
    "\u202ebuy",
    "\ufeffbuy",
    "😀",
    "𝟙",
    "BUY",
    "market\u0301",
    "\x00",
    "\x7f",
    "day\u2028",
    "<script>",
    "' OR 1=1 --",
    "%00",
    "../../etc/passwd",
]
RAW_BODIES = [
    b"",
    b"null",
    b"[]",
    b'"a string"',
    b"123",
    b"{",
    b"}",
    b'{"qty": }',
    b"\xff\xfe\xfd",
    b'{"side": "\\ud800"}',
    b'{"side": "\\udfff", "qty": "1", "symbol": "SPY"}',
    b'{"type": "\\ud83d", "side": "buy", "qty": "1", "symbol": "SPY"}',
    b'{"time_in_force": "\\ud800x", "side": "buy", "qty": "1", "symbol": "SPY"}',
    b'{"qty": ' + b"9" * 5000 + b"}",
    b'{"qty": 1e999999}',
    b'{"qty": NaN}',
    b'{"qty": Infinity}',
    b'{"qty": -Infinity}',
    b"[" * 600 + b"]" * 600,
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 800 + b"1" + b"}" * 800,
    b'{"risk_limits":' * 100 + b"{}" + b"}" * 100,
    b'{"a": "\\u0000"}',
    b"\x00",
    b'{"symbol": "SPY", "side": "buy", "qty": "1"' + b', "x": 1' * 50000 + b"}",
]


def _bodies(rng: random.Random) -> list[tuple[bytes, str]]:
    bodies: list[tuple[bytes, str]] = [(raw, "application/json") for raw in RAW_BODIES]
    base = {"symbol": "SPY", "side": "buy", "qty": "1", "type": "market", "time_in_force": "day"}
    for field in ORDER_FIELDS:
        for value in WEIRD_VALUES:
            body = dict(base, **{field: value})
            bodies.append((json.dumps(body).encode(), "application/json"))
    for _ in range(60):
        body = {rng.choice(ORDER_FIELDS): rng.choice(WEIRD_VALUES) for _ in range(4)}
        bodies.append((json.dumps(body).encode(), "application/json"))
    bodies += [
        (b"quantity=%EF%BC%91", "application/x-www-form-urlencoded"),
        (b"quantity=1&" + b"a=1&" * 2000, "application/x-www-form-urlencoded"),
        (b"quantity=%ED%A0%80", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
        (b"qty=1", "text/plain"),
        (b"--x\r\n", "multipart/form-data; boundary=x"),
        (b"x" * (3 * 1024 * 1024), "application/json"),
        (b'{"qty": "' + b"1" * (3 * 1024 * 1024) + b'"}', "application/json"),
    ]
    return bodies


WRITE_URLS = [
    "/api/v1/orders/submit",
    "/api/v1/sessions/start",
    "/api/trade/SPY/buy",
    "/api/v1/websocket/token",
    "/wp-json/tradingrobotplug/v1/orders/submit",
    "/api/v1/stop_trading",
]


@override_settings(API_THROTTLE_RATE="")
def test_several_hundred_malformed_bodies_never_answer_5xx(trader, session, market):
    rng = random.Random(14)
    bodies = _bodies(rng)
    assert len(bodies) > 400
    failures = []
    sent = 0
    for index, (raw, content_type) in enumerate(bodies):
        # Each body goes to the order endpoint, and a share of them to the other writes.
        urls = [WRITE_URLS[0]] + ([rng.choice(WRITE_URLS[1:])] if index % 2 else [])
        for url in urls:
            response = trader.generic("POST", url, raw, content_type=content_type)
            sent += 1
            if response.status_code >= 500:
                failures.append((url, raw[:80], response.status_code))
            else:
                response.json()  # the error shape renders as JSON
    assert sent > 600
    assert failures == []


def test_a_body_over_the_size_cap_is_a_413(trader, session, market):
    big = b'{"qty": "' + b"1" * (3 * 1024 * 1024) + b'"}'
    response = trader.generic("POST", "/api/v1/orders/submit", big, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_a_streamed_body_over_the_cap_is_a_413_too(trader, session, market):
    """No Content-Length (a chunked upload): the parser stops reading at the cap."""
    from io import BytesIO

    from django.test.client import FakePayload

    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        body = b'{"symbol": "SPY", "qty": "' + b"1" * 5000 + b'"}'
        response = trader.generic(
            "POST",
            "/api/v1/orders/submit",
            b"",
            content_type="application/json",
            **{"wsgi.input": FakePayload(BytesIO(body).read()), "CONTENT_LENGTH": ""},
        )
    assert response.status_code in (400, 413)
    assert not Order.objects.exists()


@pytest.mark.parametrize("depth", [40, 600, 5000])
def test_deeply_nested_json_is_a_400(trader, session, depth):
    raw = b'{"risk_limits": ' + b"[" * depth + b"]" * depth + b"}"
    response = trader.generic(
        "POST", "/api/v1/sessions/start", raw, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested" in response.json()["error"]["message"]


@pytest.mark.parametrize("field", ["side", "type", "time_in_force"])
def test_a_lone_surrogate_is_a_400_that_does_not_echo_it(trader, session, market, field):
    body = {"symbol": "SPY", "side": "buy", "qty": "1", field: "\ud800x"}
    raw = json.dumps(body).encode()  # ensure_ascii: the surrogate travels as \ud800
    response = trader.generic("POST", "/api/v1/orders/submit", raw, content_type="application/json")
    assert response.status_code == 400
    assert b"\\ud800" not in response.content.lower()
    assert not Order.objects.exists()


@pytest.mark.parametrize("qty", ["１", "١", "١٠", "𝟙", "1１"])
def test_qty_takes_ascii_digits_only(trader, session, market, qty):
    response = trader.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": qty}, format="json"
    )
    assert response.status_code == 400
    assert "qty" in response.json()["error"]["details"]
    response = trader.post("/api/trade/SPY/buy", {"quantity": qty}, format="json")
    assert response.status_code == 400
    assert not Order.objects.exists()
