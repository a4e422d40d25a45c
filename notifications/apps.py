from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Subscribe to the one publish path every producer uses; nothing is read from the
        # database here (env channels are synced by `bootstrap` and at worker start).
        from notifications import hooks
        from streaming.publish import subscribe

        subscribe(hooks.on_events_committed)
