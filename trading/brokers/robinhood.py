"""The Robinhood broker — EXPERIMENTAL, over Robinhood's UNOFFICIAL API (no public trading API
exists; Robinhood may change or block it at any time, and bursts of calls lock accounts).

Which client: a small adapter over `requests` that calls the endpoints the way the well-kept
`robin-stocks` package (3.4) does, not robin-stocks itself. robin-stocks logs in with input()
and getpass() prompts and a two-minute polling loop when Robinhood asks for device approval,
stores its tokens as a pickle in ~/.tokens, keeps one global session without timeouts on GETs
or a size cap, and swallows HTTP errors into `None`; none of that fits a server process. The
adapter (`robinhood_http`, `robinhood_auth`, `robinhood_orders`, this module) keeps its
payloads and endpoints and adds what the project requires of every outbound call (core.http),
pacing and cool-downs against lockouts, encrypted token storage in the database, and device
approval reported in /status and /health instead of prompting.

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
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Min
from django.utils import timezone

from core.times import parse_iso_utc
from trading.brokers.base import (
    BrokerAccount,
    BrokerClock,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
    OrderRequest,
    SyncBroker,
)
from trading.brokers.robinhood_auth import RobinhoodAuth
from trading.brokers.robinhood_http import RobinhoodHTTP, Unauthorized
from trading.brokers.robinhood_orders import (
    OPEN_STATES,
    check_request,
    order_from_robinhood,
    order_payload,
    ref_id_for,
    to_decimal,
    uuid_or_none,
)

logger = logging.getLogger("trading.brokers.robinhood")

NEW_YORK = ZoneInfo("America/New_York")
# Open gtc orders live up to 90 days at Robinhood; listings look this far back.
OPEN_LOOKBACK = timedelta(days=92)
# A ref_id is searched among orders updated since shortly before its row was written.
LOOKUP_SLACK = timedelta(minutes=10)
# (API URL, symbol) <-> (API URL, instrument URL); instruments do not change: a process keeps them.
_instrument_urls: dict[tuple[str, str], str] = {}
_instrument_symbols: dict[tuple[str, str], str] = {}


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


class RobinhoodBroker(SyncBroker):
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

    # The work is synchronous (the login row and order refs are database rows): SyncBroker.

    async def initialize(self) -> None:
        await sync_to_async(self._get_account)()

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
        cash = to_decimal(account.get("portfolio_cash"), None) or to_decimal(
            account.get("cash"), Decimal(0)
        )
        equity = to_decimal(portfolio.get("extended_hours_equity")) or to_decimal(
            portfolio.get("equity"), cash
        )
        deactivated = account.get("deactivated") or account.get("locked")
        return BrokerAccount(
            cash=cash,
            equity=equity,
            buying_power=to_decimal(account.get("buying_power"), Decimal("0")),
            currency="USD",
            status="INACTIVE" if deactivated else "ACTIVE",
        )

    def _get_positions(self, *, session_id: int | None = None) -> list[BrokerPosition]:
        params = {"nonzero": "true"}
        if self.account_number:
            params["account_number"] = self.account_number
        positions = []
        for raw in self._pages("positions/", action="get_positions", params=params):
            qty = to_decimal(raw.get("quantity"), Decimal("0"))
            if not qty:
                continue
            symbol = raw.get("symbol") or self._symbol_of(str(raw.get("instrument") or ""))
            positions.append(
                BrokerPosition(
                    symbol=str(symbol),
                    qty=qty,
                    avg_entry_price=to_decimal(raw.get("average_buy_price"), Decimal("0")),
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
                RobinhoodOrderRef.objects.filter(ref_id=uuid_or_none(ref_id))
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
        ids = [u for u in (uuid_or_none(r.get("ref_id")) for r in rows) if u]
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

    def orders_after_bars(
        self, client_order_ids: Iterable[str], *, now: datetime
    ) -> Iterator[BrokerOrder]:
        """One listing of the orders updated since the oldest of ours was sent, instead of one
        call per open order (fewer calls, less lockout risk); an order the listing misses is
        looked up alone."""
        from trading.models import RobinhoodOrderRef

        wanted = list(client_order_ids)
        if not wanted:
            return
        refs = dict(
            RobinhoodOrderRef.objects.filter(client_order_id__in=wanted).values_list(
                "ref_id", "client_order_id"
            )
        )
        listed: dict[str, dict] = {}
        if refs:
            oldest = RobinhoodOrderRef.objects.filter(ref_id__in=list(refs)).aggregate(
                oldest=Min("created_at")
            )["oldest"]
            try:
                rows = self._list(since=oldest - LOOKUP_SLACK)
            except BrokerError as exc:
                logger.warning("could not list Robinhood orders: %s", exc.message)
                return
            by_ref = {str(ref): client_id for ref, client_id in refs.items()}
            for raw in rows:
                client_id = by_ref.get(str(raw.get("ref_id")))
                if client_id is not None:
                    listed[client_id] = raw
        for client_order_id in wanted:
            raw = listed.get(client_order_id)
            try:
                if raw is not None:
                    yield self._order(raw, {ref_id_for(client_order_id): client_order_id})
                    continue
                state = self._get_order_by_client_id(client_order_id)
            except BrokerError as exc:
                logger.warning("could not refresh order %s: %s", client_order_id, exc.message)
                continue
            if state is not None:
                yield state

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
        check_request(request)
        instrument_url = self._instrument_of(request.symbol)  # an unknown symbol fails first
        account_url = self._account_row()["url"]
        quote = self._get_quote(request.symbol)
        return order_payload(
            request, account_url=account_url, instrument_url=instrument_url, quote=quote
        )

    def _cancel_order(self, broker_order_id: str) -> None:
        self._call("POST", f"orders/{broker_order_id}/cancel/", action="cancel_order")

    def _get_clock(self) -> BrokerClock:
        now = timezone.now()
        today = self._call(
            "GET", f"markets/XNYS/hours/{now.astimezone(NEW_YORK):%Y-%m-%d}/", action="get_clock"
        )
        if not isinstance(today, dict):
            raise self._bad("get_clock", "market hours")
        opens, closes = parse_iso_utc(today.get("opens_at")), parse_iso_utc(today.get("closes_at"))
        trading_day = bool(today.get("is_open")) and opens is not None and closes is not None
        is_open = trading_day and opens <= now < closes
        next_open = opens if trading_day and now < opens else None
        next_close = closes if trading_day and now < closes else None
        if next_open is None or next_close is None:
            following = self._next_open_day(today)
            next_open = next_open or parse_iso_utc(following.get("opens_at"))
            next_close = next_close or parse_iso_utc(following.get("closes_at"))
        return BrokerClock(
            timestamp=now, is_open=is_open, next_open=next_open, next_close=next_close
        )

    def _next_open_day(self, today: dict) -> dict:
        url = today.get("next_open_hours")
        if not url:
            return {}
        raw = self._call("GET", str(url), action="get_clock")
        return raw if isinstance(raw, dict) else {}
