"""Scopes: an API key is `read` or `trade` (trade includes read). A logged-in dashboard user
(session) may read; users with the `trading.trade` permission (directly, through a group, or as
superuser) may also trade. Staff status alone is not a grant (trading.permissions)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from trading.models import ApiKey, ApiScope
from trading.permissions import user_can_trade


def _scope(request) -> str | None:
    if isinstance(request.auth, ApiKey):
        return request.auth.scope
    user = request.user
    if user is not None and user.is_authenticated:
        return ApiScope.TRADE if user_can_trade(user) else ApiScope.READ
    return None


class HasReadScope(BasePermission):
    message = "This API key is not allowed to read."

    def has_permission(self, request, view) -> bool:
        return _scope(request) in (ApiScope.READ, ApiScope.TRADE)


class HasTradeScope(BasePermission):
    message = "This API key is read-only; trading needs the 'trade' scope."

    def has_permission(self, request, view) -> bool:
        return _scope(request) == ApiScope.TRADE
