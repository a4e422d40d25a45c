"""The Robinhood broker — EXPERIMENTAL, over Robinhood's UNOFFICIAL API (no public trading API
exists; Robinhood may change or block it at any time, and bursts of calls lock accounts).

Which client: a small adapter over `requests` that calls the endpoints the way the well-kept
`robin-stocks` package (3.4) does, not robin-stocks itself. robin-stocks logs in with input()
and getpass() prompts and a two-minute polling loop when Robinhood asks for device approval,
stores its tokens as a pickle in ~/.tokens, keeps one global session without timeouts on GETs
or a size cap, and swallows HTTP errors into `None`; none of that fits a server process. The
adapter (`robinhood_http`, `robinhood_auth`, this module) keeps its payloads and endpoints and
adds what the project requires of every outbound call (core.http), pacing and cool-downs against
lockouts, encrypted token storage in the database, and device approval reported in /status and
/health instead of prompting.

Endpoints (relative to ROBINHOOD_API_URL, https://api.robinhood.com): oauth2/token/,
pathfinder/user_machine/, pathfinder/inquiries/{id}/user_view/, push/{id}/get_prompts_status/,
challenge/{id}/respond/, accounts/, portfolios/{account}/, positions/?nonzero=true,
instruments/?symbol=, instruments/{id}/, quotes/?symbols=, orders/ (GET, POST),
orders/{id}/, orders/{id}/cancel/, markets/XNYS/hours/{date}/.

Idempotency: every order carries `ref_id`, Robinhood's idempotency key, a UUID. Our
client_order_id is not a UUID (`trp-<hex>`, strategy-derived ids), so ref_id is the UUIDv5 of
it in a fixed namespace (`ref_id_for`): stable, so a resend after a lost answer carries the same
ref_id. The pair is written (RobinhoodOrderRef) before the order is sent; the order is found
again by listing recent orders and matching ref_id (Robinhood has no lookup by ref_id).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from trading.brokers.base import (
    BaseBroker,
    BrokerAccount,
    BrokerClock,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
    Fill,
    OrderRequest,
)
from trading.brokers.robinhood_auth import RobinhoodAuth
from trading.brokers.robinhood_http import RobinhoodHTTP, Unauthorized, parse_time

logger = logging.getLogger("trading.brokers.robinhood")

REF_NAMESPACE = uuid.UUID("5d0f1f4e-6f3a-5b8e-9a51-7b6f0e2f9c11")
NEW_YORK = ZoneInfo("America/New_York")
LIVE = "live"  # partially_filled if anything filled, else new
# Robinhood order state -> ours. "queued"/"unconfirmed": received, not yet routed; "confirmed":
# working at the venue. An unknown state is treated as live (the order exists), never terminal.
STATE_MAP = {
    "queued": "accepted",
    "unconfirmed": "accepted",
    "confirmed": LIVE,
    "partially_filled": "partially_filled",
    "filled": "filled",
    "cancelled": "canceled",
    "canceled": "canceled",
    "rejected": "rejected",
    "failed": "rejected",
    "voided": "rejected",
    "expired": "expired",
}
OPEN_STATES = {"queued", "unconfirmed", "confirmed", "partially_filled"}
# Open gtc orders live up to 90 days at Robinhood; listings look this far back.
OPEN_LOOKBACK = timedelta(days=92)
# A ref_id is searched among orders updated since shortly before its row was written.
LOOKUP_SLACK = timedelta(minutes=10)
TIME_IN_FORCE = {"day": "gfd", "gtc": "gtc"}
# (API URL, symbol) <-> (API URL, instrument URL); instruments do not change: a process keeps them.
_instrument_urls: dict[tuple[str, str], str] = {}
_instrument_symbols: dict[tuple[str, str], str] = {}


def ref_id_for(client_order_id: str) -> str:
    """Robinhood's ref_id for our client_order_id: the UUIDv5 of it (stable across retries)."""
    return str(uuid.uuid5(REF_NAMESPACE, client_order_id))


def _dec(value: Any, default: Decimal | None = None) -> Decimal | None:
    if value is None or value == "":
        return default
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return default


def map_state(state: str, *, filled_qty: Decimal) -> str:
    mapped = STATE_MAP.get(state)
    if mapped is None:
        logger.warning("Unknown Robinhood order state %r; treating it as live", state)
        mapped = LIVE
    if mapped == LIVE:
        return "partially_filled" if filled_qty > 0 else "new"
    return mapped


