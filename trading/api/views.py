from __future__ import annotations

from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from trading import selectors
from trading.api.serializers import PositionSerializer, TradeSerializer


class StatusView(APIView):
    def get(self, request):
        return Response(selectors.status_get())


class TradeListView(generics.ListAPIView):
    serializer_class = TradeSerializer

    def get_queryset(self):
        trades = selectors.trades_list().select_related("order__strategy_config")
        symbol = self.request.query_params.get("symbol")
        return trades.filter(symbol=symbol.upper()) if symbol else trades


class PositionListView(generics.ListAPIView):
    serializer_class = PositionSerializer

    def get_queryset(self):
        return selectors.positions_list()
