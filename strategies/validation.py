"""Validating a strategy config against its plugin: symbols, params, allocation, timeframe.

Apart from the services so that the model's `clean` (admin forms) can use it: a model imports
no service.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marketdata.models import SYMBOL_RE
from strategies import registry
from strategies.base import ParamError, Strategy
from strategies.exceptions import InvalidStrategyConfig

SUPPORTED_TIMEFRAMES = ("5Min",)  # the only timeframe marketdata collects (and aggregates) today


def clean_symbols(symbols: Any) -> list[str]:
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise InvalidStrategyConfig("symbols", "must be a non-empty list of ticker strings")
    cleaned = [s.strip().upper() for s in symbols]
    bad = [s for s in cleaned if not SYMBOL_RE.match(s)]
    if bad:
        raise InvalidStrategyConfig("symbols", f"{bad[0]!r} is not a ticker symbol")
    if len(set(cleaned)) != len(cleaned):
        raise InvalidStrategyConfig("symbols", "lists a symbol twice")
    return cleaned


def clean_params(cls: type[Strategy], params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise InvalidStrategyConfig("params", "must be a JSON object")
    try:
        return cls.validate_params(params)
    except ParamError as exc:
        raise InvalidStrategyConfig(f"params.{exc.param}", exc.message) from exc


def strategy_config_validate(
    *,
    plugin: str,
    symbols: Any,
    params: Any,
    allocation: Decimal | float | str,
    timeframe: str = "5Min",
) -> dict[str, Any]:
    """Check a config against its plugin; returns the cleaned params.

    Raises InvalidStrategyConfig (a ValueError) naming the field, `params.<name>` for a param.
    """
    cls = registry.get_strategy(plugin)
    if cls is None:
        raise InvalidStrategyConfig("plugin", f"no strategy named {plugin!r} is loaded")
    clean_symbols(symbols)
    try:
        allocation = Decimal(str(allocation))
    except Exception as exc:  # noqa: BLE001
        raise InvalidStrategyConfig("allocation", "must be a number") from exc
    if not (Decimal("0") < allocation <= Decimal("1")):
        raise InvalidStrategyConfig("allocation", "must be in (0, 1]")
    if timeframe not in SUPPORTED_TIMEFRAMES:
        raise InvalidStrategyConfig(
            "timeframe", f"{timeframe!r} is not supported; use one of {list(SUPPORTED_TIMEFRAMES)}"
        )
    return clean_params(cls, params)
