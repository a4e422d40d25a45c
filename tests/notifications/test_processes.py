"""The processes that deliver notifications: the Procfile's own `notify` worker in production,
and `make run`'s one worker (which takes the notifications queue when no `notify` runs)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))


def test_a_worker_of_its_own_consumes_the_notifications_queue():
    processes = _procfile()
    assert "-Q notifications" in processes["notify"]
    # `make run` sets BEAT_IN_WORKER for its one trading worker: this one must not run a second
    # scheduler (every periodic job would run twice).
    assert processes["notify"].startswith("env BEAT_IN_WORKER=false STREAM_IN_WORKER=false ")
    assert processes["research"].startswith("env BEAT_IN_WORKER=false STREAM_IN_WORKER=false ")
    # In production trading's worker consumes its own queue only: it never waits on a receiver.
    assert "-Q ${WORKER_QUEUES:-celery} " in processes["worker"]
    assert processes["telegram"] == "python manage.py telegram_poll"


def test_make_run_delivers_from_its_one_worker_and_polls_telegram_only_with_a_token():
    from tradingrobot.launcher import default_processes, process_env, procfile_commands

    # The one worker also runs beat and the streams (a `stream` process would cost ~150 MB).
    assert default_processes({}) == ["ws", "worker"]
    assert "telegram" in default_processes({"TELEGRAM_BOT_TOKEN": "123:abc"})
    assert set(default_processes({"TELEGRAM_BOT_TOKEN": "x"})) <= set(
        procfile_commands(ROOT / "Procfile")
    )
    env = process_env({}, "/x", ["ws", "worker"])
    assert env["BEAT_IN_WORKER"] == env["STREAM_IN_WORKER"] == "true"
    assert env["WORKER_QUEUES"] == "celery,research,notifications"
    assert int(env["WORKER_CONCURRENCY"]) > 4  # threads to spare beside slow receivers
    # With the production set, each queue has its own worker and trading's keeps its own.
    env = process_env({}, "/x", ["web", "ws", "worker", "research", "notify", "beat", "stream"])
    assert "WORKER_QUEUES" not in env and "BEAT_IN_WORKER" not in env
    assert "STREAM_IN_WORKER" not in env
