from django.contrib import admin

from marketdata.models import Bar


@admin.register(Bar)
class BarAdmin(admin.ModelAdmin):
    list_display = [
        "symbol",
        "timeframe",
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "source",
    ]
    list_filter = ["symbol", "timeframe", "source"]
    date_hierarchy = "timestamp"
