"""The built-in paper broker: to brokers what `locmem` is to mail.

It keeps its state in the database (the session's cash and positions) and prices market orders
at the live streamed price (realtime.prices) while it is at most LIVE_PRICE_MAX_AGE_SECONDS old,
else at the latest stored bar's close (`marketdata.selectors.last_price_and_clock`, the lookup
the risk checks use too), plus slippage; they fill at once. An order it cannot afford is
rejected, as a real broker would. Resting orders fill against later bars.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from core import protective
from marketdata import calendar
from trading.brokers.base import (
    BrokerAccount,
    BrokerClock,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
    Fill,
    OrderRequest,
    SyncBroker,
)

CENT = Decimal("0.0001")
SIX = Decimal("0.000001")
BPS = Decimal("10000")


def _session_state(
    session_id: int | None,
) -> tuple[Decimal, dict[str, tuple[Decimal, Decimal, Decimal]]]:
    from trading.models import Position, TradingSession

    session = TradingSession.objects.get(pk=session_id) if session_id else None
    if session is None:
        from trading.selectors import session_current

        session = session_current()
    positions = {
        p.symbol: (p.qty, p.avg_entry_price, p.last_price)
        for p in Position.objects.filter(session=session).exclude(qty=0)
    }
    return session.cash, positions


@dataclass(frozen=True)
class BarMatch:
    price: Decimal | None  # the fill price, or None when the bar does not fill the order
    triggered: bool  # a stop (or stop-limit's stop) has been reached


def _session_cash(session_id: int | None) -> Decimal:
    from trading.models import TradingSession
    from trading.selectors import session_current

    if session_id:
        return TradingSession.objects.values_list("cash", flat=True).get(pk=session_id)
    session = session_current()
    return session.cash if session else Decimal("0")


def _answer(request: OrderRequest, broker_order_id: str, now: datetime, **state) -> BrokerOrder:
    """The paper broker's view of the order it was just sent."""
    state.setdefault("order_class", request.order_class)
    return BrokerOrder(
        client_order_id=request.client_order_id,
        broker_order_id=broker_order_id,
        symbol=request.symbol,
        side=request.side,
        type=request.type,
        qty=request.qty,
        limit_price=request.limit_price,
        stop_price=state.pop("stop_price", request.stop_price),
        time_in_force=request.time_in_force,
        submitted_at=now,
        **state,
    )


def _resting_state(order, **state) -> BrokerOrder:
    """The paper broker's view of a resting order (a row of ours) after a bar or the close."""
    from trading.selectors import broker_order_of

    return replace(broker_order_of(order), **state)


