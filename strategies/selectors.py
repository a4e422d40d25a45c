"""Reads for the strategy API, admin and commands."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import QuerySet

from strategies.exceptions import MarketDataUnavailable, StrategyNotFound
from strategies.models import StrategyConfig

# History the database must reach back to before a backtest trusts it: a long weekend plus a
# holiday can leave four days without bars at the start of the range.
HISTORY_SLACK = timedelta(days=4)
COLUMNS = ["open", "high", "low", "close", "volume"]


def strategy_configs_list() -> QuerySet[StrategyConfig]:
    return StrategyConfig.objects.all()


def strategy_config_get(pk: Any) -> StrategyConfig:
    try:
        return StrategyConfig.objects.get(pk=int(pk))
    except (ValueError, TypeError, OverflowError, StrategyConfig.DoesNotExist):
        raise StrategyNotFound(f"no strategy config with id {pk!r}", details={"id": pk}) from None


def bars_for_backtest(
    symbol: str, timeframe: str, start: datetime, end: datetime
) -> tuple[pd.DataFrame, str]:
    """Bars with start <= timestamp < end as a float DataFrame, and where they came from.

    The database when it holds the range (its first bar within HISTORY_SLACK of `start`);
    otherwise the whole range is fetched from the configured provider and *not stored*: a
    backtest must not write market data behind the collector's back, and the collector's
    upsert stays the one writer of bars. ("database" or the provider's name.)
    """
    from marketdata.models import Bar
    from marketdata.providers import get_provider
    from marketdata.selectors import EpochSeconds

    rows = Bar.objects.filter(
        symbol=symbol, timeframe=timeframe, timestamp__gte=start, timestamp__lt=end
    ).order_by("timestamp")
    first = rows.values_list("timestamp", flat=True).first()
    if first is not None and first <= start + HISTORY_SLACK:
        # Epoch seconds, not datetimes: parsing a timestamp per bar was most of a ten-year load.
        stamped = rows.annotate(t=EpochSeconds("timestamp")).values_list("t", *COLUMNS)
        frame = pd.DataFrame(list(stamped), columns=["t", *COLUMNS])
        frame["t"] = pd.to_datetime(frame["t"], unit="s", utc=True)
        source = "database"
    else:
        provider = get_provider()
        try:
            fetched = provider.fetch_bars(symbol, timeframe, start, end)
        except Exception as exc:  # noqa: BLE001 - an upstream failure is a 503, never a 500
            raise MarketDataUnavailable(
                f"fetching {symbol} history from {provider.name} failed: {exc}",
                details={"symbol": symbol},
            ) from exc
        frame = pd.DataFrame(
            [(b.timestamp, b.open, b.high, b.low, b.close, b.volume) for b in fetched],
            columns=["t", *COLUMNS],
        )
        source = provider.name
    index = pd.DatetimeIndex(pd.to_datetime(frame.pop("t"), utc=True), name="timestamp")
    return frame.set_index(index).astype("float64"), source


def performance_for_session(session) -> dict[str, Any]:
    """Live-session metrics from the same module as backtests, over its equity snapshots and
    the realised P&L of its fills (a fill that realised no P&L, i.e. an opening fill, is not a
    closed trade). Volatility/Sharpe/Sortino are annualised as 5-minute bars, the snapshot
    cadence of one snapshot per collection."""
    from strategies.metrics import compute_metrics
    from strategies.services import equity_curve_points
    from trading.models import EquitySnapshot, Trade
    from trading.selectors import performance_get

    summary = performance_get(session)
    if session is None:
        return {
            **summary,
            "metrics": compute_metrics(np.empty(0), None, np.empty(0)),
            "equity_curve": [],
        }
    snapshots = list(
        EquitySnapshot.objects.filter(session=session)
        .order_by("timestamp", "id")
        .values_list("timestamp", "equity")
    )
    curve = pd.Series(
        [float(e) for _, e in snapshots],
        index=pd.DatetimeIndex([t for t, _ in snapshots], name="timestamp"),
        dtype="float64",
    )
    pnls = np.array(
        [
            float(p)
            for p in Trade.objects.filter(session=session)
            .exclude(realized_pnl=0)
            .values_list("realized_pnl", flat=True)
        ],
        dtype=np.float64,
    )
    metrics = compute_metrics(curve.to_numpy(), curve.index if len(curve) else None, pnls)
    return {**summary, "metrics": metrics, "equity_curve": equity_curve_points(curve)}
