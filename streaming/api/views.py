from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from streaming import selectors
from streaming.events import iso_utc
from streaming.tokens import token_issue
from trading.models import ApiKey


class TokenRequestSerializer(serializers.Serializer):
    user_id = serializers.CharField(required=False, max_length=150, allow_blank=True)


class WebSocketTokenView(APIView):
    """A signed, short-lived token for /ws/updates?token=, bound to the caller."""

    def post(self, request):
        body = TokenRequestSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        key = request.auth if isinstance(request.auth, ApiKey) else None
        user_id = request.user.pk if getattr(request.user, "pk", None) else None
        token = token_issue(
            key_id=key.id if key else None,
            user_id=user_id,
            subject=body.validated_data.get("user_id") or None,
        )
        return Response({"token": token.token, "expires_at": iso_utc(token.expires_at)}, status=201)


class DashboardSnapshotView(APIView):
    """Everything the dashboard shows, in one read: loaded on (re)connect and after a seq gap."""

    def get(self, request):
        return Response(selectors.dashboard_snapshot())


class ChartQuerySerializer(serializers.Serializer):
    symbol = serializers.RegexField(r"^[A-Za-z.\-]{1,16}$")
    timeframe = serializers.ChoiceField(choices=["1Min", "5Min", "15Min", "1Hour", "1Day"])
    days = serializers.IntegerField(min_value=1, max_value=60, default=5)


class DashboardChartView(APIView):
    """The dashboard's fallback for GET /api/v1/chart-data (owned by marketdata), same shape."""

    def get(self, request):
        query = ChartQuerySerializer(data={"timeframe": "5Min", **request.query_params.dict()})
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return Response(
            selectors.chart_bars(
                symbol=data["symbol"].upper(), timeframe=data["timeframe"], days=data["days"]
            )
        )
