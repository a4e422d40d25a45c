from __future__ import annotations

from django.contrib import admin, messages
from rest_framework_api_key.admin import APIKeyModelAdmin

from trading import services
from trading.exceptions import DomainError
from trading.models import (
    ApiKey,
    EquitySnapshot,
    KillSwitch,
    Order,
    Position,
    RobinhoodLogin,
    Trade,
    TradingSession,
)
from trading.permissions import TradeActionsAdmin, trade_action, user_can_loosen_risk_limits


@admin.register(TradingSession)
class TradingSessionAdmin(TradeActionsAdmin, admin.ModelAdmin):
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
    readonly_fields = ["cash", "started_at", "stopped_at", "status", "stop_reason", "broker"]
    fields = ["mode", "starting_cash", "risk_limits", *readonly_fields]
    actions = ["stop_sessions", "reconcile"]

    def get_readonly_fields(self, request, obj=None):
        # A session's money and limits are fixed once it runs; the add form sets them.
        if obj is not None:
            return [*self.readonly_fields, "mode", "starting_cash", "risk_limits"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # Starting goes through the service: one running session, validated risk limits, event.
        try:
            session = services.session_start(
                mode=obj.mode,
                starting_cash=obj.starting_cash,
                risk_limits=obj.risk_limits,
                allow_loosen=user_can_loosen_risk_limits(request.user),
            )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            obj.pk = None
            return
        obj.pk = session.pk
        obj.__dict__.update(session.__dict__)

    @trade_action(description="Stop the selected sessions (cancels their open orders)")
    def stop_sessions(self, request, queryset):
        for session in queryset:
            services.session_stop(session=session, reason=f"stopped in admin by {request.user}")
        self.message_user(request, f"Stopped {queryset.count()} session(s).", messages.SUCCESS)

    @trade_action(description="Reconcile with the broker (never resends orders)")
    def reconcile(self, request, queryset):
        report = services.reconcile(by=str(request.user))
        self.message_user(
            request,
            f"Reconciled: {len(report.repairs)} repair(s), {len(report.errors)} error(s). "
            + "; ".join(report.repairs + report.errors)[:900],
            messages.WARNING if report.errors else messages.SUCCESS,
        )


class LegInline(admin.TabularInline):
    """A bracket/OTO entry's exits, an OCO's stop-loss: read-only, under their parent."""

    model = Order
    fk_name = "parent"
    verbose_name = "leg"
    verbose_name_plural = "legs (protective exits)"
    fields = [
        "leg_role",
        "side",
        "type",
        "qty",
        "limit_price",
        "stop_price",
        "status",
        "filled_qty",
        "filled_avg_price",
        "reject_reason",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(TradeActionsAdmin, admin.ModelAdmin):
    inlines = [LegInline]
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
        "order_class",
        "leg_role",
        "client_order_id",
    ]
    list_filter = ["status", "source", "side", "type", "order_class", "symbol"]
    search_fields = ["client_order_id", "broker_order_id", "symbol"]
    readonly_fields = [f.name for f in Order._meta.fields]
    actions = ["cancel_orders"]

    def has_add_permission(self, request) -> bool:
        return False

    @trade_action(description="Cancel the selected open orders")
    def cancel_orders(self, request, queryset):
        done, failed = 0, []
        for order in queryset:
            try:
                services.order_cancel(order=order, reason=f"canceled in admin by {request.user}")
                done += 1
            except DomainError as exc:
                failed.append(f"{order.client_order_id}: {exc.message}")
        self.message_user(request, f"Canceled {done} order(s).", messages.SUCCESS)
        if failed:
            self.message_user(request, "; ".join(failed)[:900], messages.ERROR)


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


@admin.register(RobinhoodLogin)
class RobinhoodLoginAdmin(admin.ModelAdmin):
    """The experimental Robinhood broker's login state. The tokens are never shown (they are
    ciphertext anyway); deleting the row forgets them and the device (the next call logs in
    afresh and may need a new approval)."""

    list_display = ["username", "state", "detail", "cooldown_until", "updated_at"]
    fields = ["username", "state", "detail", "access_expires_at", "cooldown_until", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EquitySnapshot)
class EquitySnapshotAdmin(admin.ModelAdmin):
    list_display = ["session", "timestamp", "cash", "equity"]
    list_filter = ["session"]


@admin.register(KillSwitch)
class KillSwitchAdmin(TradeActionsAdmin, admin.ModelAdmin):
    list_display = ["__str__", "reason", "changed_at", "changed_by"]
    readonly_fields = ["engaged", "reason", "changed_at", "changed_by"]
    actions = ["halt", "halt_and_flatten", "resume", "reconcile"]

    def changelist_view(self, request, extra_context=None):
        # The flag is one row: make sure it exists so the actions have something to select.
        from trading.selectors import kill_switch_get

        kill_switch_get()
        return super().changelist_view(request, extra_context)

    def _halt(self, request, flatten: bool) -> None:
        result = services.trading_halt(
            reason=f"halted in admin by {request.user}", by=str(request.user), flatten=flatten
        )
        text = f"Kill switch engaged; {len(result.canceled)} order(s) canceled"
        if flatten:
            text += f", {len(result.flatten_orders)} flatten order(s)"
        self.message_user(request, text + ".", messages.WARNING)
        for failure in result.cancel_failed + result.flatten_failed:
            self.message_user(request, str(failure), messages.ERROR)

    @trade_action(description="Engage the kill switch (halt trading, cancel open orders)")
    def halt(self, request, queryset):
        self._halt(request, flatten=False)

    @trade_action(description="Engage the kill switch and flatten all positions")
    def halt_and_flatten(self, request, queryset):
        self._halt(request, flatten=True)

    @trade_action(description="Reconcile with the broker (never resends orders)")
    def reconcile(self, request, queryset):
        report = services.reconcile(by=str(request.user))
        self.message_user(
            request,
            f"Reconciled: {len(report.repairs)} repair(s), {len(report.errors)} error(s).",
            messages.WARNING if report.errors else messages.SUCCESS,
        )

    @trade_action(description="Release the kill switch (resume trading)")
    def resume(self, request, queryset):
        services.trading_resume(by=str(request.user))
        self.message_user(request, "Trading resumed.", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    list_display = [*APIKeyModelAdmin.list_display, "scope", "owner"]
    list_filter = [*APIKeyModelAdmin.list_filter, "scope"]
