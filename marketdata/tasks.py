from __future__ import annotations

from celery import shared_task


@shared_task(name="marketdata.collect")
def collect_bars() -> dict:
    """Collect the next bars, mark positions to market, then let the strategies act on them."""
    from marketdata.services import bars_collect
    from strategies.tasks import run_strategies
    from trading.services import session_mark_to_market

    result = bars_collect()
    from trading.services import orders_process_bars

    orders_process_bars()  # queued orders at the open, resting paper orders, day-order expiry
    session_mark_to_market()
    if result.new_bars:
        run_strategies.delay()
    return {"new_bars": sorted(result.new_bars), "errors": result.errors}
