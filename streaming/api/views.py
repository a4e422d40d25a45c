from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.response import Response
from rest_framework.views import APIView

from streaming import selectors
from streaming.api.serializers import (
    DashboardSnapshotSerializer,
    TokenRequestSerializer,
    WebSocketTokenSerializer,
)
from streaming.events import iso_utc
from streaming.tokens import token_issue
from trading.models import ApiKey


@extend_schema_view(
    post=extend_schema(
        summary="A short-lived token for /ws/updates?token=",
        request=TokenRequestSerializer,
        responses={201: WebSocketTokenSerializer},
    )
)
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


@extend_schema_view(
    get=extend_schema(
        summary="Everything the dashboard shows, in one read",
        operation_id="dashboard_snapshot",
        parameters=[],
        responses=DashboardSnapshotSerializer,
    )
)
class DashboardSnapshotView(APIView):
    """Everything the dashboard shows, in one read: loaded on (re)connect and after a seq gap."""

    def get(self, request):
        return Response(selectors.dashboard_snapshot())
