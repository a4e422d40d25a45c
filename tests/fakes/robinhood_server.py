"""A local stand-in for the Robinhood endpoints the experimental broker calls, on 127.0.0.1.

It answers in the shapes robin-stocks 3.4 reads (robin_stocks/robinhood/authentication.py,
helper.py, orders.py, account.py, profiles.py, stocks.py, markets.py): paginated
`{"next", "results"}` listings, the login's `access_token`/`verification_workflow`, the
pathfinder inquiry's `sheriff_challenge`, orders with `ref_id`, `state`, `cumulative_quantity`,
`average_price` and `executions`. It checks what the adapter sends: the form or JSON body of
each POST, the OAuth client id, the TOTP `mfa_code` (with pyotp), the bearer token on every
other call, and that each order's `ref_id` is a UUID. Problems go to `fake.violations`.

Like Robinhood, an order POSTed again with a `ref_id` it already has is not created twice: the
existing order is answered (`fake.duplicate_posts` counts them).

Fault injection (matched on method and path prefix, `times` requests):

* `fail_next(method, path, status, body=None, headers=None, times=1)`: answer an error, do nothing;
* `raw_next(method, path, body: bytes, status=200, headers=None)`: answer these exact bytes;
* `delay_next(method, path, seconds)`: sleep first, then answer normally;
* `lose_response_next(method, path)`: process the request (the order *is* created), then drop
  the connection without an answer.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from tests.fakes.robinhood_login import FakeLogin

ACCOUNT_NUMBER = "5QR12345"
NEW_YORK = ZoneInfo("America/New_York")
OPEN_STATES = {"queued", "unconfirmed", "confirmed", "partially_filled"}


@dataclass
class Rule:
    method: str
    path: str
    times: int
    status: int | None = 500
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    lose: bool = False
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    body: dict
    status: int | None
    at: datetime


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeRobinhood(FakeLogin):
    def __init__(self, *, page_size: int = 100) -> None:
        self.lock = threading.Lock()
        self.page_size = page_size
        self.rules: list[Rule] = []
        self.requests: list[Seen] = []
        self.violations: list[str] = []
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.approved_devices: set[str] = set()
        self.require_approval = False
        self.challenge_type = "prompt"
        self.machines: dict[str, dict] = {}  # machine id -> {"workflow", "device", "challenge"}
        self.challenges: dict[str, dict] = {}  # challenge id -> {"type", "status", "code"}
        self.buying_power = Decimal("10000")
        self.orders: dict[str, dict] = {}  # id -> order
        self.duplicate_posts = 0
        self.instruments: dict[str, dict] = {}
        self.quotes: dict[str, dict] = {}
        self.positions: list[dict] = []
        for symbol, price in (("SPY", "100.00"), ("AAPL", "200.00"), ("QQQ", "300.00")):
            self.add_instrument(symbol, price)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- test controls ------------------------------------------------------------------------

    def add_instrument(self, symbol: str, price: str, *, tradeable: bool = True) -> None:
        instrument_id = str(uuid.uuid4())
        self.instruments[symbol] = {
            "id": instrument_id,
            "url": f"{{base}}/instruments/{instrument_id}/",
            "symbol": symbol,
            "tradeable": tradeable,
            "tradability": "tradable" if tradeable else "untradable",
            "state": "active",
        }
        bid = Decimal(price) - Decimal("0.01")
        self.quotes[symbol] = {
            "symbol": symbol,
            "ask_price": price,
            "bid_price": str(bid),
            "last_trade_price": price,
            "instrument": self.instruments[symbol]["url"],
            "updated_at": _now(),
        }

    def instrument_url(self, symbol: str) -> str:
        return self.instruments[symbol]["url"].replace("{base}", self.url)

    def add_position(self, symbol: str, quantity: str, average_buy_price: str) -> None:
        self.positions.append(
            {
                "url": f"{self.url}/positions/{ACCOUNT_NUMBER}/{self.instruments[symbol]['id']}/",
                "instrument": self.instrument_url(symbol),
                "account": f"{self.url}/accounts/{ACCOUNT_NUMBER}/",
                "account_number": ACCOUNT_NUMBER,
                "average_buy_price": average_buy_price,
                "quantity": quantity,
                "updated_at": _now(),
                "created_at": _now(),
            }
        )

    def fail_next(self, method, path, status=500, body=None, headers=None, times=1) -> None:
        raw = json.dumps(body if body is not None else {"detail": f"error {status}"}).encode()
        self.rules.append(Rule(method, path, times, status, raw, headers or {}))

    def raw_next(self, method, path, body: bytes, status=200, headers=None, times=1) -> None:
        self.rules.append(Rule(method, path, times, status, body, headers or {}))

    def delay_next(self, method, path, seconds: float, times=1) -> None:
        """Sleep before answering (the request is processed afterwards, like a slow server)."""
        self.rules.append(Rule(method, path, times, None, delay=seconds))

    def lose_response_next(self, method, path, times=1) -> None:
        self.rules.append(Rule(method, path, times, None, lose=True))

    def order_by_ref(self, ref_id: str) -> dict | None:
        return next((o for o in self.orders.values() if o["ref_id"] == ref_id), None)

    def set_state(self, order_id: str, state: str, *, fill_price: str | None = None) -> None:
        order = self.orders[order_id]
        order["state"], order["updated_at"] = state, _now()
        if fill_price is not None:
            qty = Decimal(order["quantity"])
            filled = qty if state == "filled" else qty / 2
            order["executions"].append(
                {
                    "id": str(uuid.uuid4()),
                    "price": fill_price,
                    "quantity": str(filled - Decimal(order["cumulative_quantity"])),
                    "timestamp": _now(),
                    "settlement_date": datetime.now(UTC).date().isoformat(),
                }
            )
            order["cumulative_quantity"] = str(filled)
            order["average_price"] = fill_price
        if state not in OPEN_STATES:
            order["cancel"] = None

    def requests_to(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path)]

    # -- request handling (under the lock) -----------------------------------------------------

    def rule_for(self, method: str, path: str) -> Rule | None:
        for rule in self.rules:
            if rule.method == method and path.startswith(rule.path) and rule.times > 0:
                rule.times -= 1
                return rule
        return None

    def authorized(self, headers) -> bool:
        value = headers.get("Authorization") or ""
        return value.startswith("Bearer ") and value[7:] in self.access_tokens

    def handle(self, method, path, query, body, headers) -> tuple[int, Any]:
        if method == "POST" and path == "/oauth2/token/":
            return self.token(body)
        if path.startswith("/pathfinder/") or path.startswith("/push/"):
            return self.workflow(method, path, body)
        if method == "POST" and path.startswith("/challenge/"):
            challenge = self.challenges.get(path.split("/")[2])
            if challenge is None or body.get("response") != challenge["code"]:
                return 400, {"detail": "Invalid code."}
            challenge["status"] = "validated"
            return 200, {"status": "validated", "id": path.split("/")[2]}
        if not self.authorized(headers):
            return 401, {"detail": "Invalid token."}
        return self.api(method, path, query, body)

    def page(self, rows: list, query: dict, path: str) -> dict:
        start = int(query.get("cursor", "0") or 0)
        chunk = rows[start : start + self.page_size]
        following = None
        if start + self.page_size < len(rows):
            rest = "&".join(f"{k}={v}" for k, v in query.items() if k != "cursor")
            following = f"{self.url}{path}?{rest}&cursor={start + self.page_size}"
        return {"previous": None, "next": following, "results": chunk}

    def api(self, method: str, path: str, query: dict, body: dict) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        account = self.account()
        if method == "GET" and parts == ["accounts"]:
            return 200, self.page([account], query, path)
        if method == "GET" and parts == ["accounts", ACCOUNT_NUMBER]:
            return 200, account
        if method == "GET" and parts == ["portfolios", ACCOUNT_NUMBER]:
            held = sum(
                Decimal(p["quantity"]) * Decimal(self.quote_by_url(p["instrument"]))
                for p in self.positions
            )
            equity = str(self.buying_power + held)
            return 200, {
                "url": f"{self.url}/portfolios/{ACCOUNT_NUMBER}/",
                "equity": equity,
                "extended_hours_equity": equity,
                "market_value": str(held),
            }
        if method == "GET" and parts == ["positions"]:
            if query.get("nonzero") != "true":
                self.violations.append("positions listed without nonzero=true")
            return 200, self.page(self.positions, query, path)
        if method == "GET" and parts == ["instruments"]:
            found = self.instruments.get(query.get("symbol", ""))
            return 200, self.page([self.resolve(found)] if found else [], query, path)
        if method == "GET" and parts[0] == "instruments" and len(parts) == 2:
            found = next((i for i in self.instruments.values() if i["id"] == parts[1]), None)
            return (200, self.resolve(found)) if found else (404, {"detail": "Not found."})
        if method == "GET" and parts == ["quotes"]:
            symbols = query.get("symbols", "").split(",")
            return 200, {"results": [self.resolve(self.quotes.get(s)) for s in symbols]}
        if method == "GET" and parts[:1] == ["markets"]:
            return self.hours(parts)
        if parts[:1] == ["orders"]:
            return self.order_api(method, parts, query, body)
        return 404, {"detail": "Not found."}

    def resolve(self, row: dict | None) -> dict | None:
        if row is None:
            return None
        return json.loads(json.dumps(row).replace("{base}", self.url))

    def quote_by_url(self, instrument_url: str) -> str:
        symbol = next(s for s in self.instruments if self.instrument_url(s) == instrument_url)
        return self.quotes[symbol]["last_trade_price"]

    def account(self) -> dict:
        return {
            "url": f"{self.url}/accounts/{ACCOUNT_NUMBER}/",
            "account_number": ACCOUNT_NUMBER,
            "type": "cash",
            "cash": str(self.buying_power),
            "portfolio_cash": str(self.buying_power),
            "buying_power": str(self.buying_power),
            "deactivated": False,
            "locked": False,
        }

    def hours(self, parts: list[str]) -> tuple[int, Any]:
        if parts[:3] != ["markets", "XNYS", "hours"] or len(parts) != 4:
            return 404, {"detail": "Not found."}
        day = datetime.strptime(parts[3], "%Y-%m-%d").date()
        is_open = day.weekday() < 5
        following = day + timedelta(days=1)
        while following.weekday() >= 5:
            following += timedelta(days=1)
        opens = datetime(day.year, day.month, day.day, 9, 30, tzinfo=NEW_YORK)
        closes = datetime(day.year, day.month, day.day, 16, 0, tzinfo=NEW_YORK)
        return 200, {
            "date": parts[3],
            "is_open": is_open,
            "opens_at": opens.astimezone(UTC).isoformat() if is_open else None,
            "closes_at": closes.astimezone(UTC).isoformat() if is_open else None,
            "next_open_hours": f"{self.url}/markets/XNYS/hours/{following.isoformat()}/",
        }

    def order_api(self, method, parts, query, body) -> tuple[int, Any]:
        if method == "GET" and len(parts) == 1:
            since = query.get("updated_at[gte]")
            rows = sorted(self.orders.values(), key=lambda o: o["created_at"], reverse=True)
            if since:
                rows = [o for o in rows if o["updated_at"] >= since]
            return 200, self.page(rows, query, "/orders/")
        if method == "POST" and len(parts) == 1:
            return self.place(body)
        order = self.orders.get(parts[1]) if len(parts) > 1 else None
        if order is None:
            return 404, {"detail": "Not found."}
        if method == "GET" and len(parts) == 2:
            return 200, order
        if method == "POST" and parts[2:] == ["cancel"]:
            if order["state"] not in OPEN_STATES:
                return 400, {"detail": "Order cannot be cancelled."}
            self.set_state(order["id"], "cancelled")
            return 200, {}
        return 404, {"detail": "Not found."}

    def place(self, form: dict) -> tuple[int, Any]:
        required = (
            "account",
            "instrument",
            "symbol",
            "quantity",
            "ref_id",
            "type",
            "time_in_force",
            "trigger",
            "side",
        )
        missing = [name for name in required if not form.get(name)]
        if missing:
            self.violations.append(f"order without {missing}")
            return 400, {name: ["This field is required."] for name in missing}
        try:
            uuid.UUID(form["ref_id"])
        except ValueError:
            self.violations.append(f"ref_id {form['ref_id']!r} is not a UUID")
            return 400, {"ref_id": ["Must be a valid UUID."]}
        existing = self.order_by_ref(form["ref_id"])
        if existing is not None:
            self.duplicate_posts += 1
            return 200, existing
        if form["account"] != f"{self.url}/accounts/{ACCOUNT_NUMBER}/":
            self.violations.append(f"order for account {form['account']!r}")
        symbol = form["symbol"]
        if symbol not in self.instruments or form["instrument"] != self.instrument_url(symbol):
            return 400, {"instrument": ["Invalid hyperlink - Object does not exist."]}
        quantity = Decimal(form["quantity"])
        price = Decimal(form.get("price") or self.quotes[symbol]["ask_price"])
        if form["side"] == "buy" and quantity * price > self.buying_power:
            return 400, {"detail": "You do not have enough buying power to place this order."}
        order_id = str(uuid.uuid4())
        self.orders[order_id] = {
            "id": order_id,
            "ref_id": form["ref_id"],
            "url": f"{self.url}/orders/{order_id}/",
            "account": form["account"],
            "instrument": form["instrument"],
            "cancel": f"{self.url}/orders/{order_id}/cancel/",
            "cumulative_quantity": "0.00000000",
            "average_price": None,
            "fees": "0.00",
            "state": "unconfirmed",
            "type": form["type"],
            "side": form["side"],
            "time_in_force": form["time_in_force"],
            "trigger": form["trigger"],
            "price": form.get("price"),
            "stop_price": form.get("stop_price"),
            "preset_percent_limit": form.get("preset_percent_limit"),
            "quantity": f"{quantity:.8f}",
            "reject_reason": None,
            "created_at": _now(),
            "updated_at": _now(),
            "last_transaction_at": _now(),
            "executions": [],
            "extended_hours": form.get("extended_hours") == "True",
        }
        return 201, self.orders[order_id]


def _handler(fake: FakeRobinhood):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, keep-alive clients wait out a
        # delayed ACK (about 40 ms) on every answer.
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self.dispatch("GET")

        def do_POST(self) -> None:
            self.dispatch("POST")

        def dispatch(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = self.parse_body(raw)
            with fake.lock:
                rule = fake.rule_for(method, parts.path)
            if rule is not None and rule.delay:
                time.sleep(rule.delay)
                rule = None
            with fake.lock:
                status: int | None
                if rule is not None and not rule.lose:
                    status, payload, extra = rule.status, rule.body or b"", rule.headers
                else:
                    status, answer = fake.handle(method, parts.path, query, body, self.headers)
                    payload, extra = json.dumps(answer).encode(), {}
                    if rule is not None:
                        status = None
                fake.requests.append(
                    Seen(method, parts.path, query, body, status, datetime.now(UTC))
                )
            if status is None:
                self.close_connection = True
                self.connection.shutdown(2)  # processed, but the client sees no answer
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def parse_body(self, raw: bytes) -> dict:
            if not raw:
                return {}
            if (self.headers.get("Content-Type") or "").startswith("application/json"):
                try:
                    return json.loads(raw)
                except ValueError:
                    fake.violations.append(f"malformed JSON to {self.path}")
                    return {}
            return {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}

    return Handler
