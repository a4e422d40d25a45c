from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from tradingrobot.api.permissions import HasReadScope
from tradingrobot.api.serializers import HealthSerializer, OverviewSerializer


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - health reports failures, it does not raise them
        return {"ok": False, "error": str(exc)[:200]}


def _check_broker() -> dict:
    """The broker's own state (a live login awaiting approval, a rate-limit cool-down), read
    from our database: health never calls the broker."""
    from trading.brokers import broker_health

    try:
        return broker_health()
    except Exception as exc:  # noqa: BLE001
        return {"name": settings.BROKER, "ok": False, "state": "error", "detail": str(exc)[:200]}


def _check_redis() -> dict:
    from streaming.redis import client

    try:
        client().ping()
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": str(exc)[:200]}


@extend_schema_view(
    get=extend_schema(
        summary="Health of the database, Redis and market data (public)",
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(HealthSerializer, description="The database is down."),
        },
    )
)
class HealthView(APIView):
    """Is the database up, is Redis up, how old is the newest bar, is trading halted, is the
    broker usable (e.g. a Robinhood login waiting for device approval says `degraded`).

    Public for load balancers, but anonymous callers get the overall status only: the details
    (upstream error text with URLs, the provider's breaker, the symbols) need a key or a
    logged-in user with read scope.
    """

    permission_classes = [AllowAny]

    def perform_authentication(self, request) -> None:
        # A bad or revoked key gets the anonymous answer, not a 401: a load balancer's probe
        # must not fail over a key (the failure still counts towards the per-IP throttle).
        try:
            request.user  # noqa: B018 - authenticates
        except AuthenticationFailed:
            request.user, request.auth = AnonymousUser(), None

    def get(self, request):
        from realtime.state import streams_get

        database = _check_database()
        redis = _check_redis()
        market_data: dict = {"last_bar_age_seconds": None, "stale": True}
        halted = None
        broker = {"name": settings.BROKER, "ok": False, "state": "unknown", "detail": ""}
        if database["ok"]:
            broker = _check_broker()
            from marketdata.selectors import last_collected_at
            from trading.selectors import kill_switch_get

            collected = last_collected_at()
            if collected:
                age = (timezone.now() - collected).total_seconds()
                market_data = {
                    "last_bar_age_seconds": round(age, 1),
                    "stale": age > settings.STALE_AFTER_SECONDS,
                }
            # Per-symbol staleness and the provider's circuit breaker (marketdata, issue 4).
            from marketdata.selectors import market_data_health

            market_data.update(market_data_health())
            halted = kill_switch_get().engaged
        ok = database["ok"] and redis["ok"] and broker["ok"]
        status_code = 200 if database["ok"] else 503
        if not HasReadScope().has_permission(request, self):
            return Response({"status": "ok" if ok else "degraded"}, status=status_code)
        body = {
            "status": "ok" if ok else "degraded",
            "database": database,
            "redis": redis,
            "market_data": market_data,
            "halted": halted,
            "broker_state": broker,
            # The `stream` process's connections; a stream that is not live is no outage (the
            # REST fallback carries on), so it does not make the status "degraded".
            "streams": streams_get(),
        }
        return Response(body, status=status_code)


@extend_schema_view(get=extend_schema(summary="Dashboard overview", responses=OverviewSerializer))
class DashboardOverviewView(APIView):
    """Equity, day P&L, open positions, today's trades, active strategies, market and data state."""

    def get(self, request):
        from tradingrobot.api.selectors import overview_get

        return Response(overview_get())
