"""Who may trade. One place, so every interface (API, admin, dashboard) asks the same question
and a later audit hook has one place to record who acted.

- `trading.trade`: submit and cancel orders, halt/flatten/resume, start and stop sessions, run
  strategies (now, backtests), enable/disable them, reload plugins. Given to a user directly or
  through a group (e.g. a "Traders" group). Superusers have every permission.
- `trading.loosen_risk_limits`: start a session whose `risk_limits` are looser than the RISK_*
  settings (a higher cap, a removed limit, shorting allowed, ...). Admin only.
- Staff status alone lets a user sign in to admin and view; it does not let them trade.
- An API key's scope (`read` or `trade`) is its grant; an inactive owner disables the key.
"""

from __future__ import annotations

from django.contrib import admin

TRADE_PERMISSION = "trading.trade"
LOOSEN_RISK_LIMITS_PERMISSION = "trading.loosen_risk_limits"


def user_can_trade(user) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(TRADE_PERMISSION))


def user_can_loosen_risk_limits(user) -> bool:
    return bool(
        user is not None and user.is_active and user.has_perm(LOOSEN_RISK_LIMITS_PERMISSION)
    )


def trade_action(*, description: str):
    """`@admin.action` for an action that changes trading state: shown to and run by users with
    `trading.trade` only (the ModelAdmin must mix in TradeActionsAdmin)."""
    return admin.action(description=description, permissions=["trade"])


class TradeActionsAdmin:
    """ModelAdmin mixin: `has_trade_permission`, the check behind `permissions=["trade"]`."""

    def has_trade_permission(self, request) -> bool:
        return user_can_trade(request.user)
