"""Read models that span apps (the dashboard overview, the OHLCV alias). Views stay thin."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from marketdata.api.serializers import ohlcv_row
from marketdata.models import Bar
from marketdata.selectors import last_collected_at, market_clock
from strategies.models import StrategyConfig
from streaming.events import iso_utc
from trading import selectors as trading
from trading.models import EquitySnapshot, Trade

NEW_YORK = ZoneInfo("America/New_York")
ZERO = Decimal("0")


def money(value: Decimal) -> str:
    """A decimal amount as a plain string with 6 places ("0.000000", never "0E-12")."""
    return format(Decimal(value).quantize(Decimal("0.000001")), "f")


def market_day_start(moment: datetime) -> datetime:
    """Midnight, New York time, of the market day `moment` falls in."""
    local = moment.astimezone(NEW_YORK)
    return datetime.combine(local.date(), time.min, tzinfo=NEW_YORK)


def overview_get() -> dict:
    """GET /dashboard/overview: what a trader looks at first, in one JSON-ready dict."""
    session = trading.session_current() or trading.session_latest()
    portfolio = trading.portfolio_get(session)
    switch = trading.kill_switch_get()
    clock = market_clock()
    day_start = market_day_start(clock["market_time"])
    equity = portfolio["equity"]

    day_open_equity = None
    trades_today = {"count": 0, "realized_pnl": ZERO}
    if session is not None:
        before = (
            EquitySnapshot.objects.filter(session=session, timestamp__lt=day_start)
            .order_by("-timestamp")
            .values_list("equity", flat=True)
            .first()
        )
        day_open_equity = before if before is not None else session.starting_equity
        # Fills carry wall-clock times (also under the simulated clock), snapshots market time.
        fills_since = market_day_start(timezone.now())
        totals = Trade.objects.filter(session=session, executed_at__gte=fills_since).aggregate(
            count=Count("id"), realized_pnl=Sum("realized_pnl")
        )
        trades_today = {"count": totals["count"], "realized_pnl": totals["realized_pnl"] or ZERO}
    day_pnl = equity - day_open_equity if day_open_equity is not None else ZERO
    day_pnl_pct = float(day_pnl / day_open_equity * 100) if day_open_equity else 0.0

    collected = last_collected_at()
    age = (timezone.now() - collected).total_seconds() if collected else None
    strategies = [
        {
            "id": config.pk,
            "name": config.name,
            "plugin": config.plugin,
            "symbols": list(config.symbols or []),
            "last_run_at": iso_utc(config.last_run_at) if config.last_run_at else None,
            "last_error": config.last_error,
        }
        for config in StrategyConfig.objects.filter(enabled=True).order_by("name")
    ]
    return {
        "session": trading.session_payload(session) if session else None,
        "equity": money(equity),
        "cash": money(portfolio["cash"]),
        "day_pnl": money(day_pnl),
        "day_pnl_pct": round(day_pnl_pct, 4),
        "unrealized_pnl": money(portfolio["unrealized_pnl"]),
        "open_positions": portfolio["positions"],
        "trades_today": {
            "count": trades_today["count"],
            "realized_pnl": money(trades_today["realized_pnl"]),
        },
        "active_strategies": strategies,
        "market": {
            "open": clock["market_open"],
            "clock": clock["clock"],
            "market_time": iso_utc(clock["market_time"]),
        },
        "data_freshness": {
            "last_collection_at": iso_utc(collected) if collected else None,
            "age_seconds": round(age, 1) if age is not None else None,
            "stale": age is None or age > settings.STALE_AFTER_SECONDS,
        },
        "halted": switch.engaged,
        "halt_reason": switch.reason,
    }


def portfolio_payload() -> dict:
    """trading.selectors.portfolio_get as JSON (money as strings)."""
    portfolio = trading.portfolio_get()
    return {
        key: (money(value) if isinstance(value, Decimal) else value)
        for key, value in portfolio.items()
    }


def ohlcv_rows(*, symbol: str, timeframe: str = "5Min", limit: int = 100) -> list[dict] | None:
    """The newest `limit` bars of one symbol, oldest first; None when the symbol has none."""
    rows = list(
        Bar.objects.filter(symbol=symbol, timeframe=timeframe)
        .order_by("-timestamp")
        .values("timestamp", "open", "high", "low", "close", "volume")[:limit]
    )
    if not rows and not Bar.objects.filter(symbol=symbol).exists():
        return None
    rows.reverse()
    return [ohlcv_row(row) for row in rows]
