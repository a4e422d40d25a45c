"""The fake Robinhood's login half: OAuth2 tokens (password with a TOTP code, refresh), and the
device-approval workflow (pathfinder user_machine and inquiries, push prompt status), answering
as robin-stocks 3.4's authentication.py reads them. Mixed into FakeRobinhood."""

from __future__ import annotations

import uuid
from typing import Any

import pyotp

USERNAME = "trader@example.com"
PASSWORD = "correct horse battery staple"
MFA_SECRET = pyotp.random_base32()
CLIENT_ID = "c82SH0WZOsabOXGP2sxqcj34FxkvfnWRZBKlBjFS"  # what robin-stocks sends


class FakeLogin:
    """State lives on FakeRobinhood: access_tokens, refresh_tokens, approved_devices,
    require_approval, challenge_type, machines, challenges, violations."""

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    def approve(self) -> None:
        """The user taps "approve" in the app (or a code was entered)."""
        for challenge in self.challenges.values():
            challenge["status"] = "validated"

    def token(self, form: dict) -> tuple[int, Any]:
        if form.get("client_id") != CLIENT_ID:
            self.violations.append(f"login with client_id {form.get('client_id')!r}")
        device = form.get("device_token", "")
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return 401, {"error": "invalid_grant"}
            self.refresh_tokens.discard(form["refresh_token"])
            return 200, self.issue()
        if form.get("grant_type") != "password":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("username") != USERNAME or form.get("password") != PASSWORD:
            return 400, {"detail": "Unable to log in with provided credentials."}
        code = form.get("mfa_code")
        if not code:
            return 200, {"mfa_required": True, "mfa_type": "app"}
        if not pyotp.TOTP(MFA_SECRET).verify(code, valid_window=1):
            return 400, {"detail": "Please enter a valid code."}
        if self.require_approval and device not in self.approved_devices:
            workflow = str(uuid.uuid4())
            self.machines.setdefault("pending", {})[workflow] = device
            return 403, {
                "verification_workflow": {
                    "id": workflow,
                    "workflow_status": "workflow_status_internal_pending",
                }
            }
        return 200, self.issue()

    def issue(self) -> dict:
        access, refresh = uuid.uuid4().hex, uuid.uuid4().hex
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 86400,
            "token_type": "Bearer",
            "scope": "internal",
        }

    def workflow(self, method: str, path: str, body: dict) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if method == "POST" and parts == ["pathfinder", "user_machine"]:
            workflow = (body.get("input") or {}).get("workflow_id")
            pending = self.machines.get("pending", {})
            if body.get("flow") != "suv" or workflow not in pending:
                return 400, {"detail": "unknown workflow"}
            if pending[workflow] != body.get("device_id"):
                self.violations.append("user_machine for another device than the login's")
            machine, challenge = str(uuid.uuid4()), str(uuid.uuid4())
            code = f"{uuid.uuid4().int % 1000000:06d}"
            self.challenges[challenge] = {
                "type": self.challenge_type,
                "status": "issued",
                "code": code,
            }
            self.machines[machine] = {"device": body["device_id"], "challenge": challenge}
            return 200, {"id": machine}
        if parts[:2] == ["pathfinder", "inquiries"] and len(parts) == 4:
            machine = self.machines.get(parts[2])
            if machine is None:
                return 404, {"detail": "Not found."}
            challenge = self.challenges[machine["challenge"]]
            if method == "GET":
                return 200, {
                    "context": {
                        "sheriff_challenge": {
                            "id": machine["challenge"],
                            "type": challenge["type"],
                            "status": challenge["status"],
                        }
                    }
                }
            if body.get("user_input") != {"status": "continue"}:
                self.violations.append(f"inquiry continued with {body!r}")
            if challenge["status"] != "validated":
                return 200, {"type_context": {"result": "workflow_status_internal_pending"}}
            self.approved_devices.add(machine["device"])
            return 200, {"type_context": {"result": "workflow_status_approved"}}
        if method == "GET" and parts[0] == "push" and parts[2:] == ["get_prompts_status"]:
            challenge = self.challenges.get(parts[1])
            if challenge is None:
                return 404, {"detail": "Not found."}
            return 200, {"challenge_status": challenge["status"]}
        return 404, {"detail": "Not found."}
