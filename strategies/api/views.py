"""Thin views over strategies.services / strategies.selectors."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.response import Response

from strategies import registry, selectors, services
from strategies.api import serializers as s
from tradingrobot.api.permissions import HasTradeScope


@extend_schema_view(get=extend_schema(operation_id="strategies_list"))
class StrategyListView(generics.GenericAPIView):
    serializer_class = s.StrategyListSerializer

    def get(self, request):
        configs = s.StrategyConfigSerializer(selectors.strategy_configs_list(), many=True).data
        return Response({"strategies": configs, "plugins": registry.plugins_describe()})


@extend_schema_view(get=extend_schema(operation_id="strategies_detail"))
class StrategyDetailView(generics.GenericAPIView):
    serializer_class = s.StrategyConfigSerializer

    def get(self, request, id):
        return Response(self.get_serializer(selectors.strategy_config_get(id)).data)


class StrategyExecuteView(generics.GenericAPIView):
    serializer_class = s.ExecuteResultSerializer
    permission_classes = [HasTradeScope]

    def post(self, request, id):
        config = selectors.strategy_config_get(id)
        decisions = services.strategy_run_now(config=config)
        return Response(
            {
                "strategy": s.StrategyConfigSerializer(config).data,
                "decisions": [asdict(d) for d in decisions],
            }
        )


class StrategyReloadView(generics.GenericAPIView):
    serializer_class = s.PluginListSerializer
    permission_classes = [HasTradeScope]

    def post(self, request):
        return Response({"plugins": services.strategies_reload()})


class PerformanceView(generics.GenericAPIView):
    serializer_class = s.PerformanceSerializer

    def get(self, request):
        from trading.selectors import session_current, session_latest

        session = session_current() or session_latest()
        return Response(selectors.performance_for_session(session))
