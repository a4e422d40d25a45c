"""The experimental Robinhood broker's login: OAuth2 tokens at /oauth2/token/, the way
robin-stocks 3.4 logs in (robin_stocks/robinhood/authentication.py), without its prompts and
without its ~/.tokens pickle.

- **Password login**: robin-stocks' form payload (its public `client_id`, `scope=internal`,
  `expires_in=86400`, a random `device_token`, `mfa_code` from the TOTP secret
  ROBINHOOD_MFA_SECRET via pyotp).
- **Refresh first**: a stored refresh token is used (`grant_type=refresh_token`, the standard
  OAuth2 grant on the same endpoint) before any new password login, since every password login
  is one more chance of a lockout. robin-stocks does not refresh; it logs in again.
- **Device approval**: when Robinhood answers with a `verification_workflow`, robin-stocks polls
  for two minutes and prompts with input(). Here the workflow is started once
  (pathfinder/user_machine, then the inquiry's `sheriff_challenge`), the login row says
  `approval_needed` (shown by /status and /health, and logged), and every call raises a
  temporary BrokerError until the approval is seen: the challenge's status is asked at most every
  ROBINHOOD_APPROVAL_POLL_SECONDS (`push/{id}/get_prompts_status/` for an app prompt, the
  inquiry for an SMS/e-mail code, which `manage.py robinhood_verify CODE` answers), then the
  workflow is continued and the password login repeated with the same device token.
- **Storage**: the device token (an approved device stays approved), the access and the refresh
  token live in the one RobinhoodLogin row, each Fernet-encrypted with a key derived from
  SECRET_KEY by HKDF-SHA256. Nothing is written to a file.
"""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from trading.brokers.base import BrokerError
from trading.brokers.robinhood_http import RobinhoodHTTP

logger = logging.getLogger("trading.brokers.robinhood")

