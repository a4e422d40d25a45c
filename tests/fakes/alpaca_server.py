"""A local stand-in for Alpaca's Trading and Market Data REST APIs, driven by their OpenAPI specs.

`FakeAlpaca` starts two stdlib HTTP servers on 127.0.0.1 (one per spec, ephemeral ports) in
background threads. Point alpaca-py at them with `url_override=fake.trading_url` /
`url_override=fake.data_url`. Nothing here touches the internet.

The specs are the contract, not this file:

* every request is matched to a spec operation (path + method), its query parameters are checked
  (required, type, enum; unknown names are reported) and its JSON body is validated against the
  operation's request schema with jsonschema. Problems are appended to `fake.violations`;
* every response body starts from the operation's documented example (or a skeleton of its
  schema's required properties), the live state is laid over it, and the result is validated
  against the response schema, so drift between this fake and the spec shows up in
  `fake.violations` too. Tests assert `fake.violations == []`.

The specs are the OpenAPI documents Alpaca publishes, as shipped in the pinned PyPI wheel
`alpaca-mcp-server==2.4.0` (`alpaca_mcp_server/specs/`; trading API 2.0.1 and market data API
1.1, both OpenAPI 3.1.1, so their schemas are JSON Schema 2020-12). `make setup` installs the
wheel without its dependencies; `spec_dir()` finds the files through the package metadata without
importing it. `$ALPACA_OPENAPI_DIR` points at other copies (OpenAPI 3.0 documents are read too:
their `nullable` is rewritten and they validate as draft 7).

Documented quirks are tolerated and recorded in `fake.quirks` instead: alpaca-py sends
qty/notional/prices as JSON numbers where the spec says string. Older spec versions (3.0) also
had Order examples holding the placeholder enum value "string", and alpaca-py may send booleans
as "True"/"False"; both are still tolerated and recorded, and neither occurs with 2.0.1.

Fault injection (all take `times`, matched against the request path or the spec path template):

* `fail_next(method, path, status=500, body=None, times=1, skip=0)`: answer with an error and do
  nothing (after letting `skip` matching requests through);
* `delay_next(method, path, seconds, times=1)`: sleep before handling (the request is still
  processed afterwards, like a slow server; use it with a client timeout);
* `lose_response_next(method, path, status=504, delay=0.0, times=1)`: process the request (an
  order *is* created) and then answer with `status` (or, with `status=None`, drop the
  connection). This is the lost-response case that reconciliation by client_order_id handles.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

API_KEY = "fake-key-id"
SECRET_KEY = "fake-secret-key"

# Request-body fields the spec types as string but alpaca-py sends as JSON numbers.
NUMERIC_STRING_FIELDS = {
    "qty",
    "notional",
    "limit_price",
    "stop_price",
    "trail_price",
    "trail_percent",
}

OPEN_STATUSES = {
    "new",
    "accepted",
    "pending_new",
    "accepted_for_bidding",
    "partially_filled",
    "pending_cancel",
    "pending_replace",
    "held",
    "stopped",
    "suspended",
}
CANCELABLE_STATUSES = OPEN_STATUSES - {"pending_cancel"}

# The error bodies Alpaca's trading API sends: {"code": <8 digits>, "message": ...}.
DEFAULT_ERROR_BODIES = {
    400: {"code": 40010000, "message": "request is not valid"},
    401: {"code": 40110000, "message": "request is not authorized"},
    403: {"code": 40310000, "message": "insufficient buying power"},
    404: {"code": 40410000, "message": "resource not found"},
    422: {"code": 42210000, "message": "invalid order request"},
    429: {"code": 42910000, "message": "rate limit exceeded"},
    500: {"code": 50010000, "message": "internal server error"},
    502: {"code": 50210000, "message": "bad gateway"},
    503: {"code": 50310000, "message": "service unavailable"},
    504: {"code": 50410000, "message": "gateway timeout"},
}


# The specs come from a pinned PyPI wheel that ships them (installed by `make setup` without its
# own dependencies, see the Makefile); they are located through its metadata, never imported.
SPEC_DISTRIBUTION = "alpaca-mcp-server"
SPEC_PACKAGE_DIR = "alpaca_mcp_server/specs"


def spec_dir() -> Path:
    """Where the Alpaca OpenAPI files live: $ALPACA_OPENAPI_DIR, else the pinned wheel's specs."""
    override = os.environ.get("ALPACA_OPENAPI_DIR")
    if override:
        return Path(override)
    try:
        dist = distribution(SPEC_DISTRIBUTION)
    except PackageNotFoundError as exc:
        raise RuntimeError(
            f"Alpaca's OpenAPI specs come from the {SPEC_DISTRIBUTION} wheel; run `make setup`"
        ) from exc
    return Path(str(dist.locate_file(SPEC_PACKAGE_DIR)))


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _parse_time(value: str) -> datetime:
    """RFC 3339 or YYYY-MM-DD; naive values (alpaca-py strips the zone) are UTC."""
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _num(value: Any) -> Decimal:
    return Decimal(str(value))


