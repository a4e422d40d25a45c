from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "tradingrobot.api"
    label = "tradingrobot_api"
    verbose_name = "HTTP API"

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_delete, post_save

        from trading.models import KillSwitch, Order, TradingSession
        from tradingrobot.api.views import status_cache_clear

        # The cached GET /status must not outlive a halt, a session change or a new order, in
        # whichever process (web, worker, admin) it happens; the TTL bounds everything else.
        # Now (the same transaction reads its own writes) and again after commit (a concurrent
        # request may have re-cached the old state in between).
        def clear(sender, **kwargs) -> None:
            status_cache_clear()
            transaction.on_commit(status_cache_clear)

        from trading.models import ApiKey
        from tradingrobot.api.authentication import verified_keys_clear

        def forget_keys(sender, **kwargs) -> None:
            verified_keys_clear()

        post_save.connect(forget_keys, sender=ApiKey, dispatch_uid="api-key-cache")
        post_delete.connect(forget_keys, sender=ApiKey, dispatch_uid="api-key-cache-d")

        for model in (KillSwitch, TradingSession, Order):
            post_save.connect(clear, sender=model, dispatch_uid=f"status-cache-{model.__name__}")
            post_delete.connect(
                clear, sender=model, dispatch_uid=f"status-cache-d-{model.__name__}"
            )
