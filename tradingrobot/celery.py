from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
# Celery's Django fixup runs Django's system checks when a worker or beat starts; they import
# the URLconf and with it every view, admin and API module (and pandas), which beat never needs:
# 170 MB for beat instead of ~60 (issue 20). The checks run where they belong: `manage.py
# migrate`/`check` (the launcher migrates before starting anything) and every web process.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("tradingrobot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def connections_by_age(sender=None, **_kwargs) -> None:
    """Around each task, what Django does around each request: close this thread's database
    connections that are broken or older than CONN_MAX_AGE (0: every time), keep the others
    (CELERY_DB_REUSE_MAX in settings says why Celery's own closing is held back). Never inside
    a caller's transaction (an eager task)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_ready.connect
def beat_in_worker(sender, **_kwargs) -> None:
    """With BEAT_IN_WORKER=true, this worker also runs the periodic-job scheduler, as a thread.

    For a one-machine stack with exactly one worker (`make run`, the README's small-server
    profile): one Django process fewer (~90 MB). Never set it on more than one worker: there must
    be exactly one beat. Celery's own `--beat` runs beat as a forked process, which saves nothing
    in resident memory."""
    if os.environ.get("BEAT_IN_WORKER", "").lower() not in {"1", "true", "yes"}:
        return
    from celery.beat import EmbeddedService
    from celery.signals import worker_shutdown

    service = EmbeddedService(sender.app, thread=True, scheduler_cls=sender.app.conf.beat_scheduler)
    service.start()

    @worker_shutdown.connect(weak=False)
    def stop_beat(**_kwargs) -> None:
        service.stop()


@worker_ready.connect
def stream_in_worker(sender, **_kwargs) -> None:
    """With STREAM_IN_WORKER=true, this worker also holds the streaming connections (the `stream`
    process's runner, realtime.runner.StreamThread), as a thread: `make run`'s one worker, one
    Django process fewer. The cluster-wide lease still decides who connects."""
    if os.environ.get("STREAM_IN_WORKER", "").lower() not in {"1", "true", "yes"}:
        return
    from celery.signals import worker_shutdown

    from realtime.runner import StreamThread

    thread = StreamThread()
    thread.start()

    @worker_shutdown.connect(weak=False)
    def stop_stream(**_kwargs) -> None:
        thread.stop()
