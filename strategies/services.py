from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_context, audit_record, audit_refusal, records_refusals
from strategies import live_exits, protective, registry
from strategies.base import Strategy
from strategies.engine import result_to_dict
from strategies.exceptions import (
    InvalidStrategyConfig,
    NoMarketData,
    PluginNotLoaded,
    StrategyFailed,
)
from strategies.models import StrategyConfig
from strategies.validation import (
    SUPPORTED_TIMEFRAMES,
    clean_params,
    clean_symbols,
    strategy_config_validate,
)

logger = logging.getLogger(__name__)


def _loaded(plugin: str) -> type[Strategy]:
    cls = registry.get_strategy(plugin)
    if cls is None:
        error = next(
            (e for origin, e in registry.get_registry().errors.items() if plugin in origin), None
        )
        raise PluginNotLoaded(
            f"strategy plugin {plugin!r} is not loaded" + (f": {error}" if error else ""),
            details={"plugin": plugin, "load_error": error},
        )
    return cls


@dataclass(frozen=True)
class SymbolDecision:
    symbol: str
    bar_time: str | None
    target: float | None
    order_id: str | None
    note: str
    error: str = ""


def _last_target(cls: type[Strategy], bars, params: dict[str, Any]) -> float:
    try:
        signal = cls().generate_signals(bars, params)
        target = float(signal.iloc[-1])
    except Exception as exc:  # noqa: BLE001 - a plugin bug is the plugin's error, reported as such
        raise StrategyFailed(
            f"{cls.name}.generate_signals failed: {type(exc).__name__}: {exc}",
            details={"plugin": cls.name},
        ) from exc
    if math.isnan(target):
        return 0.0
    return max(-1.0, min(1.0, target)) if cls.allow_short else max(0.0, min(1.0, target))


def strategy_execute(*, config: StrategyConfig) -> list[SymbolDecision]:
    """Turn the last bar's target exposure into the order that moves each position there.

    The order's client_order_id is derived from config, symbol and bar time, so running this
    twice (or twice at once) for the same bar sends nothing twice: order_submit returns the
    existing order, and the unique constraint decides a concurrent race. An order refused for
    one symbol (risk limit, unknown symbol) is recorded on that symbol and does not stop the
    others; a halt stops everything.
    """
    from marketdata.selectors import bars_recent
    from trading import selectors as trading_selectors
    from trading.exceptions import DomainError, TradingHalted
    from trading.models import OrderSource, Position
    from trading.services import order_submit

    cls = _loaded(config.plugin)
    params, exits = protective.split(clean_params(cls, config.params))
    if config.timeframe not in SUPPORTED_TIMEFRAMES:
        raise InvalidStrategyConfig(
            "timeframe",
            f"{config.timeframe!r} is not supported; use one of {list(SUPPORTED_TIMEFRAMES)}",
        )
    symbols = clean_symbols(config.symbols)
    session = trading_selectors.session_current()
    if session is None:
        return []
    equity = Decimal(trading_selectors.portfolio_get(session)["equity"])
    per_symbol = Decimal(config.allocation) / len(symbols)
    required = cls.required_bars(params)
    decisions = []
    for symbol in symbols:
        bars = bars_recent(symbol, max(cls.history_bars(params), required), config.timeframe)
        if len(bars) < required:
            decisions.append(SymbolDecision(symbol, None, None, None, "not enough bars"))
            continue
        target = _last_target(cls, bars, params)
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
        if exits.any:  # protective exits: brackets, trailing stops (strategies.live_exits)
            order_id, note, error = live_exits.symbol_execute(
                config=config, cls=cls, own=params, exits=exits, symbol=symbol, bars=bars,
                desired=desired, current=current, price=price, session=session,
            )  # fmt: skip
            decisions.append(
                SymbolDecision(symbol, bar_time.isoformat(), target, order_id, note, error)
            )
            continue
        # Hold while already on the signal's side: no churn from equity moving with prices.
        same_side = (desired > 0 and current > 0) or (desired < 0 and current < 0)
        delta = Decimal("0") if same_side else desired - current
        if delta == 0:
            decisions.append(
                SymbolDecision(symbol, bar_time.isoformat(), target, None, "no change")
            )
            continue
        try:
            result = order_submit(
                symbol=symbol,
                side="buy" if delta > 0 else "sell",
                qty=abs(delta),
                client_order_id=f"s{config.pk}-{symbol}-{bar_time:%Y%m%dT%H%M}",
                source=OrderSource.STRATEGY,
                strategy_config=config,
                session=session,
            )
        except TradingHalted:
            raise
        except DomainError as exc:
            decisions.append(
                SymbolDecision(
                    symbol,
                    bar_time.isoformat(),
                    target,
                    exc.details.get("order_id"),
                    "order refused",
                    f"{symbol}: {exc.code}: {exc.message}",
                )
            )
            continue
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


