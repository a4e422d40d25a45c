from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        # Model-level changes that have no service (API keys, strategy configs saved in admin).
        from audit import signals  # noqa: F401
