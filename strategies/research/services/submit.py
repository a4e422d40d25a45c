"""Submit (validated, limited, queued) and cancel research runs, on behalf of a principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from strategies.exceptions import InvalidStrategyConfig
from strategies.models import StrategyConfig
from strategies.research.exceptions import ResearchBusy, RunFinished
from strategies.research.models import ACTIVE_STATUSES, ResearchRun, RunKind, RunStatus
from strategies.research.services.inputs import (
    common_inputs,
    plugin_of,
    search_of,
    walk_forward_inputs,
)
from strategies.research.services.progress import publish_progress

QUEUE = "research"


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
    plugin = plugin_of(config, body)
    inputs = common_inputs(config, plugin, body)
    if kind in (RunKind.OPTIMIZE, RunKind.WALK_FORWARD):
        search = search_of(inputs, body)
        inputs |= {
            "grid": body.get("grid"),
            "constraints": [str(c) for c in search.constraints],
            "objective": search.objective,
            "min_trades": search.min_trades,
            "combinations": len(search.combos),
            "excluded": search.excluded,
        }
        wf = walk_forward_inputs(body)
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
        publish_progress(run)
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
        publish_progress(locked)
    return locked


def _owns(principal: Principal, run: ResearchRun) -> bool:
    if principal.key is not None:
        return run.requested_by_key_id == principal.key.pk
    return principal.user is not None and run.requested_by_user_id == principal.user.pk
