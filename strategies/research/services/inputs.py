"""Research inputs: a request body checked field by field (each mistake a 400 naming its field)
and turned into what a run stores and the optimiser takes."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pandas as pd
from django.conf import settings

from strategies import registry
from strategies.exceptions import InvalidStrategyConfig
from strategies.models import StrategyConfig
from strategies.research import optimizer
from strategies.research.grid import Search, search_build

MAX_WALK_FORWARD_FOLDS = 60


def _number(body: dict, field: str, default: float, *, positive: bool = False) -> float:
    value = body.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidStrategyConfig(field, "must be a number")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value <= 0):
        raise InvalidStrategyConfig(
            field, "must be a " + ("positive" if positive else "non-negative") + " finite number"
        )
    if field in ("fee_bps", "slippage_bps") and value > 10_000:
        raise InvalidStrategyConfig(field, "must be at most 10000")
    return value


def common_inputs(config: StrategyConfig | None, plugin: str, body: dict) -> dict[str, Any]:
    """The inputs every kind shares, checked the way strategy_backtest checks them."""
    from strategies.services import MAX_BACKTEST_DAYS, strategy_config_validate

    if not isinstance(body, dict):
        raise InvalidStrategyConfig("body", "must be a JSON object")
    days = body.get("days", 365)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_BACKTEST_DAYS:
        raise InvalidStrategyConfig("days", f"must be an integer from 1 to {MAX_BACKTEST_DAYS}")
    symbols = body.get("symbols", config.symbols if config else None)
    if isinstance(symbols, list) and len(symbols) > 10:
        raise InvalidStrategyConfig("symbols", "at most 10 symbols")
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise InvalidStrategyConfig("params", "must be a JSON object")
    params = {**((config.params or {}) if config else {}), **params}
    allocation = config.allocation if config else body.get("allocation", 1)
    cleaned = strategy_config_validate(
        plugin=plugin, symbols=symbols, params=params, allocation=allocation
    )
    return {
        "plugin": plugin,
        "end": _end(body.get("end")),
        "symbols": [s.strip().upper() for s in symbols],
        "days": days,
        "params": cleaned,
        "allocation": float(Decimal(str(allocation))),
        "initial_cash": _number(
            body, "initial_cash", float(settings.PAPER_STARTING_CASH), positive=True
        ),
        "fee_bps": _number(body, "fee_bps", 0.0),
        "fee_per_trade": _number(body, "fee_per_trade", float(settings.PAPER_FEE_PER_ORDER)),
        "slippage_bps": _number(body, "slippage_bps", float(settings.PAPER_SLIPPAGE_BPS)),
    }


def _end(value: Any) -> str | None:
    """`end`: the backtest window's end, an ISO-8601 date (midnight UTC) or datetime; None means
    the moment the run was submitted."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidStrategyConfig("end", "must be an ISO-8601 date or datetime")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InvalidStrategyConfig("end", "must be an ISO-8601 date or datetime") from None
    if stamp is pd.NaT or not 1990 <= stamp.year <= 2100:
        raise InvalidStrategyConfig("end", "must be a date between 1990 and 2100")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


def search_of(inputs: dict[str, Any], body: dict) -> Search:
    cls = registry.get_strategy(inputs["plugin"])
    grid_params = {k: v for k, v in inputs["params"].items() if k not in (body.get("grid") or {})}
    return search_build(
        cls,
        base_params=grid_params,
        grid=body.get("grid"),
        constraints=body.get("constraints"),
        objective=body.get("objective", "sharpe"),
        min_trades=body.get("min_trades", 0),
        max_combos=settings.RESEARCH_MAX_COMBOS,
    )


def walk_forward_inputs(body: dict) -> dict[str, Any] | None:
    spec = body.get("walk_forward")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise InvalidStrategyConfig(
            "walk_forward", "must be an object {train_days, test_days, anchored}"
        )
    out: dict[str, Any] = {}
    for field in ("train_days", "test_days"):
        value = spec.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
            raise InvalidStrategyConfig(
                f"walk_forward.{field}", "must be an integer from 1 to 3650"
            )
        out[field] = value
    anchored = spec.get("anchored", False)
    if not isinstance(anchored, bool):
        raise InvalidStrategyConfig("walk_forward.anchored", "must be true or false")
    out["anchored"] = anchored
    days = body.get("days", 365)
    folds = (days - out["train_days"]) / out["test_days"]
    if folds < 1:
        raise InvalidStrategyConfig("walk_forward.train_days", "leaves no test window within days")
    if folds > MAX_WALK_FORWARD_FOLDS:
        raise InvalidStrategyConfig(
            "walk_forward.test_days", f"more than {MAX_WALK_FORWARD_FOLDS} windows"
        )
    return out


def plugin_of(config: StrategyConfig | None, body: dict) -> str:
    plugin = config.plugin if config else body.get("plugin")
    if not isinstance(plugin, str) or registry.get_strategy(plugin) is None:
        raise InvalidStrategyConfig("plugin", f"no strategy named {plugin!r} is loaded")
    return plugin


def costs_of(inputs: dict[str, Any]) -> optimizer.Costs:
    return optimizer.Costs(
        initial_cash=inputs["initial_cash"],
        fee_bps=inputs["fee_bps"],
        fee_per_trade=inputs["fee_per_trade"],
        slippage_bps=inputs["slippage_bps"],
        allocation=inputs["allocation"],
    )