def _dec_str(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


# --------------------------------------------------------------------------------------------
# The spec: OpenAPI 3.0 / 3.1 -> JSON Schema, operations, examples
# --------------------------------------------------------------------------------------------


def _to_json_schema(node: Any, uri: str, legacy: bool = False) -> Any:
    """Rewrite an OpenAPI schema fragment as standalone JSON Schema.

    Local `$ref`s point into the registered spec resource `uri`. For an OpenAPI 3.0 document
    (`legacy`), validated as draft 7: `nullable: true` becomes a null alternative and a `$ref`
    with siblings becomes allOf (draft 7 ignores siblings of $ref). OpenAPI 3.1 schemas already
    are JSON Schema 2020-12 and are kept as they are.
    """
    if isinstance(node, list):
        return [_to_json_schema(item, uri, legacy) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: _to_json_schema(v, uri, legacy)
        for k, v in node.items()
        if not (legacy and k == "nullable")
    }
    if "$ref" in out and isinstance(out["$ref"], str) and out["$ref"].startswith("#/"):
        out["$ref"] = uri + out["$ref"]
    if not legacy:
        return out
    if "$ref" in out and len([k for k in out if not k.startswith("x-")]) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}, out]}
    if node.get("nullable") is True:
        if "type" in out and isinstance(out["type"], str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


@dataclass
class Operation:
    method: str
    template: str
    regex: re.Pattern
    spec: dict  # the raw operation object
    parameters: list[dict]  # resolved parameter objects (path-level + operation-level)


class Spec:
    """One OpenAPI document: routes requests and validates bodies against its schemas."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.raw = json.loads((spec_dir() / filename).read_text())
        self.uri = f"urn:alpaca-spec:{filename}"
        self.legacy = str(self.raw.get("openapi", "3.0")).startswith("3.0")
        self.validator_class = Draft7Validator if self.legacy else Draft202012Validator
        converted = _to_json_schema(self.raw, self.uri, self.legacy)
        dialect = DRAFT7 if self.legacy else DRAFT202012
        self.registry = Registry().with_resource(
            self.uri, Resource.from_contents(converted, default_specification=dialect)
        )
        self.operations: list[Operation] = []
        for template, item in self.raw["paths"].items():
            shared = item.get("parameters", [])
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
            for method, op in item.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                params = {}
                for p in [*shared, *op.get("parameters", [])]:
                    resolved = self.resolve(p)
                    params[(resolved["name"], resolved["in"])] = resolved
                self.operations.append(
                    Operation(
                        method.upper(), template, re.compile(pattern), op, list(params.values())
                    )
                )
        # Literal paths win over templated ones ("/v2/stocks/bars" before "/v2/stocks/{symbol}/..").
        self.operations.sort(key=lambda o: o.template.count("{"))

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.raw
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def find(self, method: str, path: str) -> tuple[Operation | None, bool]:
        """(operation, path_known): the operation for method+path, and whether the path exists."""
        path_known = False
        for op in self.operations:
            if op.regex.match(path):
                path_known = True
                if op.method == method:
                    return op, True
        return None, path_known

    def validator(self, schema: dict) -> Draft7Validator | Draft202012Validator:
        return self.validator_class(
            _to_json_schema(schema, self.uri, self.legacy), registry=self.registry
        )

    def errors(self, schema: dict, instance: Any) -> list:
        return list(self.validator(schema).iter_errors(instance))

    # -- responses -----------------------------------------------------------------------

    def response_media(self, op: Operation, status: int) -> dict | None:
        response = self.resolve(op.spec.get("responses", {}).get(str(status)))
        if not response:
            return None
        return response.get("content", {}).get("application/json")

    def example_for(self, media: dict) -> Any:
        if "example" in media:
            return copy.deepcopy(media["example"])
        for example in media.get("examples", {}).values():
            return copy.deepcopy(self.resolve(example).get("value"))
        return self.schema_example(media.get("schema", {}))

    def schema_example(self, schema: dict) -> Any:
        schema = self.resolve(schema)
        if "example" in schema:
            return copy.deepcopy(schema["example"])
        for example in schema.get("x-examples", {}).values():
            return copy.deepcopy(example)
        if isinstance(schema.get("examples"), list) and schema["examples"]:  # JSON Schema's own
            return copy.deepcopy(schema["examples"][0])
        return self.skeleton(schema)

    def skeleton(self, schema: dict) -> Any:
        """The smallest instance with every required property filled in."""
        schema = self.resolve(schema)
        for combinator in ("allOf", "oneOf", "anyOf"):
            if combinator in schema:
                return self.skeleton(schema[combinator][0])
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type", "object")
        if isinstance(kind, list):  # OpenAPI 3.1: ["string", "null"]
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object":
            props = schema.get("properties", {})
            return {
                name: self.schema_example(props.get(name, {}))
                for name in schema.get("required", [])
            }
        if kind == "array":
            return []
        if kind == "string":
            return _iso(_now()) if schema.get("format") == "date-time" else ""
        if kind in {"number", "integer"}:
            return 0
        if kind == "boolean":
            return False
        return None


_SPECS: dict[Path, Spec] = {}


def load_spec(filename: str) -> Spec:
    """The parsed spec, cached per file: Spec objects are read-only once built."""
    path = (spec_dir() / filename).resolve()
    if path not in _SPECS:
        _SPECS[path] = Spec(filename)
    return _SPECS[path]


# --------------------------------------------------------------------------------------------
# Recorded requests and fault rules
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    api: str  # "trading" | "data"
    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int | None = None  # what the fake answered (None: connection dropped)
    template: str | None = None  # the spec path template it matched


@dataclass
class _Rule:
    kind: str  # "fail" | "delay" | "lose"
    method: str
    path: str
    times: int
    status: int | None = 500
    body: Any = None
    seconds: float = 0.0
    skip: int = 0  # let this many matching requests through first


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------


@dataclass
class _Response:
    status: int
    body: Any = None  # JSON-able, or None for an empty body
    op: Operation | None = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeAlpaca:
    """Alpaca's trading + market data APIs on 127.0.0.1, with state and fault injection."""

    def __init__(self, *, api_key: str = API_KEY, secret_key: str = SECRET_KEY) -> None:
        self.api_key = api_key
        self.secret_key = secret_key
        self.trading_spec = load_spec("trading-api.json")
        self.data_spec = load_spec("market-data-api.json")

        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.quirks: list[str] = []
        self._rules: list[_Rule] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()

        # Trading state.
        self.account = {
            "cash": Decimal("100000"),
            "buying_power": Decimal("200000"),
            "equity": Decimal("100000"),
            "status": "ACTIVE",
            "currency": "USD",
        }
        self.positions: dict[str, dict[str, Decimal]] = {}
        self.orders: dict[str, dict] = {}  # id -> Order JSON
        # Legs of bracket/OTO/OCO orders, as Alpaca keeps them: orders of their own (found by
        # id), shown under their parent's `legs` only when asked with `nested=true`.
        self.legs_of: dict[str, list[str]] = {}  # parent id -> leg ids
        self.new_order_status = "accepted"
        self.prices: dict[str, Decimal] = {}  # used for market-order buying-power checks
        self.clock = {
            "timestamp": "2024-01-02T10:15:00-05:00",
            "is_open": True,
            "next_open": "2024-01-03T09:30:00-05:00",
            "next_close": "2024-01-02T16:00:00-05:00",
        }

        # Market-data state: bars[(symbol, timeframe)] = list of bar dicts sorted by "t".
        self.bars: dict[tuple[str, str], list[dict]] = {}
        self.bars_page_size = 100  # the server caps each page at this, whatever `limit` says
        self.latest_trades: dict[str, dict] = {}
        self.latest_quotes: dict[str, dict] = {}
        # Bars the test knowingly made malformed; response-schema errors about them are expected.
        self._malformed_ok: set[int] = set()

        self._trading_server = self._start_server("trading", self.trading_spec)
        self._data_server = self._start_server("data", self.data_spec)
        self.trading_url = f"http://127.0.0.1:{self._trading_server.server_address[1]}"
        self.data_url = f"http://127.0.0.1:{self._data_server.server_address[1]}"

    # -- lifecycle ----------------------------------------------------------------------------

    def _start_server(self, api: str, spec: Spec) -> ThreadingHTTPServer:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        Handler.api = api
        Handler.spec = spec
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        # A short poll interval keeps stop() (and so each test's teardown) fast.
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fake-alpaca-{api}",
            daemon=True,
        )
        thread.start()
        return server

    def stop(self) -> None:
        self._stopping.set()
        for server in (self._trading_server, self._data_server):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FakeAlpaca:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- fault injection --------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int = 500,
        body: Any = None,
        times: int = 1,
        skip: int = 0,
    ) -> None:
        """After `skip` matching requests, the next `times` get `status` and `body` and are
        not processed (`skip=1` on the bars path fails the second page)."""
        self._rules.append(
            _Rule("fail", method.upper(), path, times, status=status, body=body, skip=skip)
        )

    def delay_next(self, method: str, path: str, seconds: float, *, times: int = 1) -> None:
        """Sleep `seconds` before handling the next `times` matching requests."""
        self._rules.append(_Rule("delay", method.upper(), path, times, seconds=seconds))

    def lose_response_next(
        self,
        method: str,
        path: str,
        *,
        status: int | None = 504,
        delay: float = 0.0,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """Process the request, then answer `status` after `delay` (None: drop the connection)."""
        self._rules.append(
            _Rule("lose", method.upper(), path, times, status=status, body=body, seconds=delay)
        )

    def _take_rules(self, method: str, path: str, template: str | None) -> list[_Rule]:
        taken = []
        with self._lock:
            for rule in self._rules:
                if rule.times > 0 and rule.method == method and rule.path in (path, template):
                    if any(r.kind == rule.kind for r in taken):
                        continue
                    if rule.skip > 0:
                        rule.skip -= 1
                        continue
                    rule.times -= 1
                    taken.append(rule)
            self._rules = [r for r in self._rules if r.times > 0]
        return taken

    # -- state helpers for tests ------------------------------------------------------------

    def set_account(self, **values: Any) -> None:
        for key, value in values.items():
            self.account[key] = value if key in {"status", "currency"} else _num(value)

    def set_position(
        self, symbol: str, *, qty: Any, avg_entry_price: Any, current_price: Any = None
    ) -> None:
        price = _num(current_price if current_price is not None else avg_entry_price)
        self.positions[symbol] = {
            "qty": _num(qty),
            "avg_entry_price": _num(avg_entry_price),
            "current_price": price,
        }

    def order_by_client_id(self, client_order_id: str) -> dict | None:
        for order in self.orders.values():
            if order["client_order_id"] == client_order_id:
                return order
        return None

    def set_order_status(
        self,
        order_id_or_client_id: str,
        status: str,
        *,
        filled_qty: Any = None,
        filled_avg_price: Any = None,
    ) -> dict:
        """Move an order along, as the exchange would (fills, cancels, expiry...)."""
        with self._lock:
            order = self.orders.get(order_id_or_client_id) or self.order_by_client_id(
                order_id_or_client_id
            )
            if order is None:
                raise KeyError(order_id_or_client_id)
            now = _iso(_now())
            order["status"] = status
            order["updated_at"] = now
            if filled_qty is not None:
                order["filled_qty"] = _dec_str(_num(filled_qty))
            if filled_avg_price is not None:
                order["filled_avg_price"] = _dec_str(_num(filled_avg_price))
            if status == "filled":
                order["filled_at"] = now
                if filled_qty is None:
                    order["filled_qty"] = order["qty"]
            elif status == "canceled":
                order["canceled_at"] = now
            elif status == "expired":
                order["expired_at"] = now
            elif status == "rejected":
                order["failed_at"] = now
            self._group_rules(order, status, now)
            return order

    def _group_rules(self, order: dict, status: str, now: str) -> None:
        """What Alpaca does to the rest of a group: an entry's fill releases its held legs; an
        exit's fill cancels its sibling; an entry's cancel takes its legs."""
        parent = next((p for p, ids in self.legs_of.items() if order["id"] in ids), None)
        if parent is None and order["id"] in self.legs_of:
            legs = [self.orders[i] for i in self.legs_of[order["id"]]]
            if order.get("group_role") == "entry":
                for leg in legs:
                    if status == "filled" and leg["status"] == "held":
                        leg.update({"status": "new", "qty": order["filled_qty"]})
                    elif status in ("canceled", "expired") and leg["status"] == "held":
                        leg.update({"status": "canceled", "canceled_at": now})
                return
            siblings = legs  # an OCO's take-profit: its stop-loss leg
        elif parent is not None:
            root = self.orders[parent]
            siblings = [self.orders[i] for i in self.legs_of[parent] if i != order["id"]]
            if root.get("group_role") == "take_profit":
                siblings.append(root)
        else:
            return
        if status == "filled":
            for sibling in siblings:
                if sibling["status"] in OPEN_STATUSES:
                    sibling.update({"status": "canceled", "canceled_at": now, "updated_at": now})

    def seed_bars(
        self,
        symbol: str,
        *,
        start: datetime,
        count: int,
        timeframe: str = "5Min",
        base_price: str = "100.00",
        step_minutes: int = 5,
    ) -> list[dict]:
        """A deterministic series: bar i opens at base + i*0.05 (exact in cents)."""
        base = Decimal(base_price)
        rows = []
        for i in range(count):
            open_ = base + Decimal("0.05") * i
            close = open_ + (Decimal("0.03") if i % 2 == 0 else Decimal("-0.02"))
            high = max(open_, close) + Decimal("0.10")
            low = min(open_, close) - Decimal("0.10")
            rows.append(
                {
                    "t": (start + timedelta(minutes=step_minutes * i)).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    ),
                    "o": float(open_),
                    "h": float(high),
                    "l": float(low),
                    "c": float(close),
                    "v": 1000 + i,
                    "n": 10 + i % 7,
                    "vw": float(((open_ + close) / 2).quantize(Decimal("0.0001"))),
                }
            )
        self.add_bars(symbol, rows, timeframe=timeframe)
        return rows

    def add_bars(
        self, symbol: str, rows: list[dict], *, timeframe: str = "5Min", malformed: bool = False
    ) -> None:
        """Add raw bar rows; `malformed=True` marks rows that knowingly break the schema."""
        series = self.bars.setdefault((symbol, timeframe), [])
        series.extend(rows)
        series.sort(key=lambda r: str(r.get("t", "")))
        if malformed:
            self._malformed_ok.update(id(r) for r in rows)

    def set_latest_trade(self, symbol: str, price: Any, *, t: str | None = None) -> None:
        self.latest_trades[symbol] = {"p": float(_num(price)), "t": t or _iso(_now())}

    def set_latest_quote(self, symbol: str, bid: Any, ask: Any, *, t: str | None = None) -> None:
        self.latest_quotes[symbol] = {
            "bp": float(_num(bid)),
            "ap": float(_num(ask)),
            "t": t or _iso(_now()),
        }

    # -- queries for tests ------------------------------------------------------------------

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [
            r for r in self.requests if r.method == method.upper() and path in (r.path, r.template)
        ]

    # -- request handling -------------------------------------------------------------------

    def handle(self, api: str, spec: Spec, record: RecordedRequest) -> _Response:
        op, path_known = spec.find(record.method, record.path)
        record.template = op.template if op else None

        if record.headers.get("apca-api-key-id") != self.api_key or (
            record.headers.get("apca-api-secret-key") != self.secret_key
        ):
            # Alpaca answers 401 for missing or unknown keys on both APIs.
            return _Response(401, _error_body(api, 401, None))

        if op is None:
            what = "method" if path_known else "path"
            self.violations.append(f"{api}: unknown {what} {record.method} {record.path}")
            status = 405 if path_known else 404
            return _Response(status, _error_body(api, status, "endpoint not found"))

        problems = self._validate_request(spec, op, record)
        if problems:
            self.violations.extend(f"{api}: {record.method} {record.path}: {p}" for p in problems)
            status = 422 if api == "trading" else 400
            return _Response(status, _error_body(api, status, "; ".join(problems)), op)

        route = getattr(self, "_" + op.spec.get("operationId", ""), None)
        if route is None:
            return _Response(
                501, _error_body(api, 500, f"fake does not implement {op.template}"), op
            )
        with self._lock:
            response = route(record, op)
        response.op = op
        return response

    def _validate_request(self, spec: Spec, op: Operation, record: RecordedRequest) -> list[str]:
        problems = []
        known = {p["name"] for p in op.parameters if p["in"] == "query"}
        for name in record.query:
            if name not in known:
                problems.append(f"unknown query parameter {name!r}")
        for param in op.parameters:
            if param["in"] != "query":
                continue
            name = param["name"]
            if name not in record.query:
                if param.get("required"):
                    problems.append(f"missing required query parameter {name!r}")
                continue
            schema = spec.resolve(param.get("schema", {}))
            value = self._coerce_query(record.query[name], schema, name, op)
            for error in spec.errors(param.get("schema", {}), value):
                problems.append(f"query {name}={record.query[name]!r}: {error.message}")
        body_spec = spec.resolve(op.spec.get("requestBody"))
        if body_spec:
            media = body_spec.get("content", {}).get("application/json", {})
            if record.json is None:
                if body_spec.get("required"):
                    problems.append("missing JSON body")
            elif "schema" in media:
                body = self._tolerate_numeric_strings(record.json, op)
                for error in spec.errors(media["schema"], body):
                    where = "/".join(str(p) for p in error.absolute_path) or "body"
                    problems.append(f"{where}: {error.message}")
        return problems

    def _coerce_query(self, raw: str, schema: dict, name: str, op: Operation) -> Any:
        kind = schema.get("type")
        if kind == "integer":
            return int(raw) if re.fullmatch(r"-?\d+", raw) else raw
        if kind == "number":
            try:
                return float(raw)
            except ValueError:
                return raw
        if kind == "boolean":
            if raw in {"true", "false"}:
                return raw == "true"
            if raw in {"True", "False"}:
                self.quirks.append(f"{op.template}: boolean {name}={raw} (Python casing)")
                return raw == "True"
            return raw
        if kind == "array":
            return raw.split(",")
        return raw

    def _tolerate_numeric_strings(self, body: Any, op: Operation) -> Any:
        if not isinstance(body, dict):
            return body
        body = dict(body)
        for key in NUMERIC_STRING_FIELDS:
            value = body.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.quirks.append(f"{op.template}: {key} sent as number {value!r}")
                body[key] = str(value)
        # The legs' prices too: the spec's own description of take_profit and stop_loss says
        # they "take in string/number values" although their schema says string.
        for leg in ("take_profit", "stop_loss"):
            if isinstance(body.get(leg), dict):
                body[leg] = self._tolerate_numeric_strings(body[leg], op)
        return body

    def check_response(self, api: str, spec: Spec, op: Operation, status: int, body: Any) -> None:
        media = spec.response_media(op, status)
        if media is None or "schema" not in media:
            if body is not None and status < 300:
                self.violations.append(f"{api}: {op.template} {status}: body where spec has none")
            return
        for error in spec.errors(media["schema"], body):
            if error.validator == "enum" and error.instance == "string":
                self.quirks.append(f"{op.template}: placeholder enum 'string' at {error.json_path}")
                continue
            if self._is_known_malformed(body, error):
                continue
            self.violations.append(
                f"{api}: response {op.template} {status} at {error.json_path}: {error.message}"
            )

    def _is_known_malformed(self, body: Any, error: Any) -> bool:
        node = body
        for part in error.absolute_path:
            if id(node) in self._malformed_ok:
                return True
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return False
        return id(node) in self._malformed_ok

    # -- trading routes (named after the spec's operationId) ---------------------------------

    def _order_template(self) -> dict:
        return self.trading_spec.example_for(
            self.trading_spec.response_media(self.trading_spec.find("POST", "/v2/orders")[0], 200)
        )

    def _postOrder(self, record: RecordedRequest, op: Operation) -> _Response:
        body = record.json or {}
        client_order_id = body.get("client_order_id") or str(uuid.uuid4())
        if self.order_by_client_id(client_order_id) is not None:
            return _Response(422, {"code": 40010001, "message": "client_order_id must be unique"})
        order_type = body.get("type")
        if body.get("qty") is None and body.get("notional") is None:
            return _Response(422, {"code": 40010001, "message": "qty or notional is required"})
        if order_type in {"limit", "stop_limit"} and body.get("limit_price") is None:
            return _Response(422, {"code": 40010001, "message": "limit_price is required"})
        if order_type in {"stop", "stop_limit"} and body.get("stop_price") is None:
            return _Response(422, {"code": 40010001, "message": "stop_price is required"})
        qty = _num(body["qty"]) if body.get("qty") is not None else None
        if qty is not None and qty <= 0:
            return _Response(422, {"code": 40010001, "message": "qty must be > 0"})
        if body.get("side") == "buy" and qty is not None:
            price = (
                body.get("limit_price")
                or body.get("stop_price")
                or self.prices.get(body.get("symbol", ""))
            )
            if price is not None and qty * _num(price) > self.account["buying_power"]:
                return _Response(403, {"code": 40310000, "message": "insufficient buying power"})

        now = _iso(_now())
        order = self._order_template()
        order.update(
            {
                "id": str(uuid.uuid4()),
                "client_order_id": client_order_id,
                "created_at": now,
                "updated_at": now,
                "submitted_at": now,
                "filled_at": None,
                "canceled_at": None,
                "expired_at": None,
                "failed_at": None,
                "replaced_at": None,
                "replaced_by": None,
                "replaces": None,
                "asset_class": "us_equity",
                "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, body.get("symbol", ""))),
                "symbol": body.get("symbol"),
                "qty": _dec_str(qty) if qty is not None else None,
                "notional": str(body["notional"]) if body.get("notional") is not None else None,
                "filled_qty": "0",
                "filled_avg_price": None,
                "order_class": body.get("order_class") or "simple",
                "order_type": order_type,
                "type": order_type,
                "side": body.get("side"),
                "time_in_force": body.get("time_in_force"),
                "limit_price": _opt_str(body.get("limit_price")),
                "stop_price": _opt_str(body.get("stop_price")),
                "trail_price": _opt_str(body.get("trail_price")),
                "trail_percent": _opt_str(body.get("trail_percent")),
                "extended_hours": bool(body.get("extended_hours", False)),
                "legs": None,
                "hwm": None,
                "status": self.new_order_status,
            }
        )
        problem = self._add_legs(order, body)
        if problem:
            return _Response(422, {"code": 40010001, "message": problem})
        self.orders[order["id"]] = order
        return _Response(200, self._nested(order, True))

    def _add_legs(self, order: dict, body: dict) -> str | None:
        """The legs of a bracket/OTO/OCO order, by Alpaca's documented rules (or what is wrong).

        An OCO's top-level order is its take-profit and its one leg the stop-loss; a bracket's
        or OTO's legs are the exits of its entry, `held` until the entry fills."""
        order_class = order["order_class"]
        if order_class in ("simple", ""):
            if body.get("take_profit") or body.get("stop_loss"):
                return "take_profit/stop_loss need a bracket, oco or oto order_class"
            if order["type"] == "trailing_stop" and (
                (body.get("trail_price") is None) == (body.get("trail_percent") is None)
            ):
                return "trailing_stop needs one of trail_price or trail_percent"
            return None
        take_profit, stop_loss = body.get("take_profit"), body.get("stop_loss")
        if order["type"] == "trailing_stop":
            return "trailing_stop is not supported in advanced order classes"
        if order_class in ("bracket", "oco") and not (take_profit and stop_loss):
            return f"{order_class} orders require take_profit and stop_loss"
        if order_class == "oto" and bool(take_profit) == bool(stop_loss):
            return "oto orders require one of take_profit or stop_loss"
        if order_class == "oco" and order["type"] != "limit":
            return "oco orders must be limit orders"
        if order["time_in_force"] not in ("day", "gtc"):
            return "time_in_force must be day or gtc for advanced orders"
        group = str(uuid.uuid4())
        order["group_id"] = group
        exit_side = (
            order["side"] if order_class == "oco" else ("sell" if order["side"] == "buy" else "buy")
        )
        legs = []
        if order_class == "oco":
            order["group_role"] = "take_profit"
            order["limit_price"] = _opt_str(take_profit.get("limit_price"))
        else:
            order["group_role"] = "entry"
            if take_profit:
                legs.append(("take_profit", "limit", take_profit.get("limit_price"), None))
        if stop_loss:
            kind = "stop_limit" if stop_loss.get("limit_price") is not None else "stop"
            legs.append(("stop_loss", kind, stop_loss.get("limit_price"), stop_loss["stop_price"]))
        ids = []
        for role, kind, limit, stop in legs:
            leg = copy.deepcopy(order)
            leg.update(
                {
                    "id": str(uuid.uuid4()),
                    "client_order_id": str(uuid.uuid4()),
                    "group_role": role,
                    "type": kind,
                    "order_type": kind,
                    "side": exit_side,
                    "limit_price": _opt_str(limit),
                    "stop_price": _opt_str(stop),
                    "status": "new" if order_class == "oco" else "held",
                }
            )
            self.orders[leg["id"]] = leg
            ids.append(leg["id"])
        self.legs_of[order["id"]] = ids
        return None

    def _nested(self, order: dict, nested: bool) -> dict:
        out = copy.deepcopy(order)
        ids = self.legs_of.get(order["id"])
        out["legs"] = [copy.deepcopy(self.orders[i]) for i in ids] if nested and ids else None
        return out

    def _is_leg(self, order_id: str) -> bool:
        return any(order_id in ids for ids in self.legs_of.values())

    def _getAllOrders(self, record: RecordedRequest, op: Operation) -> _Response:
        status = record.query.get("status", "open")
        limit = int(record.query.get("limit", "50"))
        direction = record.query.get("direction", "desc")
        symbols = set(filter(None, record.query.get("symbols", "").split(",")))
        nested = record.query.get("nested", "false").lower() == "true"
        rows = []
        for order in self.orders.values():
            if nested and self._is_leg(order["id"]):
                continue  # rolled up under its parent
            is_open = order["status"] in OPEN_STATUSES
            if (status == "open" and not is_open) or (status == "closed" and is_open):
                continue
            if symbols and order["symbol"] not in symbols:
                continue
            rows.append(self._nested(order, nested))
        rows.sort(key=lambda o: o["submitted_at"], reverse=direction == "desc")
        return _Response(200, rows[:limit])

    def _getOrderByOrderID(self, record: RecordedRequest, op: Operation) -> _Response:
        order = self.orders.get(record.path.rsplit("/", 1)[1])
        if order is None:
            return _Response(404, {"code": 40410000, "message": "order not found"})
        nested = record.query.get("nested", "false").lower() == "true"
        return _Response(200, self._nested(order, nested))

    def _getOrderByClientOrderId(self, record: RecordedRequest, op: Operation) -> _Response:
        order = self.order_by_client_id(record.query["client_order_id"])
        if order is None:
            return _Response(404, {"code": 40410000, "message": "order not found"})
        return _Response(200, copy.deepcopy(order))

    def _deleteOrderByOrderID(self, record: RecordedRequest, op: Operation) -> _Response:
        order = self.orders.get(record.path.rsplit("/", 1)[1])
        if order is None:
            return _Response(404, {"code": 40410000, "message": "order not found"})
        if order["status"] not in CANCELABLE_STATUSES:
            return _Response(
                422,
                {"code": 42210000, "message": f"order is not cancelable ({order['status']})"},
            )
        now = _iso(_now())
        order.update({"status": "canceled", "canceled_at": now, "updated_at": now})
        for leg_id in self.legs_of.get(order["id"], []):  # a parent's legs go with it
            leg = self.orders[leg_id]
            if leg["status"] in CANCELABLE_STATUSES:
                leg.update({"status": "canceled", "canceled_at": now, "updated_at": now})
        return _Response(204)

    def _getAllOpenPositions(self, record: RecordedRequest, op: Operation) -> _Response:
        media = self.trading_spec.response_media(op, 200)
        template = self.trading_spec.schema_example(media["schema"]["items"])
        rows = []
        for symbol, pos in sorted(self.positions.items()):
            qty, avg, price = pos["qty"], pos["avg_entry_price"], pos["current_price"]
            cost = qty * avg
            value = qty * price
            row = copy.deepcopy(template)
            row.update(
                {
                    "symbol": symbol,
                    "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, symbol)),
                    "asset_class": "us_equity",
                    "asset_marginable": True,
                    "exchange": "NASDAQ",
                    "qty": _dec_str(qty),
                    "qty_available": _dec_str(qty),
                    "side": "long" if qty >= 0 else "short",
                    "avg_entry_price": _dec_str(avg),
                    "current_price": _dec_str(price),
                    "lastday_price": _dec_str(price),
                    "change_today": "0",
                    "market_value": _dec_str(value),
                    "cost_basis": _dec_str(cost),
                    "unrealized_pl": _dec_str(value - cost),
                    "unrealized_plpc": _dec_str((value - cost) / cost) if cost else "0",
                    "unrealized_intraday_pl": "0",
                    "unrealized_intraday_plpc": "0",
                }
            )
            rows.append(row)
        return _Response(200, rows)

    def _getAccount(self, record: RecordedRequest, op: Operation) -> _Response:
        body = self.trading_spec.example_for(self.trading_spec.response_media(op, 200))
        acct = self.account
        body.update(
            {
                "cash": _dec_str(acct["cash"]),
                "buying_power": _dec_str(acct["buying_power"]),
                "regt_buying_power": _dec_str(acct["buying_power"]),
                "effective_buying_power": _dec_str(acct["buying_power"]),
                "non_marginable_buying_power": _dec_str(acct["cash"]),
                "equity": _dec_str(acct["equity"]),
                "portfolio_value": _dec_str(acct["equity"]),
                "status": acct["status"],
                "currency": acct["currency"],
            }
        )
        return _Response(200, body)

    def _LegacyClock(self, record: RecordedRequest, op: Operation) -> _Response:
        body = self.trading_spec.example_for(self.trading_spec.response_media(op, 200))
        body.update(self.clock)
        return _Response(200, body)

    # -- market data routes -----------------------------------------------------------------

    def _bars_page(self, record: RecordedRequest, symbols: list[str]) -> tuple[dict, str | None]:
        timeframe = record.query["timeframe"]
        if not re.fullmatch(
            r"([1-9]|[1-5][0-9])(Min|T)|([1-9]|1[0-9]|2[0-3])(Hour|H)|1(Day|D)|1(Week|W)|(1|2|3|4|6|12)(Month|M)",
            timeframe,
        ):
            raise _BadRequest(f"invalid timeframe {timeframe!r}")
        start = _parse_time(record.query["start"]) if "start" in record.query else None
        end = _parse_time(record.query["end"]) if "end" in record.query else None
        items: list[tuple[str, dict]] = []
        for symbol in sorted(symbols):
            for row in self.bars.get((symbol, timeframe), []):
                ts = _parse_time(row["t"]) if "t" in row else None
                if ts is not None and start is not None and ts < start:
                    continue
                if ts is not None and end is not None and ts > end:  # end is inclusive
                    continue
                items.append((symbol, row))
        offset = 0
        if record.query.get("page_token"):
            try:
                offset = int(
                    base64.b64decode(record.query["page_token"]).decode().rsplit("|", 1)[1]
                )
            except (ValueError, IndexError) as exc:
                raise _BadRequest("invalid page_token") from exc
        limit = int(record.query.get("limit", "1000"))
        size = min(limit, self.bars_page_size)
        page = items[offset : offset + size]
        next_token = None
        if offset + size < len(items):
            marker = f"{page[-1][0]}|M|{offset + size}"
            next_token = base64.b64encode(marker.encode()).decode()
        grouped: dict[str, list] = {}
        for symbol, row in page:
            grouped.setdefault(symbol, []).append(row)  # rows are shared objects: see _malformed_ok
        return grouped, next_token

    def _StockBars(self, record: RecordedRequest, op: Operation) -> _Response:
        symbols = [s for s in record.query["symbols"].split(",") if s]
        try:
            grouped, token = self._bars_page(record, symbols)
        except _BadRequest as exc:
            return _Response(400, {"message": str(exc)})
        return _Response(200, {"bars": grouped, "next_page_token": token})

    def _StockBarSingle(self, record: RecordedRequest, op: Operation) -> _Response:
        symbol = record.path.split("/")[3]
        try:
            grouped, token = self._bars_page(record, [symbol])
        except _BadRequest as exc:
            return _Response(400, {"message": str(exc)})
        return _Response(
            200, {"symbol": symbol, "bars": grouped.get(symbol, []), "next_page_token": token}
        )

    def _latest(self, op: Operation, record: RecordedRequest, key: str, store: dict) -> _Response:
        media = self.data_spec.response_media(op, 200)
        item_schema = self.data_spec.resolve(media["schema"])["properties"][key][
            "additionalProperties"
        ]
        template = self.data_spec.schema_example(item_schema)
        out = {}
        for symbol in record.query["symbols"].split(","):
            if symbol in store:
                row = copy.deepcopy(template)
                row.update(store[symbol])
                out[symbol] = row
        return _Response(200, {key: out})

    def _StockLatestTrades(self, record: RecordedRequest, op: Operation) -> _Response:
        return self._latest(op, record, "trades", self.latest_trades)

    def _StockLatestQuotes(self, record: RecordedRequest, op: Operation) -> _Response:
        return self._latest(op, record, "quotes", self.latest_quotes)


