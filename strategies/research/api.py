"""Thin views over strategies.research.services / selectors."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from strategies import selectors as strategy_selectors
from strategies.research import selectors, services
from strategies.research.models import ResearchRun, RunKind, RunStatus
from trading.models import ApiKey


def principal_of(request) -> services.Principal:
    key = request.auth if isinstance(request.auth, ApiKey) else None
    user = request.user if getattr(request.user, "is_authenticated", False) else None
    return services.Principal(user=None if key else user, key=key)


def run_url(request, run: ResearchRun) -> str:
    namespace = request.resolver_match.namespace if request.resolver_match else "v1"
    return request.build_absolute_uri(reverse(f"{namespace}:research-run", args=[run.pk]))


class ResearchRunSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = ResearchRun
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "config",
            "plugin",
            "requested_by",
            "inputs",
            "progress",
            "message",
            "error",
            "cancel_requested",
            "created_at",
            "started_at",
            "finished_at",
            "seconds",
        ]
        read_only_fields = fields

    def get_url(self, run: ResearchRun) -> str:
        return run_url(self.context["request"], run)


class ResearchRunDetailSerializer(ResearchRunSerializer):
    result = serializers.JSONField(read_only=True, allow_null=True)

    class Meta(ResearchRunSerializer.Meta):
        fields = [*ResearchRunSerializer.Meta.fields, "result"]
        read_only_fields = fields


class BacktestRequestSerializer(serializers.Serializer):
    """Shape only; the research service checks every value and names the field it refuses."""

    days = serializers.JSONField(required=True)
    end = serializers.JSONField(
        required=False, help_text="ISO-8601 date or datetime the window ends at; default: now"
    )
    symbols = serializers.JSONField(required=False)
    params = serializers.JSONField(required=False)
    initial_cash = serializers.JSONField(required=False)
    fee_bps = serializers.JSONField(required=False)
    fee_per_trade = serializers.JSONField(required=False)
    slippage_bps = serializers.JSONField(required=False)


class OptimizeRequestSerializer(BacktestRequestSerializer):
    grid = serializers.JSONField(help_text='e.g. {"fast": {"start": 5, "stop": 50, "step": 5}}')
    constraints = serializers.JSONField(required=False, help_text='e.g. ["fast < slow"]')
    objective = serializers.JSONField(required=False)
    min_trades = serializers.JSONField(required=False)
    walk_forward = serializers.JSONField(
        required=False, help_text='{"train_days", "test_days", "anchored"}'
    )


class ResearchSubmitSerializer(OptimizeRequestSerializer):
    kind = serializers.ChoiceField(choices=["backtest", "optimize"], required=False)
    plugin = serializers.CharField(help_text="a loaded strategy plugin's name")
    symbols = serializers.JSONField(help_text='e.g. ["SPY"]')
    grid = serializers.JSONField(required=False, help_text="optimize only")


def _accepted(request, run: ResearchRun) -> Response:
    url = run_url(request, run)
    body = ResearchRunSerializer(run, context={"request": request}).data
    return Response(body, status=202, headers={"Location": url})


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationError({"body": ["Expected a JSON object."]})
    return dict(request.data)


QUEUED = {
    202: OpenApiResponse(
        ResearchRunSerializer, description="Queued; `url` (and Location) is the run."
    )
}


class _StrategyRunView(generics.GenericAPIView):
    # POST a run of one kind for a strategy config: 202 with the run's URL (no docstring: it
    # would become every subclass's OpenAPI description).

    kind: str

    def post(self, request, id):
        config = strategy_selectors.strategy_config_get(id)
        self.get_serializer(data=_body(request)).is_valid(raise_exception=True)
        run = services.run_submit(
            kind=self.kind, body=_body(request), principal=principal_of(request), config=config
        )
        return _accepted(request, run)


@extend_schema_view(post=extend_schema(request=BacktestRequestSerializer, responses=QUEUED))
class StrategyBacktestJobView(_StrategyRunView):
    """POST strategies/{id}/backtest: 202 with the run's URL; the backtest runs in the
    research worker."""

    serializer_class = BacktestRequestSerializer
    kind = RunKind.BACKTEST


@extend_schema_view(post=extend_schema(request=OptimizeRequestSerializer, responses=QUEUED))
class StrategyOptimizeView(_StrategyRunView):
    serializer_class = OptimizeRequestSerializer
    kind = RunKind.OPTIMIZE


class ResearchRunListView(generics.ListAPIView):
    serializer_class = ResearchRunSerializer
    filter_backends: list = []

    def get_queryset(self):
        status = self.request.query_params.get("status")
        kind = self.request.query_params.get("kind")
        for name, value, allowed in (
            ("status", status, RunStatus.values),
            ("kind", kind, RunKind.values),
        ):
            if value and any(v not in allowed for v in value.split(",")):
                raise ValidationError({name: [f"Expected one or more of {', '.join(allowed)}."]})
        return selectors.runs_list(status=status, kind=kind)

    @extend_schema(
        request=ResearchSubmitSerializer,
        responses={202: OpenApiResponse(ResearchRunSerializer, description="Queued.")},
    )
    def post(self, request):
        """`{"kind": "backtest"|"optimize", "plugin", ...}` without a saved config (the research
        page's form); 202 with the run's URL."""
        body = _body(request)
        kind = body.pop("kind", RunKind.BACKTEST)
        if kind not in (RunKind.BACKTEST, RunKind.OPTIMIZE):
            raise ValidationError({"kind": ["Expected 'backtest' or 'optimize'."]})
        if kind == RunKind.BACKTEST:
            for key in ("grid", "constraints", "objective", "min_trades", "walk_forward"):
                body.pop(key, None)
        run = services.run_submit(kind=kind, body=body, principal=principal_of(request))
        return _accepted(request, run)


class ResearchRunDetailView(generics.GenericAPIView):
    serializer_class = ResearchRunDetailSerializer

    def get(self, request, id):
        return Response(self.get_serializer(selectors.run_get(id)).data)


class ResearchRunCancelView(generics.GenericAPIView):
    serializer_class = ResearchRunSerializer

    def post(self, request, id):
        run = services.run_cancel(run=selectors.run_get(id), principal=principal_of(request))
        return Response(self.get_serializer(run).data)


class StrategyIndicatorsView(generics.GenericAPIView):
    """GET strategies/{id}/indicators?symbol=SPY&limit=500: the config's indicator lines over the
    symbol's newest bars (what the dashboard draws over its candles)."""

    serializer_class = serializers.Serializer

    @extend_schema(
        parameters=[
            OpenApiParameter("symbol", str, required=True),
            OpenApiParameter("limit", int, required=False, description="bars, 1-2000 (500)"),
        ],
        responses={200: OpenApiResponse(description="{config_id, plugin, symbol, lines}")},
    )
    def get(self, request, id):
        config = strategy_selectors.strategy_config_get(id)
        symbol = request.query_params.get("symbol", "")
        raw_limit = request.query_params.get("limit", "500")
        if not (raw_limit.isascii() and raw_limit.isdigit()) or len(raw_limit) > 6:
            raise ValidationError({"limit": ["Expected an integer from 1 to 2000."]})
        return Response(
            services.indicator_lines(config=config, symbol=symbol, limit=int(raw_limit))
        )
