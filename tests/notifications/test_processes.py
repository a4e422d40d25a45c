"""The processes that deliver notifications are started by the Procfile and by `make run`."""

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
    assert processes["notify"].startswith("env BEAT_IN_WORKER=false ")
    assert "-Q" not in processes["worker"]  # trading's worker never waits on a receiver
    assert processes["telegram"] == "python manage.py telegram_poll"


def test_make_run_starts_the_notify_worker_and_telegram_only_with_a_token():
    from tradingrobot.launcher import default_processes, procfile_commands

    assert "notify" in default_processes({})
    assert "telegram" not in default_processes({})
    assert "telegram" in default_processes({"TELEGRAM_BOT_TOKEN": "123:abc"})
    assert set(default_processes({"TELEGRAM_BOT_TOKEN": "x"})) <= set(
        procfile_commands(ROOT / "Procfile")
    )
