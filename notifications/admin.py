from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from notifications.channels.base import ChannelError
from notifications.models import Channel, Delivery
from notifications.services import channel_send_test


class ChannelForm(forms.ModelForm):
    # Write-only: the stored secret is never rendered back; leave empty to keep it.
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="webhook: signing secret; Telegram: bot token. Leave empty to keep the "
        "current one.",
    )

    class Meta:
        model = Channel
        fields = [
            "name",
            "kind",
            "target",
            "secret",
            "enabled",
            "events",
            "min_severity",
            "quiet_start",
            "quiet_end",
            "timezone",
        ]

    def clean_secret(self) -> str:
        value = self.cleaned_data.get("secret") or ""
        if not value and self.instance.pk:
            return self.instance.secret
        return value


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "enabled", "min_severity", "events", "from_env"]
    list_filter = ["kind", "enabled"]
    actions = ["send_test"]

    @admin.action(description="Send test")
    def send_test(self, request, queryset) -> None:
        for channel in queryset:
            try:
                channel_send_test(channel=channel)
            except ChannelError as exc:
                self.message_user(request, f"{channel.name}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{channel.name}: test sent", messages.SUCCESS)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event_id",
        "kind",
        "channel",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status", "kind", "channel"]
    search_fields = ["event_id"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