# The OAuth client id of Robinhood's web app, as robin-stocks sends it.
CLIENT_ID = "c82SH0WZOsabOXGP2sxqcj34FxkvfnWRZBKlBjFS"
SCOPE = "internal"
EXPIRES_IN = 86400
TOKEN_PATH = "oauth2/token/"
EXPIRY_MARGIN = timedelta(minutes=5)  # refresh a little before Robinhood would refuse
SAVED_FIELDS = [
    "username",
    "device_token",
    "access_token",
    "refresh_token",
    "access_expires_at",
    "state",
    "detail",
    "challenge",
    "cooldown_until",
    "updated_at",
]


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"tradingrobot.robinhood",
        info=b"robinhood login tokens",
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(value: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(value.encode()).decode() if value else ""


def decrypt(value: str) -> str:
    """The plaintext, or "" when there is none or SECRET_KEY changed (then log in afresh)."""
    if not value:
        return ""
    try:
        return _fernet(settings.SECRET_KEY).decrypt(value.encode()).decode()
    except InvalidToken:
        logger.warning("Robinhood tokens cannot be decrypted (SECRET_KEY changed?); ignored")
        return ""


def approval_needed(detail: str) -> BrokerError:
    return BrokerError(
        f"Robinhood approval needed: {detail}", permanent=False, code="broker_approval_needed"
    )


def _login_row():
    """The login row, created if missing, locked until the end of the transaction."""
    from trading.models import RobinhoodLogin

    RobinhoodLogin.objects.get_or_create(pk=1)
    return RobinhoodLogin.objects.select_for_update().get(pk=1)


class RobinhoodAuth:
    def __init__(self, http: RobinhoodHTTP) -> None:
        self.http = http

    def authorization(self) -> str:
        """`Bearer <access token>`, logging in (refresh first) when there is no valid one."""
        from trading.models import RobinhoodLogin

        row = RobinhoodLogin.objects.filter(pk=1).first()
        token = self._valid_access(row) if row is not None else ""
        if token and not row.challenge:
            return f"Bearer {token}"
        return self._login()

    def after_unauthorized(self) -> str:
        """A 401 with the current token: drop it and log in again (refresh first)."""
        from trading.models import RobinhoodLogin

        RobinhoodLogin.objects.filter(pk=1).update(access_token="", access_expires_at=None)
        return self._login()

    @staticmethod
    def _valid_access(row) -> str:
        if row.username != settings.ROBINHOOD_USERNAME:
            return ""
        if row.access_expires_at is None or row.access_expires_at <= timezone.now():
            return ""
        return decrypt(row.access_token)

    def _login(self) -> str:
        """Under the row's lock, so concurrent workers log in once; state is committed even
        when the login fails (the error is raised after the commit)."""
        error: BrokerError | None = None
        with transaction.atomic():
            row = _login_row()
            token = self._valid_access(row)
            if token and not row.challenge:
                return f"Bearer {token}"  # another worker logged in meanwhile
            try:
                token = self._obtain(row)
            except BrokerError as exc:
                error = exc
                if exc.code == "rate_limited":
                    # The HTTP layer recorded a cool-down in the row meanwhile: keep it.
                    fresh = type(row).objects.get(pk=row.pk)
                    row.state, row.detail = fresh.state, fresh.detail
                    row.cooldown_until = fresh.cooldown_until
            # rate_limit_strikes belongs to the HTTP layer: never written from here.
            row.save(update_fields=SAVED_FIELDS)
        if error is not None:
            raise error
        return f"Bearer {token}"

    def _obtain(self, row) -> str:
        from trading.models import RobinhoodLoginState

        if row.username != settings.ROBINHOOD_USERNAME:
            # Another user's tokens (and device) are no use: start over.
            row.username = settings.ROBINHOOD_USERNAME
            row.device_token = row.access_token = row.refresh_token = ""
            row.challenge, row.state = {}, RobinhoodLoginState.LOGGED_OUT
        if row.challenge:
            return self._continue_workflow(row)
        if row.state == RobinhoodLoginState.LOGIN_FAILED:
            self.http.check_cooldown()  # no password attempt before the retry time
        refresh = decrypt(row.refresh_token)
        if refresh:
            token = self._refresh(row, refresh)
            if token:
                return token
        return self._password_login(row)

    def _device_token(self, row) -> str:
        device = decrypt(row.device_token)
        if not device:
            # robin-stocks draws 16 random bytes in the 8-4-4-4-12 layout: a random UUID.
            device = str(uuid.uuid4())
            row.device_token = encrypt(device)
        return device

    def _refresh(self, row, refresh: str) -> str:
        body = self.http.call(
            "POST",
            TOKEN_PATH,
            action="token refresh",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "client_id": CLIENT_ID,
                "scope": SCOPE,
                "expires_in": EXPIRES_IN,
                "device_token": self._device_token(row),
            },
            expect_error_body=True,
        )
        if isinstance(body, dict) and body.get("access_token"):
            logger.info("Robinhood access token refreshed")
            return self._store(row, body)
        logger.info("Robinhood refused the refresh token; logging in with the password")
        row.refresh_token = row.access_token = ""
        return ""

    def _password_login(self, row) -> str:
        import pyotp

        from trading.models import RobinhoodLoginState

        device = self._device_token(row)
        payload = {
            "client_id": CLIENT_ID,
            "expires_in": EXPIRES_IN,
            "grant_type": "password",
            "password": settings.ROBINHOOD_PASSWORD,
            "scope": SCOPE,
            "username": settings.ROBINHOOD_USERNAME,
            "device_token": device,
            "try_passkeys": False,
            "token_request_path": "/login",
            "create_read_only_secondary_token": True,
        }
        if settings.ROBINHOOD_MFA_SECRET:
            payload["mfa_code"] = pyotp.TOTP(settings.ROBINHOOD_MFA_SECRET).now()
        body = self.http.call(
            "POST", TOKEN_PATH, action="login", data=payload, expect_error_body=True
        )
        if not isinstance(body, dict):
            raise BrokerError(
                "Robinhood answered the login without a JSON object",
                permanent=False,
                code="broker_bad_response",
            )
        if body.get("access_token"):
            logger.info("Robinhood login succeeded")
            return self._store(row, body)
        workflow = body.get("verification_workflow")
        if isinstance(workflow, dict) and workflow.get("id"):
            return self._start_workflow(row, device, str(workflow["id"]))
        if body.get("mfa_required"):
            detail = (
                "Robinhood refused the MFA code (check ROBINHOOD_MFA_SECRET and the clock)"
                if settings.ROBINHOOD_MFA_SECRET
                else "Robinhood asks for an MFA code: set ROBINHOOD_MFA_SECRET"
            )
        else:
            detail = f"Robinhood refused the login: {body.get('detail') or 'no reason given'}"
        row.state, row.detail = RobinhoodLoginState.LOGIN_FAILED, detail[:255]
        row.access_token = row.refresh_token = ""
        row.cooldown_until = timezone.now() + timedelta(
            seconds=settings.ROBINHOOD_LOGIN_RETRY_SECONDS
        )
        logger.error("%s; next attempt after %s", detail, row.cooldown_until)
        raise BrokerError(detail, permanent=True, code="broker_auth_error")

    def _store(self, row, body: dict) -> str:
        from trading.models import RobinhoodLoginState

        access = str(body["access_token"])
        row.access_token = encrypt(access)
        if body.get("refresh_token"):
            row.refresh_token = encrypt(str(body["refresh_token"]))
        try:
            expires_in = float(body.get("expires_in") or EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = EXPIRES_IN
        row.access_expires_at = timezone.now() + timedelta(seconds=expires_in) - EXPIRY_MARGIN
        row.state, row.detail, row.challenge = RobinhoodLoginState.OK, "", {}
        row.cooldown_until = None
        return access

    # -- the verification workflow (device approval) -----------------------------------------

    def _start_workflow(self, row, device: str, workflow_id: str) -> str:
        from trading.models import RobinhoodLoginState

        machine = self.http.call(
            "POST",
            "pathfinder/user_machine/",
            action="login verification",
            json_body={"device_id": device, "flow": "suv", "input": {"workflow_id": workflow_id}},
        )
        machine_id = str(machine.get("id", "")) if isinstance(machine, dict) else ""
        if not machine_id:
            raise BrokerError(
                "Robinhood started no verification for the login",
                permanent=False,
                code="broker_bad_response",
            )
        challenge = self._inquiry_challenge(machine_id)
        kind = str(challenge.get("type") or "prompt")
        row.challenge = {
            "workflow_id": workflow_id,
            "machine_id": machine_id,
            "challenge_id": str(challenge.get("id") or ""),
            "challenge_type": kind,
        }
        row.state = RobinhoodLoginState.APPROVAL_NEEDED
        raise self._waiting(row)

    def _inquiry_challenge(self, machine_id: str) -> dict:
        view = self.http.call(
            "GET",
            f"pathfinder/inquiries/{machine_id}/user_view/",
            action="login verification",
        )
        context = view.get("context") if isinstance(view, dict) else None
        challenge = context.get("sheriff_challenge") if isinstance(context, dict) else None
        return challenge if isinstance(challenge, dict) else {}

    def _waiting(self, row) -> BrokerError:
        kind = row.challenge.get("challenge_type", "prompt")
        if kind in ("sms", "email"):
            detail = (
                f"approval needed: enter the code Robinhood sent by {kind} with "
                "`manage.py robinhood_verify CODE`"
            )
        else:
            detail = "approval needed: approve this login in the Robinhood app"
        row.detail = detail
        row.challenge["next_poll_at"] = (
            timezone.now() + timedelta(seconds=settings.ROBINHOOD_APPROVAL_POLL_SECONDS)
        ).isoformat()
        logger.warning("Robinhood %s", detail)
        return approval_needed(detail.removeprefix("approval needed: "))

    def _continue_workflow(self, row) -> str:
        challenge = row.challenge
        next_poll = challenge.get("next_poll_at")
        if next_poll and datetime.fromisoformat(next_poll) > timezone.now():
            raise approval_needed(row.detail.removeprefix("approval needed: "))
        if challenge.get("challenge_type") in ("sms", "email"):
            status = str(self._inquiry_challenge(challenge["machine_id"]).get("status", ""))
        else:
            answer = self.http.call(
                "GET",
                f"push/{challenge['challenge_id']}/get_prompts_status/",
                action="login verification",
            )
            status = str(answer.get("challenge_status", "")) if isinstance(answer, dict) else ""
        if status != "validated":
            raise self._waiting(row)
        result = self.http.call(
            "POST",
            f"pathfinder/inquiries/{challenge['machine_id']}/user_view/",
            action="login verification",
            json_body={"sequence": 0, "user_input": {"status": "continue"}},
        )
        context = result.get("type_context") if isinstance(result, dict) else None
        if not isinstance(context, dict) or context.get("result") != "workflow_status_approved":
            raise self._waiting(row)
        logger.info("Robinhood approved the device; logging in again")
        row.challenge = {}
        return self._password_login(row)


def challenge_respond(code: str) -> str:
    """Answer an SMS/e-mail challenge with the code the user received (robinhood_verify);
    the next call then continues the workflow at once. Returns the challenge's new status."""
    http = RobinhoodHTTP()
    with transaction.atomic():
        row = _login_row()
        challenge_id = row.challenge.get("challenge_id")
        if not challenge_id:
            raise BrokerError(
                "No Robinhood challenge is waiting for a code",
                permanent=True,
                code="broker_validation_error",
            )
        answer = http.call(
            "POST",
            f"challenge/{challenge_id}/respond/",
            action="login verification",
            data={"response": code},
            expect_error_body=True,
        )
        status = str(answer.get("status", "")) if isinstance(answer, dict) else ""
        row.challenge.pop("next_poll_at", None)
        row.save(update_fields=["challenge", "updated_at"])
    return status