def _record_run(config: StrategyConfig, decisions: list[SymbolDecision] | None, error: str) -> None:
    signal = (
        {
            d.symbol: {
                "target": d.target,
                "bar_time": d.bar_time,
                "note": d.note,
                "order_id": d.order_id,
            }
            for d in decisions
        }
        if decisions is not None
        else config.last_signal
    )
    if decisions is not None and not error:
        error = "; ".join(d.error for d in decisions if d.error)
    now = timezone.now()
    StrategyConfig.objects.filter(pk=config.pk).update(
        last_run_at=now, last_signal=signal, last_error=error
    )
    config.last_run_at, config.last_signal, config.last_error = now, signal, error
    if error:
        _alert_error(config, error, now)


def _alert_error(config: StrategyConfig, error: str, now: datetime) -> None:
    """An `alert` per config, distinct error and day: a repeating error is heard once a day."""
    import hashlib

    from streaming import events
    from streaming.publish import publish

    digest = hashlib.sha256(error.encode()).hexdigest()[:12]
    publish(
        events.ALERT,
        {
            "id": f"strategy.error:{config.pk}:{now:%Y-%m-%d}:{digest}",
            "kind": "strategy.error",
            "severity": "warning",
            "title": f"Strategy error: {config.name}",
            "text": error[:500],
            "data": {"strategy_config_id": config.pk, "plugin": config.plugin},
        },
    )


def _execute_as_strategy(config: StrategyConfig) -> list[SymbolDecision]:
    # The orders a run sends are the strategy's: the audit log names the config, via strategy.
    with audit_context(actor=config.name, via="strategy"):
        return strategy_execute(config=config)


def _record_run_audited(
    config: StrategyConfig, decisions: list[SymbolDecision] | None, error: str, code: str = ""
) -> None:
    """The run's bookkeeping and its strategy.run entry, in one transaction."""
    with transaction.atomic():
        _record_run(config, decisions, error)
        audit_record(
            action="strategy.run",
            target=f"strategy:{config.pk}",
            details={
                "strategy": config.name,
                "orders": [d.order_id for d in decisions or [] if d.order_id],
                "error": config.last_error,
            },
            outcome="error" if decisions is None else "ok",
            code=code,
        )


def strategy_run_now(*, config: StrategyConfig) -> list[SymbolDecision]:
    """Run one config now (API, admin). Refused while halted; errors are recorded and raised.

    The strategy.run entry names who asked (a user, a key); the orders name the strategy."""
    from trading.exceptions import DomainError, NoRunningSession, TradingHalted
    from trading.selectors import kill_switch_get, session_current

    switch = kill_switch_get()
    try:
        if switch.engaged:
            raise TradingHalted(
                "trading is halted by the kill switch", details={"reason": switch.reason}
            )
        if session_current() is None:
            raise NoRunningSession("no trading session is running")
    except DomainError as exc:
        audit_refusal(
            action="strategy.run",
            exc=exc,
            target=f"strategy:{config.pk}",
            details={"strategy": config.name},
        )
        raise
    try:
        decisions = _execute_as_strategy(config)
    except DomainError as exc:
        _record_run_audited(config, None, f"{exc.code}: {exc.message}", code=exc.code)
        raise
    _record_run_audited(config, decisions, "")
    return decisions


