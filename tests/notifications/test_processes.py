"""The processes that deliver notifications are started by the Procfile and by `make run`."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[2]


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))


def test_a_worker_of_its_own_consumes_the_notifications_queue():
    processes = _procfile()
    assert "-Q notifications" in processes["notify"]
    assert "-Q" not in processes["worker"]  # trading's worker never waits on a receiver
    assert processes["telegram"] == "python manage.py telegram_poll"


def test_make_run_starts_the_notify_worker_and_telegram_only_with_a_token(monkeypatch, tmp_path):
    from tradingrobot import launcher

    started = {}

    def fake_exec(path, argv, env):
        started["argv"] = argv

    for token in ("", "123:abc"):
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
        with (
            mock.patch.object(launcher.subprocess, "run"),
            mock.patch.object(launcher.os, "execvpe", fake_exec),
        ):
            launcher.main()
        names = started["argv"][started["argv"].index("start") + 3 :]
        assert "notify" in names and ("telegram" in names) == bool(token)