class _BadRequest(Exception):
    pass


def _opt_str(value: Any) -> str | None:
    return None if value is None else _dec_str(_num(value))


def _error_body(api: str, status: int, message: str | None) -> dict:
    body = dict(DEFAULT_ERROR_BODIES.get(status, {"code": status * 100000, "message": "error"}))
    if message:
        body["message"] = message
    if api == "data":
        # The market data API answers errors as {"message": ...} only.
        body.pop("code", None)
    return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeAlpaca
    api: str
    spec: Spec

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _serve(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        record = RecordedRequest(
            api=self.api,
            method=self.command,
            path=parts.path,
            query=query,
            json=payload,
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        with fake._lock:
            fake.requests.append(record)

        op, _ = self.spec.find(record.method, record.path)
        rules = fake._take_rules(record.method, record.path, op.template if op else None)
        by_kind = {r.kind: r for r in rules}
        if "delay" in by_kind:
            fake._stopping.wait(by_kind["delay"].seconds)
        if "fail" in by_kind:
            rule = by_kind["fail"]
            body = rule.body if rule.body is not None else _error_body(self.api, rule.status, None)
            record.status = rule.status
            self._send(_Response(rule.status, body))
            return

        response = fake.handle(self.api, self.spec, record)
        if response.op is not None:
            fake.check_response(self.api, self.spec, response.op, response.status, response.body)

        if "lose" in by_kind:
            rule = by_kind["lose"]
            if rule.seconds:
                fake._stopping.wait(rule.seconds)
            if rule.status is None:
                record.status = None
                self.close_connection = True
                self.connection.shutdown(2)  # the client sees a dropped connection
                return
            body = rule.body if rule.body is not None else _error_body(self.api, rule.status, None)
            response = _Response(rule.status, body)
        record.status = response.status
        self._send(response)

    def _send(self, response: _Response) -> None:
        data = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-RateLimit-Limit", "200")
        self.send_header("X-RateLimit-Remaining", "199")
        self.send_header("X-RateLimit-Reset", str(int(time.time()) + 60))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): that is the point of delay_next

    do_GET = _serve  # noqa: N815 - BaseHTTPRequestHandler dispatches on do_<METHOD>
    do_POST = _serve  # noqa: N815
    do_DELETE = _serve  # noqa: N815
    do_PATCH = _serve  # noqa: N815
    do_PUT = _serve  # noqa: N815
