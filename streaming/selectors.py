"""Reads behind the dashboard's REST snapshot: what a client loads before applying events."""

from __future__ import annotations

from streaming.events import iso_utc

EQUITY_POINTS = 500
TRADES = 50


def dashboard_snapshot() -> dict:
    from django.conf import settings

    from realtime.feed import quote_payload
    from realtime.prices import prices_fresh
    from strategies.models import StrategyConfig
    from trading import selectors

    session = selectors.session_latest()
    curve = (
        list(selectors.equity_curve(session).order_by("-timestamp")[:EQUITY_POINTS])
        if session
        else []
    )
    curve.reverse()
    trades = selectors.trades_list(session).order_by("-executed_at", "-id")[:TRADES]
    return {
        "status": selectors.status_get(),
        "performance": selectors.performance_get(session),
        "positions": [selectors.position_payload(p) for p in selectors.positions_list(session)],
        "open_orders": [
            selectors.order_payload(o) for o in selectors.orders_open_with_legs()[:100]
        ],
        "trades": [selectors.trade_payload(t) for t in trades],
        "equity_curve": [
            {"timestamp": iso_utc(s.timestamp), "equity": str(s.equity)} for s in curve
        ],
        "strategies": [
            {
                "id": c.pk,
                "name": c.name,
                "plugin": c.plugin,
                "symbols": c.symbols,
                "enabled": c.enabled,
                "last_run_at": iso_utc(c.last_run_at) if c.last_run_at else None,
                "last_signal": c.last_signal,
                "last_error": c.last_error,
            }
            for c in StrategyConfig.objects.order_by("name")
        ],
        "quotes": [quote_payload(live) for live in prices_fresh(settings.PRIMARY_SYMBOLS).values()],
    }