class PaperBroker(SyncBroker):
    name = "paper"
    positions_are_independent = False  # they are our Position rows
    protective_orders = True  # legs and trailing stops matched by paper_exits

    def __init__(self) -> None:
        self.slippage_bps = settings.PAPER_SLIPPAGE_BPS
        self.fee_per_order = settings.PAPER_FEE_PER_ORDER

    def _get_account(self, *, session_id: int | None = None) -> BrokerAccount:
        cash, positions = _session_state(session_id)
        equity = cash + sum((qty * last for qty, _avg, last in positions.values()), Decimal("0"))
        return BrokerAccount(cash=cash, equity=equity, buying_power=max(cash, Decimal("0")))

    def _get_positions(self, *, session_id: int | None = None) -> list[BrokerPosition]:
        _cash, positions = _session_state(session_id)
        return [
            BrokerPosition(
                symbol=symbol,
                qty=qty,
                avg_entry_price=avg,
                market_value=qty * last,
                unrealized_pl=(last - avg) * qty,
            )
            for symbol, (qty, avg, last) in sorted(positions.items())
        ]

    def _get_orders(
        self, *, status: str = "open", session_id: int | None = None
    ) -> list[BrokerOrder]:
        from trading.selectors import broker_orders_from_db

        return broker_orders_from_db(status=status, session_id=session_id)

    def _get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        from trading.selectors import broker_order_from_db

        return broker_order_from_db(client_order_id)

    def _cancel_order(self, broker_order_id: str) -> None:
        # Resting paper orders live only in our database; the service marks them canceled.
        return None

    def _get_clock(self) -> BrokerClock:
        from marketdata.selectors import market_now

        now = market_now()
        return BrokerClock(
            timestamp=now,
            is_open=calendar.is_open(now),
            next_open=calendar.next_open(now),
            next_close=calendar.next_close(now),
        )

    def _submit_order(self, request: OrderRequest) -> BrokerOrder:
        from marketdata.selectors import last_price_and_clock

        price, clock = last_price_and_clock(request.symbol)
        if price is None:
            raise BrokerError(
                f"no price for {request.symbol}", permanent=True, code="unknown_symbol"
            )
        broker_order_id = f"paper-{uuid.uuid4()}"
        now = datetime.now(UTC)
        if request.type == "market" and not clock["market_open"]:
            # Like a real broker's regular-hours order: no fills outside the session.
            raise BrokerError(
                "the market is closed (NYSE calendar)", permanent=True, code="market_closed"
            )
        if request.type == "trailing_stop":
            # The trail starts from the last price: the stop follows the best price from here.
            level = protective.trail_level(
                side=request.side,
                mark=price,
                trail_price=request.trail_price,
                trail_percent=request.trail_percent,
            )
            return _answer(
                request,
                broker_order_id,
                now,
                status="accepted",
                hwm=price,
                stop_price=level.quantize(SIX, rounding=ROUND_HALF_UP),
            )
        if request.type != "market":
            # Resting orders are accepted and filled by later bars (orders_after_bars).
            return _answer(request, broker_order_id, now, status="accepted")
        fill_price = self.fill_price(price, request.side)
        fee = self.fee_per_order
        if request.side == "buy":
            cash = _session_cash(request.session_id)
            cost = fill_price * request.qty + fee
            if cost > cash:
                raise BrokerError(
                    f"insufficient buying power: order costs {cost:.2f}, cash is {cash:.2f}",
                    permanent=True,
                    code="insufficient_buying_power",
                )
        return _answer(
            request,
            broker_order_id,
            now,
            status="filled",
            filled_qty=request.qty,
            filled_avg_price=fill_price,
            fills=[Fill(qty=request.qty, price=fill_price, fee=fee, executed_at=now)],
        )

    def orders_after_bars(
        self, client_order_ids: Iterable[str], *, now: datetime
    ) -> Iterator[BrokerOrder]:
        """Fill resting limit/stop orders against the bars that started after they were accepted
        (the first bar that crosses them), and expire day orders at the close.

        Each state is yielded before the next order is matched, so a buy's cash check sees the
        fills recorded before it.
        """
        from trading.brokers import paper_exits as exits
        from trading.models import Order, OrderStatus

        resting = Order.objects.filter(
            client_order_id__in=list(client_order_ids),
            status__in=(OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED),
            market_time__isnull=False,
        ).order_by("created_at")
        seen_groups: set = set()
        for order in resting:
            state = None
            if exits.is_exit_order(order):
                # The exits of one group are matched together, bar by bar: one fills.
                group = order.parent_id or order.pk
                if group not in seen_groups:
                    seen_groups.add(group)
                    state = exits.match_exit_bars(self, order)
            else:
                state = self._match_bars(order)
            if state is not None:
                yield state
            order.refresh_from_db()
            if order.is_open and order.expires_at is not None and order.expires_at <= now:
                yield _resting_state(
                    order, status="expired", reject_reason="day order expired at the close"
                )

    def orders_at_price(self, symbol: str, price: Decimal, at: datetime) -> Iterator[BrokerOrder]:
        """Legs and trailing stops against a live price (a one-price path: the same rules as a
        bar, core.protective). Plain resting limit/stop orders wait for the bar, as before."""
        from trading.brokers import paper_exits

        return paper_exits.exits_at_price(self, symbol, price, at)

    def _match_bars(self, order) -> BrokerOrder | None:
        """The order's state after the bars it has not seen yet, or None when none fills it.
        Which bar it has seen last (and whether its stop triggered) is kept on the order row."""
        from marketdata.models import Bar
        from trading.models import Order

        bars = Bar.objects.filter(
            symbol=order.symbol, timeframe="5Min", timestamp__gte=order.market_time
        ).order_by("timestamp")
        if order.expires_at is not None:
            bars = bars.filter(timestamp__lt=order.expires_at)
        for bar in bars:
            match = self.match_bar(
                side=order.side,
                type=order.type,
                limit_price=order.limit_price,
                stop_price=order.stop_price,
                stop_triggered=order.stop_triggered,
                bar=bar,
            )
            Order.objects.filter(pk=order.pk).update(
                market_time=bar.timestamp + calendar.BAR, stop_triggered=match.triggered
            )
            order.stop_triggered = match.triggered
            if match.price is not None:
                return self._fill(order, match.price, bar.timestamp + calendar.BAR)
        return None

    def _fill(self, order, price: Decimal, executed_at: datetime) -> BrokerOrder:
        """The whole rest of the order at `price`, or a cancel when a buy cannot be paid."""
        remaining = order.qty - order.filled_qty
        fee = self.fee_per_order if order.filled_qty == 0 else Decimal("0")
        if order.side == "buy":
            cash = _session_cash(order.session_id)
            if remaining * price + fee > cash:
                return _resting_state(
                    order,
                    status="canceled",
                    reject_reason=f"insufficient_buying_power: fill at {price} needs "
                    f"{remaining * price + fee:.2f}, cash is {cash:.2f}",
                )
        return _resting_state(
            order,
            status="filled",
            filled_qty=order.qty,
            filled_avg_price=price,
            fills=[Fill(qty=remaining, price=price, fee=fee, executed_at=executed_at)],
        )

    def fill_price(self, price: Decimal, side: str) -> Decimal:
        slip = price * self.slippage_bps / BPS
        filled = price + slip if side == "buy" else price - slip
        return filled.quantize(CENT, rounding=ROUND_HALF_UP)

    def match_bar(
        self,
        *,
        side: str,
        type: str,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        stop_triggered: bool,
        bar,
    ) -> BarMatch:
        """Does this bar fill a resting order, and at what price?

        Limit orders fill at their limit, or at the open when the bar opens through it (a price
        improvement a real book gives too). Stop orders become market orders when the bar reaches
        the stop and fill at the stop, or the open if it gapped past it, plus slippage. A
        stop-limit's stop triggers first; it then fills like a limit order in the same bar when
        the limit is still reachable, else it rests as a limit order.
        """
        buy = side == "buy"
        open_, high, low = Decimal(bar.open), Decimal(bar.high), Decimal(bar.low)
        triggered = stop_triggered
        if type in ("stop", "stop_limit") and not triggered:
            triggered = high >= stop_price if buy else low <= stop_price
            if not triggered:
                return BarMatch(None, False)
            if type == "stop":
                base = max(stop_price, open_) if buy else min(stop_price, open_)
                return BarMatch(self.fill_price(base, side), True)
            start = max(stop_price, open_) if buy else min(stop_price, open_)
            if (buy and start <= limit_price) or (not buy and start >= limit_price):
                return BarMatch(start.quantize(CENT, rounding=ROUND_HALF_UP), True)
            # After the trigger the price may still come back to the limit within the bar.
            reached = low <= limit_price if buy else high >= limit_price
            return BarMatch(limit_price if reached else None, True)
        if type in ("limit", "stop_limit"):
            if buy and low <= limit_price:
                return BarMatch(min(limit_price, open_), triggered)
            if not buy and high >= limit_price:
                return BarMatch(max(limit_price, open_), triggered)
        return BarMatch(None, triggered)