def _our_type(raw: dict) -> str:
    stop = str(raw.get("trigger") or "immediate") == "stop"
    limit = str(raw.get("type") or "market") == "limit"
    if stop:
        return "stop_limit" if limit and raw.get("price") and raw.get("stop_price") else "stop"
    # A market buy goes out as a limit with a collar (preset_percent_limit), as robin-stocks
    # sends it: it is our market order.
    if limit and raw.get("preset_percent_limit") not in (None, ""):
        return "market"
    return "limit" if limit else "market"


def order_from_robinhood(raw: dict, *, client_order_id: str, symbol: str) -> BrokerOrder:
    """Our BrokerOrder for Robinhood's order JSON; its executions are the fills."""
    filled_qty = _dec(raw.get("cumulative_quantity"), Decimal("0"))
    state = str(raw.get("state") or "")
    status = map_state(state, filled_qty=filled_qty)
    fills = []
    for execution in raw.get("executions") or []:
        if not isinstance(execution, dict):
            continue
        qty, price = _dec(execution.get("quantity")), _dec(execution.get("price"))
        if qty is None or price is None or qty <= 0:
            continue
        fills.append(
            Fill(
                qty=qty,
                price=price,
                fee=Decimal("0"),
                executed_at=parse_time(execution.get("timestamp")) or timezone.now(),
                broker_trade_id=str(execution.get("id") or ""),
            )
        )
    order_type = _our_type(raw)
    tif = "day" if raw.get("time_in_force") == "gfd" else str(raw.get("time_in_force") or "day")
    reject_reason = ""
    if status == "rejected":
        reject_reason = str(raw.get("reject_reason") or f"{state} at Robinhood")
    return BrokerOrder(
        client_order_id=client_order_id,
        broker_order_id=str(raw.get("id") or ""),
        symbol=symbol,
        side=str(raw.get("side") or ""),
        type=order_type,
        qty=_dec(raw.get("quantity"), Decimal("0")),
        status=status,
        filled_qty=filled_qty,
        filled_avg_price=_dec(raw.get("average_price")),
        limit_price=_dec(raw.get("price")) if order_type in ("limit", "stop_limit") else None,
        stop_price=_dec(raw.get("stop_price")),
        time_in_force=tif,
        reject_reason=reject_reason,
        submitted_at=parse_time(raw.get("created_at")),
        fills=fills,
    )


def _login_health() -> dict:
    from trading.models import RobinhoodLogin, RobinhoodLoginState

    row = RobinhoodLogin.objects.filter(pk=1).first()
    if row is None:
        return {"ok": True, "state": RobinhoodLoginState.LOGGED_OUT, "detail": ""}
    cooling = row.cooldown_until is not None and row.cooldown_until > timezone.now()
    state = row.state
    if state == RobinhoodLoginState.RATE_LIMITED and not cooling:
        state = RobinhoodLoginState.OK if row.access_token else RobinhoodLoginState.LOGGED_OUT
    ok = state in (RobinhoodLoginState.OK, RobinhoodLoginState.LOGGED_OUT)
    return {
        "ok": ok,
        "state": state,
        "detail": row.detail if not ok else "",
        "cooldown_until": row.cooldown_until.isoformat() if cooling else None,
    }


