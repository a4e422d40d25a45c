"""What result pages and the live dashboard draw: walk-forward summary, heatmap, equity and
drawdown points, indicator lines and a run's chart data."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from strategies import registry
from strategies.exceptions import InvalidStrategyConfig
from strategies.models import StrategyConfig
from strategies.research import optimizer
from strategies.research.grid import OBJECTIVES, Search
from strategies.research.services.inputs import costs_of

logger = logging.getLogger(__name__)

CHART_BARS = 1500  # candles kept for the result page's price chart
CURVE_POINTS = 600


def walk_forward_summary(
    search: Search, out: dict[str, Any], initial_cash: float
) -> dict[str, Any]:
    def iso(ns: int) -> str:
        return pd.Timestamp(int(ns), tz="UTC").isoformat()

    folds = []
    for fold in out["folds"]:
        folds.append(
            {
                "fold": fold.index + 1,
                "train_start": iso(fold.train_start),
                "train_end": iso(fold.train_end),
                "test_start": iso(fold.train_end),
                "test_end": iso(fold.test_end),
                "best_params": {k: fold.best_params[k] for k in search.axes}
                if fold.best_params
                else None,
                "train_objective": (fold.train_metrics or {}).get(search.objective),
                "test_objective": (fold.test_metrics or {}).get(search.objective),
                "train_return": (fold.train_metrics or {}).get("total_return"),
                "test_return": (fold.test_metrics or {}).get("total_return"),
                "test_trades": (fold.test_metrics or {}).get("trades"),
            }
        )
    in_sample = [f["train_objective"] for f in folds if f["train_objective"] is not None]
    out_sample = [f["test_objective"] for f in folds if f["test_objective"] is not None]
    ts, equity = out["oos_equity"] if out["oos_equity"] else (np.empty(0), np.empty(0))
    return {
        "objective": search.objective,
        "folds": folds,
        "in_sample_mean": float(np.mean(in_sample)) if in_sample else None,
        "out_of_sample_mean": float(np.mean(out_sample)) if out_sample else None,
        "oos_metrics": out["oos_metrics"],
        "oos_equity": curve_points(ts, equity),
        "initial_cash": initial_cash,
    }


def row_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "sharpe",
        "sortino",
        "calmar",
        "total_return",
        "profit_factor",
        "max_drawdown",
        "trades",
        "final_equity",
    )
    return {k: metrics.get(k) for k in keys}


def heatmap(search: Search, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The objective over the first two searched params (the best over any others)."""
    names = list(search.axes)
    if not names:
        return None
    x_name = names[0]
    y_name = names[1] if len(names) > 1 else None
    xs = search.axes[x_name]
    ys = search.axes[y_name] if y_name else [None]
    better = OBJECTIVES[search.objective]
    cells: dict[tuple[Any, Any], float] = {}
    for combo, metrics in zip(search.combos, rows, strict=True):
        value = metrics.get(search.objective)
        if value is None or (metrics.get("trades") or 0) < search.min_trades:
            continue
        key = (combo[x_name], combo[y_name] if y_name else None)
        if key not in cells or (value > cells[key] if better else value < cells[key]):
            cells[key] = value
    return {
        "x": x_name,
        "y": y_name,
        "xs": xs,
        "ys": ys,
        "objective": search.objective,
        "values": [[cells.get((x, y)) for x in xs] for y in ys],
    }


