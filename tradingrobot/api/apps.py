from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "tradingrobot.api"
    label = "tradingrobot_api"
    verbose_name = "HTTP API"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from strategies.models import StrategyConfig
        from trading.models import ApiKey, KillSwitch, Order, Trade, TradingSession

        # Every Django process loads the project's Celery app before any task is sent, so that
        # shared_task binds to it (the package __init__ no longer imports it; see there).
        from tradingrobot import celery  # noqa: F401
        from tradingrobot.api import cache
        from tradingrobot.api.authentication import verified_keys_clear

        # Cached answers must not outlive the rows they show, in whichever process (web, worker,
        # admin) those change: a halt, a session change or a new order (GET status), a fill or
        # a renamed strategy (GET trades). See tradingrobot.api.cache.
        invalidates = {
            KillSwitch: (cache.STATUS,),
            TradingSession: (cache.STATUS,),
            Order: (cache.STATUS,),
            Trade: (cache.TRADES,),
            StrategyConfig: (cache.TRADES,),
        }
        for model, names in invalidates.items():

            def bump(sender, names=names, **kwargs) -> None:
                cache.bump_on_commit(*names)

            for signal in (post_save, post_delete):
                signal.connect(
                    bump, sender=model, weak=False, dispatch_uid=f"api-cache-{model.__name__}"
                )

        def forget_keys(sender, **kwargs) -> None:
            verified_keys_clear()

        post_save.connect(forget_keys, sender=ApiKey, dispatch_uid="api-key-cache")
        post_delete.connect(forget_keys, sender=ApiKey, dispatch_uid="api-key-cache-d")
        # A deactivated or deleted owner takes their keys with them, at once in this process.
        from django.conf import settings

        user_model = settings.AUTH_USER_MODEL
        post_save.connect(forget_keys, sender=user_model, dispatch_uid="api-key-cache-user")
        post_delete.connect(forget_keys, sender=user_model, dispatch_uid="api-key-cache-user-d")
