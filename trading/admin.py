from __future__ import annotations

from django.contrib import admin, messages
from rest_framework_api_key.admin import APIKeyModelAdmin

from trading import services
from trading.models import (
    ApiKey,
    EquitySnapshot,
    KillSwitch,
    Order,
    Position,
    Trade,
    TradingSession,
)


@admin.register(TradingSession)
class TradingSessionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "mode",
        "broker",
        "status",
        "starting_cash",
        "cash",
        "started_at",
        "stopped_at",
    ]
    list_filter = ["status", "mode"]
    readonly_fields = ["cash", "started_at", "stopped_at"]
    actions = ["stop_sessions"]

    @admin.action(description="Stop the selected sessions (cancels their open orders)")
    def stop_sessions(self, request, queryset):
        for session in queryset:
            services.session_stop(session=session, reason=f"stopped in admin by {request.user}")
        self.message_user(request, f"Stopped {queryset.count()} session(s).", messages.SUCCESS)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "symbol",
        "side",
        "type",
        "qty",
        "status",
        "filled_qty",
        "filled_avg_price",
        "source",
        "client_order_id",
    ]
    list_filter = ["status", "source", "side", "type", "symbol"]
    search_fields = ["client_order_id", "broker_order_id", "symbol"]
    readonly_fields = [f.name for f in Order._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Trade)
class TradeAdmin(admin.ModelAdmin):
    list_display = ["executed_at", "symbol", "side", "qty", "price", "fee", "realized_pnl"]
    list_filter = ["symbol", "side"]
    readonly_fields = [f.name for f in Trade._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Position)
class PositionAdmin(admin.ModelAdmin):
    list_display = ["session", "symbol", "qty", "avg_entry_price", "last_price", "realized_pnl"]
    list_filter = ["session", "symbol"]
    readonly_fields = [f.name for f in Position._meta.fields]


@admin.register(EquitySnapshot)
class EquitySnapshotAdmin(admin.ModelAdmin):
    list_display = ["session", "timestamp", "cash", "equity"]
    list_filter = ["session"]


@admin.register(KillSwitch)
class KillSwitchAdmin(admin.ModelAdmin):
    list_display = ["__str__", "reason", "changed_at", "changed_by"]
    readonly_fields = ["engaged", "reason", "changed_at", "changed_by"]
    actions = ["halt", "resume"]

    @admin.action(description="Engage the kill switch (halt trading, cancel open orders)")
    def halt(self, request, queryset):
        services.trading_halt(reason=f"halted in admin by {request.user}", by=str(request.user))
        self.message_user(request, "Kill switch engaged.", messages.WARNING)

    @admin.action(description="Release the kill switch (resume trading)")
    def resume(self, request, queryset):
        services.trading_resume(by=str(request.user))
        self.message_user(request, "Trading resumed.", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    list_display = [*APIKeyModelAdmin.list_display, "scope", "owner"]
    list_filter = [*APIKeyModelAdmin.list_filter, "scope"]
