"""The broker interface. Every broker implements the async methods; sync callers (services, tasks,
admin) use the typed sync methods beside them (`submit`, `order_by_client_id`, `cancel`, ...),
which bridge with `asgiref.sync.async_to_sync`.

Values cross the interface as the small dataclasses below, never as ORM objects or SDK models,
so that services can apply a paper fill and an Alpaca fill with the same bookkeeping.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from asgiref.sync import async_to_sync, sync_to_async

logger = logging.getLogger(__name__)
T = TypeVar("T")


class BrokerError(Exception):
    """A broker refused or failed a call.

    `permanent` tells give-up (a rejection: bad symbol, no buying power) from retry (a timeout,
    a 5xx, a rate limit). `code` is our error code (`insufficient_buying_power`, ...).
    """

    def __init__(self, message: str, *, permanent: bool, code: str = "broker_error") -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    type: str  # "market" | "limit" | "stop" | "stop_limit"
    qty: Decimal
    time_in_force: str = "day"  # "day" | "gtc"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    session_id: int | None = None
    # Protective orders: Alpaca's order_class with its take_profit/stop_loss legs, and the
    # trail of a trailing_stop (one of trail_price, trail_percent).
    order_class: str = "simple"
    take_profit_limit_price: Decimal | None = None
    stop_loss_stop_price: Decimal | None = None
    stop_loss_limit_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None


@dataclass(frozen=True)
class Fill:
    qty: Decimal
    price: Decimal
    fee: Decimal
    executed_at: datetime
    broker_trade_id: str = ""


@dataclass(frozen=True)
class BrokerOrder:
    """The broker's view of one order."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: str
    type: str
    qty: Decimal
    status: str  # one of trading.models.OrderStatus values
    filled_qty: Decimal = Decimal("0")
    filled_avg_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "day"
    reject_reason: str = ""
    submitted_at: datetime | None = None
    # Fills the broker reports with this answer (the paper broker fills market orders at once).
    fills: list[Fill] = field(default_factory=list)
    order_class: str = "simple"
    # "take_profit" / "stop_loss" for a leg (Alpaca's group_role), "" otherwise.
    leg_role: str = ""
    # A broker that runs legs itself reports them nested under their parent.
    legs: list[BrokerOrder] = field(default_factory=list)
    # A trailing stop's high-water (low-water for a buy) mark; its stop_price follows it.
    hwm: Decimal | None = None


@dataclass(frozen=True)
class BrokerAccount:
    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    currency: str = "USD"
    status: str = "ACTIVE"


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    market_value: Decimal | None = None
    unrealized_pl: Decimal | None = None


@dataclass(frozen=True)
class BrokerClock:
    timestamp: datetime
    is_open: bool
    next_open: datetime | None
    next_close: datetime | None