def strategies_run_enabled() -> dict[str, str]:
    """Run every enabled config; one failing strategy never blocks the others."""
    from trading.selectors import kill_switch_get

    outcome: dict[str, str] = {}
    if kill_switch_get().engaged:
        return outcome
    for config in StrategyConfig.objects.filter(enabled=True):
        decisions, error, code = None, "", ""
        try:
            decisions = _execute_as_strategy(config)
        except Exception as exc:  # noqa: BLE001 - recorded on the config, shown in admin and API
            logger.warning("strategy %s failed: %s", config.name, exc, exc_info=True)
            error = f"{type(exc).__name__}: {exc}"
            code = getattr(exc, "code", "") or type(exc).__name__
        try:
            # A scheduled run is the strategy's own act.
            with audit_context(actor=config.name, via="strategy"):
                _record_run_audited(config, decisions, error, code=code)
        except Exception:  # noqa: BLE001 - never let bookkeeping stop the next config
            logger.exception("recording the run of strategy %s failed", config.name)
        outcome[config.name] = config.last_error or "ok"
    return outcome


@records_refusals(
    "strategy.enable",
    target=lambda kwargs: f"strategy:{kwargs['config'].pk}",
    details=lambda kwargs: {"strategy": kwargs["config"].name},
)
def strategy_set_enabled(*, config: StrategyConfig, enabled: bool) -> StrategyConfig:
    """Enable or disable a config; enabling re-validates it against the loaded plugin."""
    if enabled:
        strategy_config_validate(
            plugin=config.plugin,
            symbols=config.symbols,
            params=config.params,
            allocation=config.allocation,
            timeframe=config.timeframe,
        )
    with transaction.atomic():
        StrategyConfig.objects.filter(pk=config.pk).update(enabled=enabled)
        audit_record(
            action="strategy.enable" if enabled else "strategy.disable",
            target=f"strategy:{config.pk}",
            details={"strategy": config.name},
        )
    config.enabled = enabled
    return config


def strategies_reload() -> list[dict]:
    """Reload every plugin without a restart; returns what the loader now sees."""
    registry.reload()
    plugins = registry.plugins_describe()
    with transaction.atomic():
        errors = registry.get_registry().errors
        audit_record(
            action="plugins.reload",
            target="plugins",
            details={"plugins": [p.get("name") for p in plugins], "errors": sorted(errors)},
        )
    return plugins


# --- backtests -------------------------------------------------------------------------------

MAX_BACKTEST_DAYS = 3650


