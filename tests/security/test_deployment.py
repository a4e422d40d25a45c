"""Login throttling and password rules, DEBUG off by default and refused on public addresses,
private var/ files, a bootstrap that never touches an existing user, one log line per Redis
outage (issue 14, findings 5, 6, 13, 14 and "found under faults")."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


# --- finding 5 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_login_is_throttled_by_username(url):
    get_user_model().objects.create_user("alice", password="correct-horse-battery-9", is_staff=True)
    statuses = []
    for n in range(8):
        client = Client(REMOTE_ADDR=f"10.1.0.{n}")  # a new address each time: by user
        response = client.post(url, {"username": "alice", "password": f"wrong-{n}"})
        statuses.append(response.status_code)
    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert statuses[-3:] == [429] * 3
    # Even the right password is refused while locked out, without hashing anything.
    started = time.process_time()
    response = Client(REMOTE_ADDR="10.1.0.99").post(
        url, {"username": "alice", "password": "correct-horse-battery-9"}
    )
    assert response.status_code == 429
    assert time.process_time() - started < 0.5


def test_login_is_throttled_by_ip_across_usernames():
    client = Client(REMOTE_ADDR="10.2.0.1")
    statuses = [
        client.post("/accounts/login/", {"username": f"user{n}", "password": "x"}).status_code
        for n in range(8)
    ]
    assert statuses[-2:] == [429, 429]
    # Another address may still log in.
    get_user_model().objects.create_user("bob", password="correct-horse-battery-9")
    response = Client(REMOTE_ADDR="10.2.0.2").post(
        "/accounts/login/", {"username": "bob", "password": "correct-horse-battery-9"}
    )
    assert response.status_code == 302


@pytest.mark.parametrize("weak", ["password", "12345678", "qwertyuiop", "9876543210"])
def test_weak_passwords_are_refused(weak):
    with pytest.raises(ValidationError):
        validate_password(weak)


# --- finding 6 ------------------------------------------------------------------------------------


def _settings_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    env.update(DJANGO_SETTINGS_MODULE="tradingrobot.settings", **extra)
    return env


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_is_off_unless_asked_for(tmp_path):
    env = _settings_env(VAR_DIR=str(tmp_path))
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    assert _python(code, env).stdout.strip() == "False"
    assert _python(code, dict(env, DEBUG="true")).stdout.strip() == "True"


def test_the_servers_refuse_debug_on_a_public_address(tmp_path):
    env = _settings_env(VAR_DIR=str(tmp_path), DEBUG="true")
    refused = subprocess.run(
        [sys.executable, "-m", "tradingrobot.bind_check", "0.0.0.0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "DEBUG is on" in refused.stderr
    for host in ("127.0.0.1", "::1", "localhost"):
        ok = subprocess.run(
            [sys.executable, "-m", "tradingrobot.bind_check", host],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ok.returncode == 0, ok.stderr
    off = subprocess.run(
        [sys.executable, "-m", "tradingrobot.bind_check", "0.0.0.0"],
        cwd=ROOT,
        env=dict(env, DEBUG="false"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert off.returncode == 0
    # gunicorn (the Procfile's web) exits before serving.
    gunicorn = Path(sys.executable).parent / "gunicorn"
    web = subprocess.run(
        [
            str(gunicorn),
            "-c",
            "python:tradingrobot.gunicorn_conf",
            "--bind",
            "0.0.0.0:0",
            "tradingrobot.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert web.returncode != 0
    assert "DEBUG is on" in web.stderr
    # The Procfile's ws line checks before daphne starts.
    procfile = (ROOT / "Procfile").read_text()
    assert "ws: python -m tradingrobot.bind_check ${HOST:-127.0.0.1} && exec daphne" in procfile


def test_make_run_asks_for_debug_on_loopback_only():
    from tradingrobot.bind_check import is_loopback
    from tradingrobot.launcher import process_env

    assert process_env({}, "/x")["DEBUG"] == "true"
    assert process_env({}, "/x")["HOST"] == "127.0.0.1"
    assert process_env({"HOST": "::1"}, "/x")["DEBUG"] == "true"
    assert "DEBUG" not in process_env({"HOST": "0.0.0.0"}, "/x")
    assert process_env({"DEBUG": "false"}, "/x")["DEBUG"] == "false"
    assert is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("robot.example.com")


# --- finding 13 -----------------------------------------------------------------------------------


def test_var_is_private(tmp_path):
    var = tmp_path / "var"
    env = _settings_env(VAR_DIR=str(var), DEBUG="true")
    env.pop("DATABASE_URL", None)
    done = _python("import django; django.setup()", env)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    for name in ("secret_key", "db.sqlite3"):
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600, name
    # Files left world-readable by an older version are made private too.
    (var / "secret_key").chmod(0o644)
    (var / "db.sqlite3").chmod(0o644)
    var.chmod(0o755)
    _python("import django; django.setup()", env)
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE((var / "secret_key").stat().st_mode) == 0o600
    assert stat.S_IMODE((var / "db.sqlite3").stat().st_mode) == 0o600


# --- finding 14 -----------------------------------------------------------------------------------


def test_bootstrap_never_modifies_an_existing_user(settings, tmp_path, market):
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path
    User = get_user_model()
    admin = User.objects.create_user("admin", password="my-own-secret-pw-77", is_staff=False)
    before = User.objects.filter(pk=admin.pk).values().get()
    call_command("bootstrap", stdout=io.StringIO())
    call_command("bootstrap", stdout=io.StringIO())
    after = User.objects.filter(pk=admin.pk).values().get()
    assert after == before
    assert User.objects.get(pk=admin.pk).check_password("my-own-secret-pw-77")
    stored = json.loads((tmp_path / "demo_credentials.json").read_text())
    assert stored["password"] is None
    assert Client().get("/api/v1/status", HTTP_AUTHORIZATION=f"Bearer {stored['api_key']}")


def test_bootstrap_creates_the_demo_admin_on_a_fresh_install(settings, tmp_path, market):
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path
    call_command("bootstrap", stdout=io.StringIO())
    stored = json.loads((tmp_path / "demo_credentials.json").read_text())
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(stored["password"])
    assert user.has_perm("trading.trade")


# --- Redis outage logging -------------------------------------------------------------------------


def test_a_redis_outage_is_logged_once_then_summarised(reader, session, caplog):
    from tradingrobot import redis_outage

    dead = {
        "default": {
            "BACKEND": "tradingrobot.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    caplog.set_level(logging.WARNING)
    with override_settings(CACHES=dead):
        for _ in range(60):
            assert reader.get("/api/v1/status").status_code == 200
        tracebacks = [r for r in caplog.records if r.exc_info]
        redis_lines = [r for r in caplog.records if r.name == "tradingrobot.redis"]
        assert len(tracebacks) == 1
        assert len(redis_lines) == 1
        assert redis_outage.is_down()
        redis_outage._last_summary -= redis_outage.SUMMARY_SECONDS  # ten seconds later
        reader.get("/api/v1/status")
        summary = [r.getMessage() for r in caplog.records if r.name == "tradingrobot.redis"][-1]
        assert "still unavailable" in summary and "rate limit" in summary
    assert reader.get("/api/v1/status").status_code == 200
    assert not redis_outage.is_down()
    assert "back after" in caplog.records[-1].getMessage()