class BaseBroker:
    """What a broker backend implements. `name` is stored on sessions and orders."""

    name = "base"
    # Whether the broker's positions are a truth of their own that reconciliation repairs ours
    # to. The paper broker's positions are our Position rows: nothing to reconcile.
    positions_are_independent = True
    # Dotted path of the broker's order-update stream (realtime.sources.base.StreamSource), or "".
    stream_source = ""
    # Whether the broker runs bracket/OCO/OTO legs itself (activation, one-cancels-other) and
    # reports them nested under their parent. If not (the paper broker), trading.services.legs
    # applies those rules to the legs' states as they are recorded.
    manages_legs = False
    # Whether protective orders (bracket/OCO/OTO classes, trailing stops) work with this broker:
    # run by the broker itself (manages_legs) or by us against its prices (the paper broker). A
    # broker without them refuses such orders before anything is recorded.
    protective_orders = False

    @classmethod
    def health(cls) -> dict:
        """The broker's own state for /status and /health, read without calling the broker (a
        live broker's login, a pending device approval, a rate-limit cool-down). `ok` false
        makes /health say `degraded`; `state` and `detail` say why."""
        return {"name": cls.name, "ok": True, "state": "ok", "detail": ""}

    # --- for synchronous callers: typed, one per interface method ----------------------------

    def submit(self, request: OrderRequest) -> BrokerOrder:
        return self._run(self.submit_order, request)

    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """The broker's order with this client_order_id, or None if it never arrived."""
        return self._run(self.get_order_by_client_id, client_order_id)

    def cancel(self, broker_order_id: str) -> None:
        return self._run(self.cancel_order, broker_order_id)

    def open_orders(self) -> list[BrokerOrder]:
        return self._run(self.get_orders, status="open")

    def positions(self, *, session_id: int | None = None) -> list[BrokerPosition]:
        return self._run(self.get_positions, session_id=session_id)

    def account(self, *, session_id: int | None = None) -> BrokerAccount:
        return self._run(self.get_account, session_id=session_id)

    def orders_after_bars(
        self, client_order_ids: Iterable[str], *, now: datetime
    ) -> Iterator[BrokerOrder]:
        """After each bar collection: the broker's current view of these open orders (ours,
        oldest first), for the caller to record. Yields one at a time, and the caller records
        each before the next is computed. A live broker looks each up (a failed lookup is
        logged and skipped); the paper broker fills resting orders from the new bars instead.
        """
        for client_order_id in client_order_ids:
            try:
                state = self.order_by_client_id(client_order_id)
            except BrokerError as exc:
                logger.warning("could not refresh order %s: %s", client_order_id, exc.message)
                continue
            if state is not None:
                yield state

    def orders_at_price(self, symbol: str, price: Decimal, at: datetime) -> Iterator[BrokerOrder]:
        """A live price arrived (the `stream` process): the states of the orders it moves, for
        the caller to record one at a time. A broker that runs its orders itself reports them
        on its own stream: nothing here. The paper broker's legs and trailing stops react."""
        return iter(())

    def _run(self, method: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Run the interface coroutine `method` from synchronous code.

        A broker whose methods only wrap synchronous work (the paper broker's database reads)
        overrides this to run that work directly, without async_to_sync's two thread hops.
        """
        return async_to_sync(method)(*args, **kwargs)

    # --- the interface: what a broker implements ----------------------------------------------

    async def initialize(self) -> None:
        """Connect and check credentials; called once before first use."""

    async def get_account(self, *, session_id: int | None = None) -> BrokerAccount:
        raise NotImplementedError

    async def get_positions(self, *, session_id: int | None = None) -> list[BrokerPosition]:
        raise NotImplementedError

    async def get_orders(
        self, *, status: str = "open", session_id: int | None = None
    ) -> list[BrokerOrder]:
        raise NotImplementedError

    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """The broker's order with this client_order_id, or None if it never arrived."""
        raise NotImplementedError

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        raise NotImplementedError

    async def cancel_order(self, broker_order_id: str) -> None:
        raise NotImplementedError

    async def get_clock(self) -> BrokerClock:
        raise NotImplementedError


class SyncBroker(BaseBroker):
    """A broker whose work is synchronous (database rows, a blocking HTTP client): it implements
    `_get_account`, `_get_positions`, `_get_orders`, `_get_order_by_client_id`, `_submit_order`,
    `_cancel_order` and `_get_clock`. The async interface hands each to Django's database thread;
    `_run` calls it directly on the caller's thread (inside its transaction), without
    async_to_sync's two thread hops. A subclass that overrides an interface method (e.g. to
    inject faults) still gets its override called."""

    def _run(self, method, /, *args: Any, **kwargs: Any) -> Any:
        name = method.__name__
        if getattr(method, "__func__", None) is _SYNC_INTERFACE.get(name):
            return getattr(self, f"_{name}")(*args, **kwargs)
        return super()._run(method, *args, **kwargs)

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


# SyncBroker's interface methods as defined there, to recognize an override.
_SYNC_INTERFACE = {
    name: getattr(SyncBroker, name)
    for name in (
        "get_account",
        "get_positions",
        "get_orders",
        "get_order_by_client_id",
        "submit_order",
        "cancel_order",
        "get_clock",
    )
}
