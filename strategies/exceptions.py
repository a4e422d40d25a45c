"""Strategy domain errors; tradingrobot/api/errors.py maps each DomainError to its status."""

from __future__ import annotations

from core.exceptions import DomainError


class InvalidStrategyConfig(DomainError, ValueError):
    """A config or backtest request does not fit its plugin. `details["field"]` names the
    offending field (`params.<name>` for a strategy parameter)."""

    status_code = 400
    code = "invalid_strategy_config"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", details={"field": field})
        self.field = field


class StrategyNotFound(DomainError):
    status_code = 404
    code = "not_found"


class PluginNotLoaded(DomainError):
    """The config names a plugin that is not loaded (missing, or failed to load)."""

    status_code = 409
    code = "plugin_not_loaded"


class StrategyFailed(DomainError):
    """The plugin's own code raised while computing signals."""

    status_code = 422
    code = "strategy_failed"


class NoMarketData(DomainError):
    status_code = 422
    code = "no_market_data"


class MarketDataUnavailable(DomainError):
    status_code = 503
    code = "marketdata_unavailable"
