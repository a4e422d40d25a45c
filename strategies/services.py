from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from strategies import registry
from strategies.base import ParamError
from strategies.models import StrategyConfig

logger = logging.getLogger(__name__)


def strategy_config_validate(
    *, plugin: str, symbols: Any, params: Any, allocation: Decimal | float | str
) -> dict[str, Any]:
    """Check a config against its plugin; returns the cleaned params. Raises ValueError."""
    cls = registry.get_strategy(plugin)
    if cls is None:
        raise ValueError(f"plugin: no strategy named {plugin!r} is loaded")
    if (
        not isinstance(symbols, list)
        or not symbols
        or not all(isinstance(s, str) and s for s in symbols)
    ):
        raise ValueError("symbols: must be a non-empty list of ticker strings")
    if not isinstance(params, dict):
        raise ValueError("params: must be a JSON object")
    try:
        allocation = Decimal(str(allocation))
    except Exception as exc:  # noqa: BLE001
        raise ValueError("allocation: must be a number") from exc
    if not (Decimal("0") < allocation <= Decimal("1")):
        raise ValueError("allocation: must be in (0, 1]")
    try:
        return cls.validate_params(params)
    except ParamError as exc:
        raise ValueError(f"params.{exc.param}: {exc.message}") from exc


@dataclass(frozen=True)
class SymbolDecision:
    symbol: str
    bar_time: str | None
    target: float | None
    order_id: str | None
    note: str


def strategy_execute(*, config: StrategyConfig) -> list[SymbolDecision]:
    """Turn the last bar's target exposure into the order that moves each position there.

    The order's client_order_id is derived from config, symbol and bar time, so running this
    twice (or twice at once) for the same bar sends nothing twice.
    """
    from marketdata.selectors import bars_recent
    from trading import selectors as trading_selectors
    from trading.models import OrderSource, Position
    from trading.services import order_submit

    cls = registry.get_strategy(config.plugin)
    if cls is None:
        raise ValueError(f"strategy plugin {config.plugin!r} is not loaded")
    params = cls.validate_params(config.params)
    strategy = cls()
    session = trading_selectors.session_current()
    if session is None:
        return []
    equity = Decimal(trading_selectors.portfolio_get(session)["equity"])
    per_symbol = Decimal(config.allocation) / len(config.symbols)
    decisions = []
    for symbol in config.symbols:
        symbol = symbol.upper()
        bars = bars_recent(symbol, cls.required_bars(params), timeframe=config.timeframe)
        if len(bars) < cls.required_bars(params):
            decisions.append(SymbolDecision(symbol, None, None, None, "not enough bars"))
            continue
        signal = strategy.generate_signals(bars, params)
        target = float(signal.iloc[-1])
        if math.isnan(target):
            target = 0.0
        target = max(-1.0, min(1.0, target)) if cls.allow_short else max(0.0, min(1.0, target))
        bar_time = bars.index[-1]
        price = Decimal(str(bars["close"].iloc[-1]))
        desired = (Decimal(str(target)) * per_symbol * equity / price).quantize(
            Decimal("1"), ROUND_DOWN
        )
        current = (
            Position.objects.filter(session=session, symbol=symbol)
            .values_list("qty", flat=True)
            .first()
        )
        current = current or Decimal("0")
        # Hold while already on the signal's side: no churn from equity moving with prices.
        same_side = (desired > 0 and current > 0) or (desired < 0 and current < 0)
        delta = Decimal("0") if same_side else desired - current
        if delta == 0:
            decisions.append(
                SymbolDecision(symbol, bar_time.isoformat(), target, None, "no change")
            )
            continue
        result = order_submit(
            symbol=symbol,
            side="buy" if delta > 0 else "sell",
            qty=abs(delta),
            client_order_id=f"s{config.pk}-{symbol}-{bar_time:%Y%m%dT%H%M}",
            source=OrderSource.STRATEGY,
            strategy_config=config,
            session=session,
        )
        decisions.append(
            SymbolDecision(
                symbol,
                bar_time.isoformat(),
                target,
                str(result.order.pk),
                "ordered" if result.created else "already ordered for this bar",
            )
        )
    return decisions


def strategies_run_enabled() -> dict[str, str]:
    """Run every enabled config; one failing strategy never blocks the others."""
    from trading.selectors import kill_switch_get

    outcome: dict[str, str] = {}
    if kill_switch_get().engaged:
        return outcome
    for config in StrategyConfig.objects.filter(enabled=True):
        try:
            decisions = strategy_execute(config=config)
            error = ""
            signal = {
                d.symbol: {"target": d.target, "bar_time": d.bar_time, "note": d.note}
                for d in decisions
            }
        except Exception as exc:  # noqa: BLE001 - recorded on the config, shown in admin and API
            logger.warning("strategy %s failed: %s", config.name, exc, exc_info=True)
            error, signal = f"{type(exc).__name__}: {exc}", config.last_signal
        with transaction.atomic():
            StrategyConfig.objects.filter(pk=config.pk).update(
                last_run_at=timezone.now(), last_signal=signal, last_error=error
            )
        outcome[config.name] = error or "ok"
    return outcome
