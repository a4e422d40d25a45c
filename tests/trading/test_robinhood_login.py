"""The Robinhood broker's login against the fake: TOTP, tokens encrypted in the database,
refresh before password, device approval reported instead of prompting, refused logins."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from tests.fakes.robinhood_fixtures import fake_robinhood, robinhood_settings  # noqa: F401
from trading.brokers import get_broker
from trading.brokers.base import BrokerError
from trading.models import RobinhoodLogin

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(robinhood_settings):  # noqa: F811
    return robinhood_settings


def logins(fake, grant="password"):
    return [r for r in fake.requests_to("POST", "/oauth2/token/") if r.body["grant_type"] == grant]


def poll_due() -> None:
    """The approval poll interval has passed (instead of sleeping through it)."""
    row = RobinhoodLogin.objects.get()
    row.challenge["next_poll_at"] = (timezone.now() - timedelta(seconds=1)).isoformat()
    row.save()


def raw_row() -> str:
    """The login row as PostgreSQL/SQLite stores it, every column as text."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {RobinhoodLogin._meta.db_table}")
        return " ".join(str(value) for value in cursor.fetchone())


def test_login_sends_a_valid_totp_code_and_stores_tokens_encrypted(fake, tmp_path):
    account = get_broker().account()

    assert account.buying_power == fake.buying_power
    [login] = logins(fake)
    assert login.status == 200 and len(login.body["mfa_code"]) == 6
    assert login.body["device_token"] and fake.violations == []
    # The tokens the fake issued are in the row only as ciphertext.
    [access] = fake.access_tokens
    [refresh] = fake.refresh_tokens
    stored = raw_row()
    assert access not in stored and refresh not in stored
    assert login.body["device_token"] not in stored
    assert RobinhoodLogin.objects.get().state == "ok"
    # Nothing in the home directory (robin-stocks writes ~/.tokens/robinhood.pickle).
    assert list((tmp_path / "home").iterdir()) == []

    # Another process (a new broker instance) reuses the stored token: no second login.
    get_broker().positions()
    assert len(fake.requests_to("POST", "/oauth2/token/")) == 1


def test_expired_token_is_refreshed_not_logged_in_again(fake):
    get_broker().account()
    fake.expire_access_tokens()  # Robinhood answers 401 to the stored token

    get_broker().account()

    assert len(logins(fake)) == 1
    assert len(logins(fake, "refresh_token")) == 1
    # Same device token on the refresh as on the login.
    assert (
        logins(fake, "refresh_token")[0].body["device_token"]
        == logins(fake)[0].body["device_token"]
    )


def test_token_expiring_by_its_time_is_refreshed_before_any_call(fake):
    get_broker().account()
    RobinhoodLogin.objects.update(access_expires_at=timezone.now() - timedelta(seconds=1))
    before = len(fake.requests)

    get_broker().account()

    paths = [r.path for r in fake.requests[before:]]
    assert paths[0] == "/oauth2/token/" and len(logins(fake)) == 1
    assert not any(r.status == 401 for r in fake.requests)


def test_refused_refresh_token_falls_back_to_one_password_login(fake):
    get_broker().account()
    fake.expire_access_tokens()
    fake.refresh_tokens.clear()

    get_broker().account()

    assert [r.status for r in logins(fake, "refresh_token")] == [401]
    assert len(logins(fake)) == 2


