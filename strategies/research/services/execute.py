"""Execute a queued research run to its end (done, failed or canceled), in the `research`
worker or in process for the management commands."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.utils import timezone

from strategies import registry
from strategies.exceptions import NoMarketData
from strategies.research import optimizer
from strategies.research.models import ResearchRun, RunKind, RunStatus
from strategies.research.services.inputs import costs_of, search_of
from strategies.research.services.progress import Reporter, send_progress
from strategies.research.services.results import (
    chart_data,
    heatmap,
    row_metrics,
    walk_forward_summary,
)
from trading.exceptions import DomainError

logger = logging.getLogger(__name__)


def run_execute(*, run_id: int, on_progress: Any = None, worker: str = "") -> ResearchRun | None:
    """Run a queued run to its end (done, failed or canceled). Called by the research worker
    (and by the management commands, in process). A run that is not queued is left alone, so a
    redelivered task never runs twice."""
    now = timezone.now()
    claimed = ResearchRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, message="started", worker=worker[:200]
    )
    if not claimed:
        return ResearchRun.objects.filter(pk=run_id).first()
    run = ResearchRun.objects.get(pk=run_id)
    send_progress(run)
    reporter = Reporter(run, on_progress)
    try:
        if run.kind == RunKind.BACKTEST:
            result = _execute_backtest(run, reporter)
        elif run.kind == RunKind.OPTIMIZE:
            result = _execute_optimize(run, reporter)
        else:
            result = _execute_walk_forward(run, reporter)
    except optimizer.Canceled:
        return _finish(run, RunStatus.CANCELED, message="canceled")
    except DomainError as exc:
        return _finish(run, RunStatus.FAILED, error=f"{exc.code}: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - a run's failure is recorded on the run, never lost
        logger.exception("research run %s failed", run_id)
        return _finish(run, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
    if on_progress:
        on_progress(1.0, "done")
    return _finish(run, RunStatus.DONE, result=result, message="done")


def runs_interrupted_fail(*, worker: str) -> int:
    """Runs this worker was running when it stopped (crash, deploy) can never finish: mark them
    failed when it starts again. Runs on other workers are theirs."""
    runs = list(ResearchRun.objects.filter(status=RunStatus.RUNNING, worker=worker))
    for run in runs:
        _finish(run, RunStatus.FAILED, error="interrupted: the research worker stopped")
    return len(runs)


def _finish(
    run: ResearchRun, status: str, *, result: Any = None, error: str = "", message: str = ""
) -> ResearchRun:
    run.status = status
    run.finished_at = timezone.now()
    run.result = result
    run.error = error
    run.message = message or (error[:200] if error else "")
    if status == RunStatus.DONE:
        run.progress = 1.0
    run.save(update_fields=["status", "finished_at", "result", "error", "message", "progress"])
    send_progress(run)
    return run


def _window(inputs: dict[str, Any], run: ResearchRun) -> tuple[Any, Any]:
    end = pd.Timestamp(inputs["end"]).to_pydatetime() if inputs.get("end") else run.created_at
    return end - timedelta(days=inputs["days"]), end


def _load_market(
    inputs: dict[str, Any], run: ResearchRun, reporter: Reporter, share: float
) -> optimizer.Market:
    from strategies.selectors import bars_for_backtest

    start, end = _window(inputs, run)
    frames = {}
    for i, symbol in enumerate(inputs["symbols"]):
        reporter(share * i / len(inputs["symbols"]), f"loading {symbol}")
        if reporter.should_cancel():
            raise optimizer.Canceled
        bars, _source = bars_for_backtest(symbol, "5Min", start, end)
        if bars.empty:
            raise NoMarketData(
                f"no 5Min bars for {symbol} in the last {inputs['days']} days",
                details={"symbol": symbol},
            )
        frames[symbol] = bars[["open", "high", "low", "close", "volume"]].astype(np.float64)
    return optimizer.Market(frames)


def _single_backtest(
    run: ResearchRun, params: dict[str, Any], reporter: Reporter, start: float, share: float
) -> dict[str, Any]:
    """The strategy_backtest service's own answer (the API contract of a backtest)."""
    from strategies.services import strategy_backtest

    inputs = run.inputs
    symbols = inputs["symbols"]
    count = {"i": 0}

    def progress(symbol: str) -> None:
        reporter(start + share * count["i"] / len(symbols), f"backtesting {symbol}")
        count["i"] += 1
        if reporter.should_cancel():
            raise optimizer.Canceled

    _start, end = _window(inputs, run)
    result = strategy_backtest(
        plugin=inputs["plugin"],
        symbols=symbols,
        days=inputs["days"],
        params=params,
        allocation=inputs["allocation"],
        initial_cash=inputs["initial_cash"],
        fee_bps=inputs["fee_bps"],
        fee_per_trade=inputs["fee_per_trade"],
        slippage_bps=inputs["slippage_bps"],
        end=end,
        progress=progress,
    )
    if run.config_id:
        result["config_id"] = run.config_id
        result["config_name"] = run.config.name if run.config else None
    return result