def curve_points(
    ts: np.ndarray, equity: np.ndarray, max_points: int = CURVE_POINTS
) -> list[dict[str, Any]]:
    """Equity and drawdown at most `max_points` times; each point carries the deepest drawdown
    of the bars it stands for, so downsampling never hides the worst moment."""
    n = equity.shape[0]
    if not n:
        return []
    high = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(high > 0, 1.0 - equity / high, 0.0)
    edges = np.unique(np.linspace(0, n, min(max_points, n) + 1).round().astype(np.int64))
    picks = edges[1:] - 1
    worst = np.maximum.reduceat(depth, edges[:-1])
    return [
        {
            "time": int(ts[i] // 1_000_000_000),
            "equity": round(float(equity[i]), 2),
            "drawdown": round(float(d), 6),
        }
        for i, d in zip(picks, worst, strict=True)
    ]


MAX_INDICATOR_BARS = 2000
MAX_WARMUP_BARS = 20_000


def indicator_lines(*, config: StrategyConfig, symbol: str, limit: int = 500) -> dict[str, Any]:
    """A config's indicator lines (its plugin's `plot`) over a symbol's newest `limit` bars,
    for the live dashboard's charts. Computed over extra history so slow indicators are warm."""
    from marketdata.selectors import bars_recent

    cls = registry.get_strategy(config.plugin)
    if cls is None:
        raise InvalidStrategyConfig("plugin", f"no strategy named {config.plugin!r} is loaded")
    symbol = symbol.strip().upper()
    if symbol not in [s.upper() for s in config.symbols]:
        raise InvalidStrategyConfig("symbol", f"{symbol!r} is not one of this config's symbols")
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 1 <= limit <= MAX_INDICATOR_BARS
    ):
        raise InvalidStrategyConfig("limit", f"must be an integer from 1 to {MAX_INDICATOR_BARS}")
    try:
        params = cls.validate_params(config.params)
    except Exception as exc:  # noqa: BLE001 - a config saved before its plugin changed
        raise InvalidStrategyConfig("params", str(exc)) from None
    # Warm-up history, capped so no request reads more than about 22,000 bars.
    warm = min(max(cls.history_bars(params), cls.required_bars(params)), MAX_WARMUP_BARS)
    bars = bars_recent(symbol, limit + warm, config.timeframe)
    lines: dict[str, list[dict[str, Any]]] = {}
    if len(bars):
        try:
            plotted = cls().plot(bars, params)
        except Exception:  # noqa: BLE001 - a plugin's plotting bug is not the reader's error
            logger.exception("%s.plot failed", cls.name)
            plotted = {}
        seconds = (bars.index.as_unit("ns").asi8 // 1_000_000_000)[-limit:].tolist()
        for label, series in plotted.items():
            values = np.asarray(series, dtype=np.float64)[-limit:]
            lines[str(label)] = [
                {"time": t, "value": round(float(v), 4)}
                for t, v in zip(seconds, values, strict=True)
                if math.isfinite(v)
            ]
    return {"config_id": config.pk, "plugin": config.plugin, "symbol": symbol, "lines": lines}


def chart_data(
    inputs: dict[str, Any], market: optimizer.Market, params: dict[str, Any]
) -> dict[str, Any]:
    """What the result page draws: account equity and drawdown, and for the first symbol the
    last CHART_BARS candles with the strategy's indicator lines and the trades' entries/exits."""
    cls = registry.get_strategy(inputs["plugin"])
    strategy = cls()
    evaluation = optimizer.evaluate(strategy, market, params, costs_of(inputs), detail=True)
    symbol = next((s for s in market.symbols if len(market.frames[s])), None)
    out: dict[str, Any] = {
        "curve": curve_points(evaluation.timestamps, evaluation.equity),
        "symbol": symbol,
        "candles": [],
        "indicators": {},
        "markers": [],
    }
    if symbol is None:
        return out
    frame = market.frames[symbol]
    first = max(0, len(frame) - CHART_BARS)
    shown = frame.iloc[first:]
    seconds = (shown.index.as_unit("ns").asi8 // 1_000_000_000).tolist()
    out["candles"] = [
        {
            "time": t,
            "open": round(o, 4),
            "high": round(h, 4),
            "low": round(lo, 4),
            "close": round(c, 4),
        }
        for t, o, h, lo, c in zip(
            seconds,
            shown["open"].tolist(),
            shown["high"].tolist(),
            shown["low"].tolist(),
            shown["close"].tolist(),
            strict=True,
        )
    ]
    try:
        lines = strategy.plot(frame, params)
    except Exception:  # noqa: BLE001 - a plugin's plotting bug must not fail the run
        logger.exception("%s.plot failed", cls.name)
        lines = {}
    for label, series in lines.items():
        values = np.asarray(series, dtype=np.float64)[first:]
        out["indicators"][str(label)] = [
            {"time": t, "value": round(float(v), 4)}
            for t, v in zip(seconds, values, strict=True)
            if math.isfinite(v)
        ]
    trades = evaluation.sleeves[symbol].trades
    for row in trades:
        for index, kind in ((int(row["entry_index"]), "entry"), (int(row["exit_index"]), "exit")):
            if kind == "exit" and row["is_open"]:
                continue
            if index >= first:
                out["markers"].append(
                    {
                        "time": seconds[index - first],
                        "kind": kind,
                        "side": "long" if row["side"] > 0 else "short",
                        "price": round(
                            float(row["entry_price"] if kind == "entry" else row["exit_price"]), 4
                        ),
                    }
                )
    out["markers"].sort(key=lambda m: m["time"])
    return out