def test_device_approval_is_reported_not_prompted_then_completes(fake, caplog, reader):
    fake.require_approval = True
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="trading.brokers.robinhood"),
        pytest.raises(BrokerError) as caught,
    ):
        get_broker().account()
    assert time.monotonic() - started < 5  # robin-stocks would poll for two minutes
    assert caught.value.code == "broker_approval_needed" and not caught.value.permanent
    assert "approval needed" in caplog.text

    status = reader.get("/api/v1/status").json()["broker_state"]
    assert status["state"] == "approval_needed" and status["ok"] is False
    assert "approval needed" in status["detail"] and status["experimental"] is True
    health = reader.get("/api/v1/health").json()
    assert health["status"] == "degraded"
    assert health["broker_state"]["state"] == "approval_needed"

    # Within the poll interval nothing is sent: no hammering while a human decides.
    before = len(fake.requests)
    with pytest.raises(BrokerError):
        get_broker().account()
    assert len(fake.requests) == before

    poll_due()
    with pytest.raises(BrokerError) as caught:  # asked again: still not approved
        get_broker().account()
    assert caught.value.code == "broker_approval_needed"
    assert fake.requests_to("GET", "/push/")[-1].status == 200

    fake.approve()  # the user taps "approve" in the app
    poll_due()
    assert get_broker().account().buying_power == fake.buying_power
    first, last = logins(fake)[0], logins(fake)[-1]
    assert last.status == 200 and last.body["device_token"] == first.body["device_token"]
    assert RobinhoodLogin.objects.get().state == "ok"
    assert reader.get("/api/v1/health").json()["status"] == "ok"


def test_sms_challenge_is_answered_with_the_verify_command(fake, settings):
    fake.require_approval = True
    fake.challenge_type = "sms"
    with pytest.raises(BrokerError) as caught:
        get_broker().account()
    assert "robinhood_verify" in caught.value.message
    [challenge] = fake.challenges.values()

    out = StringIO()
    call_command("robinhood_verify", challenge["code"], stdout=out)
    assert "validated" in out.getvalue()

    assert get_broker().account().buying_power == fake.buying_power
    assert RobinhoodLogin.objects.get().challenge == {}


def test_wrong_password_is_permanent_and_not_retried_until_the_retry_time(fake, settings):
    settings.ROBINHOOD_PASSWORD = "wrong"
    with pytest.raises(BrokerError) as caught:
        get_broker().account()
    assert caught.value.permanent and caught.value.code == "broker_auth_error"
    assert "Unable to log in" in caught.value.message

    with pytest.raises(BrokerError) as caught:
        get_broker().account()
    assert caught.value.code == "rate_limited"  # the login retry time, not a second attempt
    assert len(logins(fake)) == 1
    row = RobinhoodLogin.objects.get()
    assert row.state == "login_failed" and row.cooldown_until > timezone.now()


def test_missing_totp_secret_is_named(fake, settings):
    settings.ROBINHOOD_MFA_SECRET = ""
    with pytest.raises(BrokerError) as caught:
        get_broker().account()
    assert "ROBINHOOD_MFA_SECRET" in caught.value.message
    assert "mfa_code" not in logins(fake)[0].body


def test_wrong_totp_secret_is_refused(fake, settings):
    import pyotp

    settings.ROBINHOOD_MFA_SECRET = pyotp.random_base32()
    with pytest.raises(BrokerError) as caught:
        get_broker().account()
    assert caught.value.permanent and "valid code" in caught.value.message


def test_changed_secret_key_means_a_fresh_login_not_a_crash(fake, settings):
    get_broker().account()
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40

    get_broker().account()

    assert len(logins(fake)) == 2
    assert logins(fake)[1].body["device_token"] != logins(fake)[0].body["device_token"]


def test_missing_credentials_fail_at_construction(fake, settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.ROBINHOOD_PASSWORD = ""
    with pytest.raises(ImproperlyConfigured, match="ROBINHOOD_PASSWORD"):
        get_broker()


def test_rate_limited_login_cools_down_and_is_not_repeated(fake):
    fake.fail_next("POST", "/oauth2/token/", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(BrokerError) as caught:
        get_broker().account()
    assert caught.value.code == "rate_limited" and not caught.value.permanent

    for _ in range(3):  # restarts, retries: nothing reaches Robinhood
        with pytest.raises(BrokerError):
            get_broker().account()
    assert len(fake.requests_to("POST", "/oauth2/token/")) == 1
    row = RobinhoodLogin.objects.get()
    assert row.state == "rate_limited" and "429 on login" in row.detail


def test_admin_shows_the_login_state_but_no_token(fake, admin_client):
    get_broker().account()
    [access] = fake.access_tokens

    page = admin_client.get("/admin/trading/robinhoodlogin/1/change/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "ok" in text and access not in text
    assert RobinhoodLogin.objects.get().access_token not in text  # nor its ciphertext