def _execute_backtest(run: ResearchRun, reporter: Reporter) -> dict[str, Any]:
    result = _single_backtest(run, run.inputs["params"], reporter, 0.0, 0.7)
    market = _load_market(run.inputs, run, reporter, 0.0)
    reporter(0.85, "charting")
    result["chart"] = chart_data(run.inputs, market, run.inputs["params"])
    return result


def _execute_optimize(run: ResearchRun, reporter: Reporter) -> dict[str, Any]:
    inputs = run.inputs
    search = search_of(inputs, inputs)
    market = _load_market(inputs, run, reporter, 0.1)
    cls = registry.get_strategy(inputs["plugin"])
    started = time.perf_counter()
    rows = optimizer.evaluate_grid(
        cls,
        market,
        search.combos,
        costs_of(inputs),
        workers=settings.RESEARCH_PROCESSES or optimizer.default_workers(),
        progress=lambda done, total: reporter(
            0.1 + 0.8 * done / total, f"{done}/{total} combinations"
        ),
        should_cancel=reporter.should_cancel,
    )
    seconds = time.perf_counter() - started
    ranked = optimizer.rank(search, rows)
    table = [
        {"params": {k: search.combos[i][k] for k in search.axes}, **row_metrics(rows[i])}
        for i in range(len(rows))
    ]
    out: dict[str, Any] = {
        "objective": search.objective,
        "axes": search.axes,
        "combinations": len(rows),
        "excluded": search.excluded,
        "eligible": len(ranked),
        "seconds": round(seconds, 3),
        "combo_bars_per_s": round(
            len(rows) * sum(len(f) for f in market.frames.values()) / max(seconds, 1e-9)
        ),
        "ranking": [table[i] | {"rank": n + 1} for n, i in enumerate(ranked[:25])],
        "rows": table,
        "heatmap": heatmap(search, rows),
        "best": None,
    }
    if ranked:
        best = search.combos[ranked[0]]
        single = _single_backtest(run, best, reporter, 0.9, 0.05)
        single["chart"] = chart_data(inputs, market, best)
        out["best"] = single
    return out


def _execute_walk_forward(run: ResearchRun, reporter: Reporter) -> dict[str, Any]:
    inputs = run.inputs
    search = search_of(inputs, inputs)
    market = _load_market(inputs, run, reporter, 0.05)
    cls = registry.get_strategy(inputs["plugin"])
    wf = inputs["walk_forward"]
    out = optimizer.walk_forward(
        cls,
        market,
        search,
        costs_of(inputs),
        train_days=wf["train_days"],
        test_days=wf["test_days"],
        anchored=wf["anchored"],
        workers=settings.RESEARCH_PROCESSES or optimizer.default_workers(),
        progress=lambda done, total: reporter(
            0.05 + 0.9 * done / total, f"{done}/{total} window-combinations"
        ),
        should_cancel=reporter.should_cancel,
    )
    return walk_forward_summary(search, out, inputs["initial_cash"])
