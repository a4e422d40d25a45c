"""Thin views: parse with a serializer, call a service or selector, render with a serializer."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from trading import selectors, services
from trading.api.serializers import (
    AccountSerializer,
    HaltResultSerializer,
    KillSwitchSerializer,
    OrderFilterSerializer,
    OrderSerializer,
    OrderSubmitSerializer,
    PortfolioSerializer,
    PositionSerializer,
    SessionSerializer,
    SessionStartSerializer,
    SessionStopSerializer,
    StopTradingSerializer,
    TradeSerializer,
)
from trading.brokers.base import BrokerError
from trading.exceptions import BrokerUnavailable, NotFound
from trading.models import OrderSource, TradingSession
from tradingrobot.api import cache
from tradingrobot.api.permissions import HasReadScope, HasTradeScope


def _actor(request) -> str:
    return str(request.user)[:150]


def _order_source(request) -> str:
    """The WordPress plugin labels its calls `X-TRP-Source: wordpress`; anything else is "api"."""
    label = request.headers.get("X-TRP-Source", "").strip().lower()
    return OrderSource.WORDPRESS if label == OrderSource.WORDPRESS else OrderSource.API


class StatusView(APIView):
    """The robot's state. Cached per process for API_STATUS_CACHE_SECONDS (1) at most, and
    invalidated by every save of the kill switch, a session or an order, so a halt shows at once;
    new bars and the exchange clock show within the interval."""

    def stamp_keys(self) -> list[str]:
        return [cache.stamp_key(cache.STATUS)]

    def get(self, request):
        return cache.serve(
            self,
            request,
            seconds=settings.API_STATUS_CACHE_SECONDS,
            build=lambda: Response(selectors.status_get()),
        )


class TradeListView(generics.ListAPIView):
    """Fills, newest first. Cached per process (each URL apart: filters, pages) until the next
    fill or strategy rename, and API_RESPONSE_CACHE_SECONDS (30) at most."""

    serializer_class = TradeSerializer

    def stamp_keys(self) -> list[str]:
        return [cache.stamp_key(cache.TRADES)]

    def get(self, request, *args, **kwargs):
        return cache.serve(
            self,
            request,
            seconds=settings.API_RESPONSE_CACHE_SECONDS,
            build=lambda: self.list(request, *args, **kwargs),
        )

    def get_queryset(self):
        trades = selectors.trades_list().select_related("order__strategy_config")
        symbol = self.request.query_params.get("symbol")
        return trades.filter(symbol=symbol.upper()) if symbol else trades


class TradeDetailView(generics.RetrieveAPIView):
    """GET trades/{id}: one fill."""

    serializer_class = TradeSerializer

    def get_object(self):
        trade_id = self.kwargs["trade_id"]
        found = None
        if trade_id.isascii() and trade_id.isdigit() and len(trade_id) <= 18:
            found = selectors.trades_list().select_related("order__strategy_config")
            found = found.filter(pk=int(trade_id)).first()
        if found is None:
            raise NotFound(f"no trade {trade_id!r}", details={"id": trade_id})
        return found


class PositionListView(generics.ListAPIView):
    serializer_class = PositionSerializer

    def get_queryset(self):
        return selectors.positions_list()


class AccountInfoView(generics.GenericAPIView):
    serializer_class = AccountSerializer

    def get(self, request):
        try:
            account = selectors.account_get()
        except BrokerError as exc:
            raise BrokerUnavailable(f"the broker could not be reached: {exc.message}") from exc
        return Response(self.get_serializer(account).data)


class PortfolioView(generics.GenericAPIView):
    serializer_class = PortfolioSerializer

    def get(self, request):
        return Response(self.get_serializer(selectors.portfolio_get()).data)


class OrderListView(generics.ListAPIView):
    """GET orders?status=filled&status=canceled&symbol=SPY&start=2024-01-02&end=2024-01-03"""

    serializer_class = OrderSerializer

    def get_queryset(self) -> QuerySet:
        params = self.request.query_params
        data = {key: params.get(key) for key in ("symbol", "start", "end") if params.get(key)}
        statuses = [s for value in params.getlist("status") for s in value.split(",") if s]
        if statuses:
            data["status"] = statuses
        filters = OrderFilterSerializer(data=data)
        filters.is_valid(raise_exception=True)
        values = filters.validated_data
        return selectors.orders_filtered(
            statuses=sorted(values.get("status") or []),
            symbol=values.get("symbol"),
            start=values.get("start"),
            end=values.get("end"),
        )


class OrderSubmitView(generics.GenericAPIView):
    """POST orders/submit: 201 with the new order, 200 with the existing one for a known
    client_order_id."""

    serializer_class = OrderSubmitSerializer
    permission_classes = [HasTradeScope]

    @extend_schema(
        responses={
            201: OpenApiResponse(OrderSerializer, description="Order created and sent."),
            200: OpenApiResponse(OrderSerializer, description="Known client_order_id: that order."),
        }
    )
    def post(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.order_submit(**body.validated_data, source=_order_source(request))
        # The event payload has OrderSerializer's exact shape (tests hold them equal) at a
        # hundredth of its cost, on the one route where every millisecond is an order's latency.
        return Response(
            selectors.order_payload(result.order),
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class OrderDetailView(generics.GenericAPIView):
    """GET orders/{id} (id or client_order_id); DELETE cancels it (trade scope)."""

    serializer_class = OrderSerializer

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [HasTradeScope()]
        return [HasReadScope()]

    def _order(self, order_id: str):
        order = selectors.order_get(order_id)
        if order is None:
            raise NotFound(f"no order {order_id!r}", details={"id": order_id})
        return order

    def get(self, request, order_id: str):
        return Response(self.get_serializer(self._order(order_id)).data)

    @extend_schema(responses={200: OpenApiResponse(OrderSerializer, description="Canceled.")})
    def delete(self, request, order_id: str):
        order = services.order_cancel(
            order=self._order(order_id), reason=f"canceled via API by {_actor(request)}"
        )
        return Response(self.get_serializer(order).data)


class StopTradingView(generics.GenericAPIView):
    """POST stop_trading {"reason", "flatten"}: engage the kill switch."""

    serializer_class = StopTradingSerializer
    permission_classes = [HasTradeScope]

    def post(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.trading_halt(
            reason=body.validated_data["reason"] or f"stopped via API by {_actor(request)}",
            by=_actor(request),
            flatten=body.validated_data["flatten"],
        )
        data = {
            "halted": True,
            "reason": result.switch.reason,
            "changed_at": result.switch.changed_at,
            "canceled_orders": [str(o.pk) for o in result.canceled],
            "cancel_failed": result.cancel_failed,
            "filled_orders": [str(o.pk) for o in result.filled],
            "flatten_orders": result.flatten_orders,
            "flatten_failed": result.flatten_failed,
        }
        return Response(HaltResultSerializer(data).data)


class ResumeTradingView(generics.GenericAPIView):
    serializer_class = KillSwitchSerializer
    permission_classes = [HasTradeScope]

    def post(self, request):
        switch = services.trading_resume(by=_actor(request))
        return Response(self.get_serializer(switch).data)


class SessionListView(generics.ListAPIView):
    serializer_class = SessionSerializer

    def get_queryset(self):
        return selectors.sessions_list()


class SessionStartView(generics.GenericAPIView):
    serializer_class = SessionStartSerializer
    permission_classes = [HasTradeScope]

    @extend_schema(responses={201: SessionSerializer})
    def post(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        session = services.session_start(**body.validated_data)
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionStopView(generics.GenericAPIView):
    serializer_class = SessionStopSerializer
    permission_classes = [HasTradeScope]

    def post(self, request, session_id: str):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        session = TradingSession.objects.filter(pk=session_id).first()
        if session is None:
            raise NotFound(f"no session {session_id!r}", details={"id": session_id})
        session = services.session_stop(
            session=session,
            reason=body.validated_data["reason"] or f"stopped via API by {_actor(request)}",
        )
        return Response(SessionSerializer(session).data)
