from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata import selectors
from streaming.events import iso_utc


class StockDataView(APIView):
    """Latest price per symbol: {"stock_data": [{"symbol", "price", "timestamp", ...}]}."""

    def get(self, request):
        now = timezone.now()
        rows = []
        for quote in selectors.latest_quotes():
            age = (now - quote["collected_at"]).total_seconds()
            rows.append(
                {
                    "symbol": quote["symbol"],
                    "price": str(quote["price"]),
                    "change": str(quote["change"]),
                    "change_pct": str(quote["change_pct"]),
                    "volume": quote["volume"],
                    "timestamp": iso_utc(quote["timestamp"]),
                    "age_seconds": round(age, 1),
                    "stale": age > settings.STALE_AFTER_SECONDS,
                }
            )
        return Response({"stock_data": rows})
