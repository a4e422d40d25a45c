"""Research runs: submit (validated, limited, queued), execute (in the `research` worker),
cancel. Views, the admin, the dashboard pages and the management commands all come here."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from strategies import registry
from strategies.exceptions import InvalidStrategyConfig, NoMarketData
from strategies.models import StrategyConfig
from strategies.research import optimizer
from strategies.research.exceptions import ResearchBusy, RunFinished
from strategies.research.grid import OBJECTIVES, Search, search_build
from strategies.research.models import ACTIVE_STATUSES, ResearchRun, RunKind, RunStatus
from trading.exceptions import DomainError

logger = logging.getLogger(__name__)

QUEUE = "research"
PROGRESS_EVERY_SECONDS = 0.5
CANCEL_POLL_SECONDS = 0.5
CHART_BARS = 1500  # candles kept for the result page's price chart
CURVE_POINTS = 600
MAX_WALK_FORWARD_FOLDS = 60


@dataclass(frozen=True)
class Principal:
    """Who asks: a user (session), an API key, or nobody (a management command)."""

    user: Any = None
    key: Any = None

    @property
    def label(self) -> str:
        if self.key is not None:
            return f"key:{self.key.name}"
        if self.user is not None and getattr(self.user, "is_authenticated", False):
            return f"user:{self.user.get_username()}"
        return "command"

    @property
    def is_operator(self) -> bool:
        """A management command on the server itself."""
        return self.key is None and self.user is None

    @property
    def may_trade(self) -> bool:
        if self.key is not None:
            return self.key.scope == "trade"
        return bool(self.user is not None and getattr(self.user, "is_staff", False))


# --- validation ----------------------------------------------------------------------------------


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


def _common_inputs(config: StrategyConfig | None, plugin: str, body: dict) -> dict[str, Any]:
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


def _search(inputs: dict[str, Any], body: dict) -> Search:
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


def _walk_forward_inputs(body: dict) -> dict[str, Any] | None:
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


def _plugin_of(config: StrategyConfig | None, body: dict) -> str:
    plugin = config.plugin if config else body.get("plugin")
    if not isinstance(plugin, str) or registry.get_strategy(plugin) is None:
        raise InvalidStrategyConfig("plugin", f"no strategy named {plugin!r} is loaded")
    return plugin


# --- submit ------------------------------------------------------------------------------------


def _check_limits(principal: Principal) -> None:
    active = ResearchRun.objects.filter(status__in=ACTIVE_STATUSES)
    if active.count() >= settings.RESEARCH_MAX_ACTIVE:
        raise ResearchBusy(
            f"{settings.RESEARCH_MAX_ACTIVE} research runs are already queued or running; "
            "wait for one to finish or cancel one",
            details={"limit": settings.RESEARCH_MAX_ACTIVE, "scope": "global"},
        )
    if principal.key is None and principal.user is None:
        return  # a management command: the operator's own machine
    limit = (
        settings.RESEARCH_MAX_ACTIVE_TRADE
        if principal.may_trade
        else settings.RESEARCH_MAX_ACTIVE_READ
    )
    mine = (
        active.filter(requested_by_key=principal.key)
        if principal.key is not None
        else active.filter(requested_by_user=principal.user, requested_by_key__isnull=True)
    )
    if mine.count() >= limit:
        raise ResearchBusy(
            f"you have {limit} research run(s) queued or running, your share; "
            "wait for one to finish or cancel one",
            details={"limit": limit, "scope": "principal"},
        )


def run_submit(
    *,
    kind: str,
    body: dict,
    principal: Principal,
    config: StrategyConfig | None = None,
    enqueue: bool = True,
) -> ResearchRun:
    """Validate a research request completely, check the limits, store it as queued and hand it
    to the `research` queue after commit. Every mistake is a 400 naming its field."""
    plugin = _plugin_of(config, body)
    inputs = _common_inputs(config, plugin, body)
    if kind in (RunKind.OPTIMIZE, RunKind.WALK_FORWARD):
        search = _search(inputs, body)
        inputs |= {
            "grid": body.get("grid"),
            "constraints": [str(c) for c in search.constraints],
            "objective": search.objective,
            "min_trades": search.min_trades,
            "combinations": len(search.combos),
            "excluded": search.excluded,
        }
        wf = _walk_forward_inputs(body)
        if wf is not None:
            kind = RunKind.WALK_FORWARD
            inputs["walk_forward"] = wf
        elif kind == RunKind.WALK_FORWARD:
            raise InvalidStrategyConfig("walk_forward", "is required")
    elif kind != RunKind.BACKTEST:
        raise InvalidStrategyConfig("kind", f"unknown kind {kind!r}")
    with transaction.atomic():
        if principal.key is not None:
            # One submit at a time per key, so two concurrent requests cannot both pass the count.
            type(principal.key).objects.select_for_update().filter(pk=principal.key.pk).first()
        _check_limits(principal)
        run = ResearchRun.objects.create(
            kind=kind,
            config=config,
            plugin=plugin,
            requested_by_user=principal.user
            if getattr(principal.user, "is_authenticated", False)
            else None,
            requested_by_key=principal.key,
            requested_by=principal.label[:200],
            inputs=inputs,
        )
        _publish(run)
        if enqueue:
            from strategies.research.tasks import execute_run

            run_id = run.pk
            transaction.on_commit(lambda: execute_run.apply_async((run_id,), queue=QUEUE))
    return run


def run_cancel(*, run: ResearchRun, principal: Principal) -> ResearchRun:
    """Cancel a queued run at once; ask a running one to stop (it does at its next check)."""
    from strategies.research.exceptions import RunNotYours

    if not (principal.is_operator or principal.may_trade or _owns(principal, run)):
        raise RunNotYours("only whoever started this run, or a trade-scope key, may cancel it")
    with transaction.atomic():
        locked = ResearchRun.objects.select_for_update().get(pk=run.pk)
        if locked.status == RunStatus.QUEUED:
            locked.status = RunStatus.CANCELED
            locked.finished_at = timezone.now()
            locked.message = "canceled before it started"
        elif locked.status == RunStatus.RUNNING:
            locked.cancel_requested = True
            locked.message = "cancel requested"
        else:
            raise RunFinished(
                f"run {run.pk} is already {locked.status}", details={"status": locked.status}
            )
        locked.save(update_fields=["status", "finished_at", "message", "cancel_requested"])
        _publish(locked)
    return locked


def _owns(principal: Principal, run: ResearchRun) -> bool:
    if principal.key is not None:
        return run.requested_by_key_id == principal.key.pk
    return principal.user is not None and run.requested_by_user_id == principal.user.pk


# --- progress events -----------------------------------------------------------------------------


def progress_payload(run: ResearchRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "progress": round(float(run.progress), 4),
        "message": run.message,
        "plugin": run.plugin,
    }


def _publish(run: ResearchRun) -> None:
    from streaming.events import RESEARCH_PROGRESS
    from streaming.publish import publish

    publish(RESEARCH_PROGRESS, progress_payload(run))


class _Reporter:
    """Progress written to the row and published, at most every PROGRESS_EVERY_SECONDS; the
    cancel flag read back at the same pace."""

    def __init__(self, run: ResearchRun, on_progress: Any = None) -> None:
        self.run = run
        self.last = 0.0
        self.last_poll = 0.0
        self.canceled = False
        self.on_progress = on_progress

    def __call__(self, fraction: float, message: str = "") -> None:
        fraction = max(0.0, min(1.0, fraction))
        if self.on_progress:
            self.on_progress(fraction, message)
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_SECONDS and fraction < 1.0:
            return
        self.last = now
        self.run.progress = fraction
        self.run.message = message[:200]
        ResearchRun.objects.filter(pk=self.run.pk).update(
            progress=fraction, message=self.run.message
        )
        self.canceled = ResearchRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists()
        from streaming.events import RESEARCH_PROGRESS
        from streaming.publish import send_now

        send_now(RESEARCH_PROGRESS, progress_payload(self.run))

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if not self.canceled and now - self.last_poll >= CANCEL_POLL_SECONDS:
            self.last_poll = now
            self.canceled = ResearchRun.objects.filter(
                pk=self.run.pk, cancel_requested=True
            ).exists()
        return self.canceled


# --- execute -------------------------------------------------------------------------------------


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
    _publish_now(run)
    reporter = _Reporter(run, on_progress)
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
    _publish_now(run)
    return run


def _publish_now(run: ResearchRun) -> None:
    from streaming.events import RESEARCH_PROGRESS
    from streaming.publish import send_now

    send_now(RESEARCH_PROGRESS, progress_payload(run))


def _window(inputs: dict[str, Any], run: ResearchRun) -> tuple[Any, Any]:
    end = pd.Timestamp(inputs["end"]).to_pydatetime() if inputs.get("end") else run.created_at
    return end - timedelta(days=inputs["days"]), end


def _load_market(
    inputs: dict[str, Any], run: ResearchRun, reporter: _Reporter, share: float
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


def _costs(inputs: dict[str, Any]) -> optimizer.Costs:
    return optimizer.Costs(
        initial_cash=inputs["initial_cash"],
        fee_bps=inputs["fee_bps"],
        fee_per_trade=inputs["fee_per_trade"],
        slippage_bps=inputs["slippage_bps"],
        allocation=inputs["allocation"],
    )


def _single_backtest(
    run: ResearchRun, params: dict[str, Any], reporter: _Reporter, start: float, share: float
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


def _execute_backtest(run: ResearchRun, reporter: _Reporter) -> dict[str, Any]:
    result = _single_backtest(run, run.inputs["params"], reporter, 0.0, 0.7)
    market = _load_market(run.inputs, run, reporter, 0.0)
    reporter(0.85, "charting")
    result["chart"] = chart_data(run.inputs, market, run.inputs["params"])
    return result


def _execute_optimize(run: ResearchRun, reporter: _Reporter) -> dict[str, Any]:
    inputs = run.inputs
    search = _search(inputs, inputs)
    market = _load_market(inputs, run, reporter, 0.1)
    cls = registry.get_strategy(inputs["plugin"])
    started = time.perf_counter()
    rows = optimizer.evaluate_grid(
        cls,
        market,
        search.combos,
        _costs(inputs),
        workers=settings.RESEARCH_PROCESSES or optimizer.default_workers(),
        progress=lambda done, total: reporter(
            0.1 + 0.8 * done / total, f"{done}/{total} combinations"
        ),
        should_cancel=reporter.should_cancel,
    )
    seconds = time.perf_counter() - started
    ranked = optimizer.rank(search, rows)
    table = [
        {"params": {k: search.combos[i][k] for k in search.axes}, **_row_metrics(rows[i])}
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


def _execute_walk_forward(run: ResearchRun, reporter: _Reporter) -> dict[str, Any]:
    inputs = run.inputs
    search = _search(inputs, inputs)
    market = _load_market(inputs, run, reporter, 0.05)
    cls = registry.get_strategy(inputs["plugin"])
    wf = inputs["walk_forward"]
    out = optimizer.walk_forward(
        cls,
        market,
        search,
        _costs(inputs),
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


def _row_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
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
    evaluation = optimizer.evaluate(strategy, market, params, _costs(inputs), detail=True)
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
