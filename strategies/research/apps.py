from django.apps import AppConfig


class ResearchConfig(AppConfig):
    name = "strategies.research"
    label = "research"
    verbose_name = "Research"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from strategies.research import tasks  # noqa: F401 - connects worker_ready