class RobinhoodBroker(BaseBroker):
    name = "robinhood"

    def __init__(self) -> None:
        from django.conf import settings

        if not settings.ROBINHOOD_USERNAME or not settings.ROBINHOOD_PASSWORD:
            raise ImproperlyConfigured(
                "The robinhood broker needs ROBINHOOD_USERNAME and ROBINHOOD_PASSWORD to be set."
            )
        self.account_number = settings.ROBINHOOD_ACCOUNT_NUMBER
        self.http = RobinhoodHTTP()
        self.auth = RobinhoodAuth(self.http)
        self._account: dict | None = None

    @classmethod
    def health(cls) -> dict:
        return {"name": cls.name, "experimental": True, **_login_health()}

    # -- sync work on the caller's thread (the login row and order refs are database rows) ----

    def _run(self, method, /, *args: Any, **kwargs: Any) -> Any:
        name = method.__name__
        if getattr(method, "__func__", None) is getattr(RobinhoodBroker, name, None):
            return getattr(self, f"_{name}")(*args, **kwargs)
        return super()._run(method, *args, **kwargs)

    async def initialize(self) -> None:
        await sync_to_async(self._get_account)()

    async def get_account(self, *, session_id: int | None = None) -> BrokerAccount:
        return await sync_to_async(self._get_account)(session_id=session_id)

    async def get_positions(self, *, session_id: int | None = None) -> list[BrokerPosition]:
        return await sync_to_async(self._get_positions)(session_id=session_id)

    async def get_orders(
        self, *, status: str = "open", session_id: int | None = None
    ) -> list[BrokerOrder]:
        return await sync_to_async(self._get_orders)(status=status, session_id=session_id)

    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        return await sync_to_async(self._get_order_by_client_id)(client_order_id)

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        return await sync_to_async(self._submit_order)(request)

    async def cancel_order(self, broker_order_id: str) -> None:
        return await sync_to_async(self._cancel_order)(broker_order_id)

    async def get_clock(self) -> BrokerClock:
        return await sync_to_async(self._get_clock)()

    async def get_quote(self, symbol: str) -> dict:
        return await sync_to_async(self._get_quote)(symbol)

    # -- plumbing -----------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, action: str, **kwargs: Any) -> Any:
        """One authenticated call; a 401 drops the token, logs in again and retries once."""
        try:
            return self.http.call(
                method, path, action=action, authorization=self.auth.authorization(), **kwargs
            )
        except Unauthorized:
            authorization = self.auth.after_unauthorized()
        return self.http.call(method, path, action=action, authorization=authorization, **kwargs)

    def _pages(self, path: str, *, action: str, params: dict | None = None) -> list[dict]:
        try:
            return self.http.paginate(
                path, action=action, authorization=self.auth.authorization(), params=params
            )
        except Unauthorized:
            authorization = self.auth.after_unauthorized()
        return self.http.paginate(path, action=action, authorization=authorization, params=params)

    @staticmethod
    def _bad(action: str, what: str) -> BrokerError:
        return BrokerError(
            f"Robinhood answered {action} without {what}",
            permanent=False,
            code="broker_bad_response",
        )

    def _account_row(self) -> dict:
        if self._account is None:
            if self.account_number:
                raw = self._call("GET", f"accounts/{self.account_number}/", action="get_account")
            else:
                rows = self._pages(
                    "accounts/", action="get_account", params={"default_to_all_accounts": "true"}
                )
                raw = rows[0] if rows else None
            if not isinstance(raw, dict) or not raw.get("url") or not raw.get("account_number"):
                raise self._bad("get_account", "an account")
            self._account = raw
        return self._account

    def _symbol_of(self, instrument_url: str) -> str:
        base = self.http.base_url
        symbol = _instrument_symbols.get((base, instrument_url))
        if symbol is None:
            raw = self._call("GET", instrument_url, action="instrument")
            if not isinstance(raw, dict) or not raw.get("symbol"):
                raise self._bad("instrument", "a symbol")
            symbol = str(raw["symbol"])
            _instrument_symbols[(base, instrument_url)] = symbol
            _instrument_urls.setdefault((base, symbol), instrument_url)
        return symbol

    def _instrument_of(self, symbol: str) -> str:
        base = self.http.base_url
        url = _instrument_urls.get((base, symbol))
        if url is None:
            rows = self._call("GET", "instruments/", action="instrument", params={"symbol": symbol})
            results = rows.get("results") if isinstance(rows, dict) else None
            if not isinstance(results, list):
                raise self._bad("instrument", "a results list")
            match = next((r for r in results if isinstance(r, dict) and r.get("url")), None)
            if match is None:
                raise BrokerError(
                    f"unknown symbol {symbol!r} at Robinhood",
                    permanent=True,
                    code="broker_validation_error",
                )
            if match.get("tradeable") is False or match.get("tradability") == "untradable":
                raise BrokerError(
                    f"{symbol} is not tradable at Robinhood",
                    permanent=True,
                    code="broker_validation_error",
                )
            url = str(match["url"])
            _instrument_urls[(base, symbol)] = url
            _instrument_symbols[(base, url)] = symbol
        return url

    # -- the interface ------------------------------------------------------------------------

    def _get_account(self, *, session_id: int | None = None) -> BrokerAccount:
        account = self._account_row()
        self._account = None  # cash moves: read it afresh next time
        number = account["account_number"]
        portfolio = self._call("GET", f"portfolios/{number}/", action="get_account")
        if not isinstance(portfolio, dict):
            raise self._bad("get_account", "a portfolio")
        cash = _dec(account.get("portfolio_cash"), None) or _dec(account.get("cash"), Decimal(0))
        equity = _dec(portfolio.get("extended_hours_equity")) or _dec(portfolio.get("equity"), cash)
        deactivated = account.get("deactivated") or account.get("locked")
        return BrokerAccount(
            cash=cash,
            equity=equity,
            buying_power=_dec(account.get("buying_power"), Decimal("0")),
            currency="USD",
            status="INACTIVE" if deactivated else "ACTIVE",
        )

    def _get_positions(self, *, session_id: int | None = None) -> list[BrokerPosition]:
        params = {"nonzero": "true"}
        if self.account_number:
            params["account_number"] = self.account_number
        positions = []
        for raw in self._pages("positions/", action="get_positions", params=params):
            qty = _dec(raw.get("quantity"), Decimal("0"))
            if not qty:
                continue
            symbol = raw.get("symbol") or self._symbol_of(str(raw.get("instrument") or ""))
            positions.append(
                BrokerPosition(
                    symbol=str(symbol),
                    qty=qty,
                    avg_entry_price=_dec(raw.get("average_buy_price"), Decimal("0")),
                )
            )
        return positions

    def _order(self, raw: dict, refs: dict[str, str] | None = None) -> BrokerOrder:
        """Our view of one order; its client_order_id from our ref table (or `rh-<ref_id>`
        for an order placed elsewhere, e.g. in the app)."""
        from trading.models import RobinhoodOrderRef

        ref_id = str(raw.get("ref_id") or raw.get("id") or "")
        if refs is not None and ref_id in refs:
            client_order_id = refs[ref_id]
        else:
            client_order_id = (
                RobinhoodOrderRef.objects.filter(ref_id=_uuid_or_none(ref_id))
                .values_list("client_order_id", flat=True)
                .first()
            ) or f"rh-{ref_id}"
        symbol = raw.get("symbol") or self._symbol_of(str(raw.get("instrument") or ""))
        return order_from_robinhood(raw, client_order_id=client_order_id, symbol=str(symbol))

    def _list(self, *, since: datetime) -> list[dict]:
        params = {"updated_at[gte]": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")}
        if self.account_number:
            params["account_numbers"] = self.account_number
        return self._pages("orders/", action="get_orders", params=params)

    def _get_orders(
        self, *, status: str = "open", session_id: int | None = None
    ) -> list[BrokerOrder]:
        from trading.models import RobinhoodOrderRef

        if status not in ("open", "closed", "all"):
            raise ValueError(f"status must be open, closed or all, not {status!r}")
        rows = self._list(since=timezone.now() - OPEN_LOOKBACK)
        if status != "all":
            want_open = status == "open"
            rows = [r for r in rows if (r.get("state") in OPEN_STATES) == want_open]
        ids = [u for u in (_uuid_or_none(r.get("ref_id")) for r in rows) if u]
        refs = {
            str(ref): client_id
            for ref, client_id in RobinhoodOrderRef.objects.filter(ref_id__in=ids).values_list(
                "ref_id", "client_order_id"
            )
        }
        return [self._order(raw, refs) for raw in rows]

    def _get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        from trading.models import RobinhoodOrderRef

        ref_id = ref_id_for(client_order_id)
        ref = RobinhoodOrderRef.objects.filter(client_order_id=client_order_id).first()
        if ref is not None and ref.broker_order_id:
            try:
                raw = self._call("GET", f"orders/{ref.broker_order_id}/", action="get_order")
            except BrokerError as exc:
                if exc.code == "order_not_found":
                    return None
                raise
        else:
            since = (ref.created_at if ref else timezone.now() - timedelta(days=2)) - LOOKUP_SLACK
            raw = next((r for r in self._list(since=since) if r.get("ref_id") == ref_id), None)
            if raw is None:
                return None
            if ref is not None and raw.get("id"):
                RobinhoodOrderRef.objects.filter(pk=ref.pk).update(broker_order_id=str(raw["id"]))
        if not isinstance(raw, dict):
            raise self._bad("get_order", "an order")
        return self._order(raw, {ref_id: client_order_id})

    def _get_quote(self, symbol: str) -> dict:
        body = self._call("GET", "quotes/", action="quote", params={"symbols": symbol})
        results = body.get("results") if isinstance(body, dict) else None
        quote = results[0] if isinstance(results, list) and results else None
        if not isinstance(quote, dict):
            raise BrokerError(
                f"no Robinhood quote for {symbol!r}",
                permanent=True,
                code="broker_validation_error",
            )
        return quote

    def _submit_order(self, request: OrderRequest) -> BrokerOrder:
        from trading.models import RobinhoodOrderRef

        payload = self._payload(request)
        ref, _ = RobinhoodOrderRef.objects.get_or_create(
            client_order_id=request.client_order_id, defaults={"ref_id": payload["ref_id"]}
        )
        raw = self._call("POST", "orders/", action="submit_order", data=payload)
        if not isinstance(raw, dict) or not raw.get("id"):
            raise self._bad("submit_order", "an order id")
        RobinhoodOrderRef.objects.filter(pk=ref.pk).update(broker_order_id=str(raw["id"]))
        return order_from_robinhood(
            raw, client_order_id=request.client_order_id, symbol=request.symbol
        )

    def _payload(self, request: OrderRequest) -> dict:
        """robin-stocks' `order()` payload (form-encoded; None values are left out)."""
        if request.type not in ("market", "limit", "stop", "stop_limit"):
            raise BrokerError(
                f"Unsupported order type {request.type!r}",
                permanent=True,
                code="broker_validation_error",
            )
        for name in ("limit_price", "stop_price"):
            needed = (name == "limit_price" and request.type in ("limit", "stop_limit")) or (
                name == "stop_price" and request.type in ("stop", "stop_limit")
            )
            if needed and getattr(request, name) is None:
                raise BrokerError(
                    f"{name} is required", permanent=True, code="broker_validation_error"
                )
        instrument = self._instrument_of(request.symbol)
        account = self._account_row()
        quote = self._get_quote(request.symbol)
        price: Any = request.limit_price
        payload: dict[str, Any] = {
            "account": account["url"],
            "instrument": instrument,
            "symbol": request.symbol,
            "ask_price": quote.get("ask_price"),
            "bid_price": quote.get("bid_price"),
            "bid_ask_timestamp": timezone.now().strftime("%Y-%m-%d %H:%M:%S.%f"),
            "quantity": str(request.qty),
            "ref_id": ref_id_for(request.client_order_id),
            "type": "limit" if request.type in ("limit", "stop_limit") else "market",
            "stop_price": str(request.stop_price) if request.stop_price is not None else None,
            "time_in_force": TIME_IN_FORCE.get(request.time_in_force, "gfd"),
            "trigger": "stop" if request.type in ("stop", "stop_limit") else "immediate",
            "side": request.side,
            "market_hours": "regular_hours",
            "extended_hours": False,
            "order_form_version": 4,
        }
        if request.type == "stop" and request.side == "buy":
            price = request.stop_price
        if request.type == "market":
            price_field = "ask_price" if request.side == "buy" else "bid_price"
            price = quote.get(price_field)
            if request.side == "buy":
                # robin-stocks: a regular-hours market buy is a limit 5% through the ask.
                payload["type"], payload["preset_percent_limit"] = "limit", "0.05"
            else:
                price = None
        payload["price"] = str(price) if price is not None else None
        return {key: value for key, value in payload.items() if value is not None}

    def _cancel_order(self, broker_order_id: str) -> None:
        self._call("POST", f"orders/{broker_order_id}/cancel/", action="cancel_order")

    def _get_clock(self) -> BrokerClock:
        now = timezone.now()
        today = self._call(
            "GET", f"markets/XNYS/hours/{now.astimezone(NEW_YORK):%Y-%m-%d}/", action="get_clock"
        )
        if not isinstance(today, dict):
            raise self._bad("get_clock", "market hours")
        opens, closes = parse_time(today.get("opens_at")), parse_time(today.get("closes_at"))
        trading_day = bool(today.get("is_open")) and opens is not None and closes is not None
        is_open = trading_day and opens <= now < closes
        next_open = opens if trading_day and now < opens else None
        next_close = closes if trading_day and now < closes else None
        if next_open is None or next_close is None:
            following = self._next_open_day(today)
            next_open = next_open or parse_time(following.get("opens_at"))
            next_close = next_close or parse_time(following.get("closes_at"))
        return BrokerClock(
            timestamp=now, is_open=is_open, next_open=next_open, next_close=next_close
        )

    def _next_open_day(self, today: dict) -> dict:
        url = today.get("next_open_hours")
        if not url:
            return {}
        raw = self._call("GET", str(url), action="get_clock")
        return raw if isinstance(raw, dict) else {}


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None
