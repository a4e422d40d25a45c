"""Audit entries for model-level changes that have no service: API keys (admin,
`manage.py create_api_key`) and strategy configs (admin, API). Signals run inside the save's
transaction, so the entry commits with the change.

`pre_save` reads the stored row once, to tell a revoke from another change and to list what
changed; these are rare admin writes, never the order path.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from audit.services import audit_record
from strategies.models import StrategyConfig
from trading.models import ApiKey

KEY_FIELDS = ("name", "scope", "revoked", "expiry_date", "owner_id")
CONFIG_FIELDS = ("name", "plugin", "symbols", "params", "allocation", "timeframe", "enabled")


def _before(sender, instance, fields) -> dict | None:
    if instance._state.adding or instance.pk is None:
        return None
    stored = sender._base_manager.filter(pk=instance.pk).values(*fields).first()
    return stored


def _changes(instance, before: dict | None, fields) -> dict:
    if before is None:
        return {}
    return {
        name: {"from": before[name], "to": getattr(instance, name)}
        for name in fields
        if before[name] != getattr(instance, name)
    }


def _key_details(key: ApiKey) -> dict:
    # The prefix identifies a key in admin; the key itself and its hash are never recorded.
    return {"name": key.name, "scope": key.scope, "prefix": key.prefix, "owner": key.owner_id}


@receiver(pre_save, sender=ApiKey, dispatch_uid="audit_key_before")
def key_before(sender, instance: ApiKey, **kwargs) -> None:
    instance._audit_before = _before(sender, instance, KEY_FIELDS)


@receiver(post_save, sender=ApiKey, dispatch_uid="audit_key_saved")
def key_saved(sender, instance: ApiKey, created: bool, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    if created:
        audit_record(action="key.create", target=instance.prefix, details=_key_details(instance))
        return
    changes = _changes(instance, getattr(instance, "_audit_before", None), KEY_FIELDS)
    if not changes:
        return
    action = "key.revoke" if changes.get("revoked", {}).get("to") is True else "key.change"
    audit_record(
        action=action,
        target=instance.prefix,
        details={**_key_details(instance), "changes": changes},
    )


@receiver(post_delete, sender=ApiKey, dispatch_uid="audit_key_deleted")
def key_deleted(sender, instance: ApiKey, **kwargs) -> None:
    audit_record(action="key.delete", target=instance.prefix, details=_key_details(instance))


@receiver(pre_save, sender=StrategyConfig, dispatch_uid="audit_config_before")
def config_before(sender, instance: StrategyConfig, **kwargs) -> None:
    instance._audit_before = _before(sender, instance, CONFIG_FIELDS)


@receiver(post_save, sender=StrategyConfig, dispatch_uid="audit_config_saved")
def config_saved(sender, instance: StrategyConfig, created: bool, raw: bool = False, **kwargs):
    if raw:
        return
    target = f"strategy:{instance.pk}"
    if created:
        details = {name: getattr(instance, name) for name in CONFIG_FIELDS}
        audit_record(action="strategy.config_create", target=target, details=details)
        return
    changes = _changes(instance, getattr(instance, "_audit_before", None), CONFIG_FIELDS)
    if changes:
        audit_record(
            action="strategy.config_change",
            target=target,
            details={"strategy": instance.name, "changes": changes},
        )


@receiver(post_delete, sender=StrategyConfig, dispatch_uid="audit_config_deleted")
def config_deleted(sender, instance: StrategyConfig, **kwargs) -> None:
    audit_record(
        action="strategy.config_delete",
        target=f"strategy:{instance.pk}",
        details={"strategy": instance.name, "plugin": instance.plugin},
    )