def strategy_backtest(
    *,
    plugin: str,
    symbols: Any,
    days: int,
    params: Any = None,
    allocation: Decimal | float | str = 1,
    timeframe: str = "5Min",
    initial_cash: float | None = None,
    fee_bps: float = 0.0,
    fee_per_trade: float | None = None,
    slippage_bps: float | None = None,
    end: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Backtest `plugin` over the last `days` of bars for each symbol (JSON-ready result).

    Mirrors live sizing: each symbol's sleeve starts with `initial_cash / len(symbols)` and holds
    `target * allocation` of its own equity; the account's equity is the sum of the sleeves.
    Costs default to the paper broker's (PAPER_SLIPPAGE_BPS, PAPER_FEE_PER_ORDER). Bars come
    from the database; see `strategies.selectors.bars_for_backtest` for missing history.
    """
    from strategies.engine import run_backtest
    from strategies.metrics import compute_metrics
    from strategies.selectors import bars_for_backtest

    cls = registry.get_strategy(plugin)
    if cls is None:
        raise InvalidStrategyConfig("plugin", f"no strategy named {plugin!r} is loaded")
    cleaned = strategy_config_validate(
        plugin=plugin,
        symbols=symbols,
        params=params if params is not None else {},
        allocation=allocation,
        timeframe=timeframe,
    )
    symbols = clean_symbols(symbols)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_BACKTEST_DAYS:
        raise InvalidStrategyConfig("days", f"must be an integer from 1 to {MAX_BACKTEST_DAYS}")
    initial_cash = float(settings.PAPER_STARTING_CASH if initial_cash is None else initial_cash)
    fee_per_trade = float(settings.PAPER_FEE_PER_ORDER if fee_per_trade is None else fee_per_trade)
    slippage_bps = float(settings.PAPER_SLIPPAGE_BPS if slippage_bps is None else slippage_bps)
    for field, value in (
        ("initial_cash", initial_cash),
        ("fee_bps", fee_bps),
        ("fee_per_trade", fee_per_trade),
        ("slippage_bps", slippage_bps),
    ):
        if not math.isfinite(value) or value < 0 or (field == "initial_cash" and value <= 0):
            raise InvalidStrategyConfig(field, "must be a non-negative finite number")
    own_params, exits = protective.split(cleaned)
    end = end or timezone.now()
    start = end - timedelta(days=days)
    sleeve_cash = initial_cash / len(symbols)
    scale = float(Decimal(str(allocation)))
    strategy = cls()
    sleeves: dict[str, pd.Series] = {}
    positions: dict[str, pd.Series] = {}
    pnls: list[np.ndarray] = []
    per_symbol: dict[str, Any] = {}
    for symbol in symbols:
        if progress:
            progress(symbol)
        bars, source = bars_for_backtest(symbol, timeframe, start, end)
        if bars.empty:
            raise NoMarketData(
                f"no {timeframe} bars for {symbol} in the last {days} days",
                details={"symbol": symbol},
            )
        try:
            target = np.asarray(strategy.generate_signals(bars, own_params), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001
            raise StrategyFailed(
                f"{plugin}.generate_signals failed: {type(exc).__name__}: {exc}",
                details={"plugin": plugin, "symbol": symbol},
            ) from exc
        result = run_backtest(
            bars["open"].to_numpy(dtype=np.float64),
            bars["close"].to_numpy(dtype=np.float64),
            target * scale,
            initial_cash=sleeve_cash,
            fee_bps=fee_bps,
            fee_per_trade=fee_per_trade,
            slippage_bps=slippage_bps,
            allow_short=cls.allow_short,
            timestamps=bars.index,
            # Declared protective exits run by the paper broker's rules; none: the fast path.
            high=bars["high"].to_numpy(dtype=np.float64) if exits.any else None,
            low=bars["low"].to_numpy(dtype=np.float64) if exits.any else None,
            exits=exits if exits.any else None,
        )
        sleeves[symbol] = pd.Series(result.equity, index=bars.index)
        positions[symbol] = pd.Series(result.positions, index=bars.index)
        pnls.append(result.closed_trades["pnl"])
        summary = result_to_dict(result, max_points=0, max_trades=100)
        per_symbol[symbol] = {
            "bars": int(len(bars)),
            "data_source": source,
            "first_bar": bars.index[0].isoformat(),
            "last_bar": bars.index[-1].isoformat(),
            "metrics": summary["metrics"],
            "trades_total": summary["trades_total"],
            "trades": summary["trades"],
        }
    # The account: every sleeve's equity on the union of bar times (a sleeve holds its last
    # value, or its starting cash, where it has no bar).
    equity_frame = pd.DataFrame(sleeves).sort_index().ffill().fillna(sleeve_cash)
    exposure = pd.DataFrame(positions).reindex(equity_frame.index).ffill().fillna(0.0)
    equity = equity_frame.sum(axis=1)
    metrics = compute_metrics(
        equity.to_numpy(dtype=np.float64),
        equity.index,
        np.concatenate(pnls) if pnls else np.empty(0),
        exposure=(exposure != 0).any(axis=1).to_numpy(),
    )
    return {
        "plugin": plugin,
        "params": cleaned,
        "symbols": symbols,
        "timeframe": timeframe,
        "days": days,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "allocation": scale,
        "initial_cash": initial_cash,
        "costs": {
            "fee_bps": fee_bps,
            "fee_per_trade": fee_per_trade,
            "slippage_bps": slippage_bps,
        },
        "metrics": metrics,
        "equity_curve": equity_curve_points(equity),
        "per_symbol": per_symbol,
    }


def equity_curve_points(equity: pd.Series, max_points: int = 500) -> list[dict[str, Any]]:
    """At most `max_points` evenly spaced points of a curve, first and last included."""
    n = len(equity)
    if not n:
        return []
    picks = np.unique(np.linspace(0, n - 1, min(max_points, n)).round().astype(np.int64))
    values = equity.to_numpy(dtype=np.float64)[picks]
    return [
        {"t": ts.isoformat(), "equity": float(v)}
        for ts, v in zip(equity.index[picks], values, strict=True)
    ]
