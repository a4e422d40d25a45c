from django.contrib import admin

from strategies.models import StrategyConfig


@admin.register(StrategyConfig)
class StrategyConfigAdmin(admin.ModelAdmin):
    list_display = ["name", "plugin", "enabled", "allocation", "last_run_at", "last_error"]
    list_filter = ["enabled", "plugin"]
    readonly_fields = ["last_run_at", "last_signal", "last_error"]
