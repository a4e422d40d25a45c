"""Local stand-ins for the services notifications talk to, on 127.0.0.1, answering as their
documentation says:

- a webhook receiver that verifies `X-TRP-Signature` (HMAC-SHA256 of "<timestamp>.<body>"),
  refuses stale timestamps, and can fail a share of requests or answer slowly;
- Slack incoming webhooks (`ok`; 429 with Retry-After);
- Discord webhooks (204; 429 with a JSON `retry_after`; multipart `payload_json` + `files[0]`);
- the Telegram Bot API (`sendMessage`, `sendPhoto`, `getUpdates`; `{"ok": false, "error_code",
  "description", "parameters": {"retry_after"}}` for errors).
"""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[dict] = []  # every request that arrived
        self.accepted: list[dict] = []  # the ones answered with success
        self.webhook_secret = ""
        self.fail_rate = 0.0
        self.delay = 0.0
        self.rate_limit_next = 0  # answer this many next requests with 429
        self.rng = random.Random(7)
        self.telegram_token = ""
        self.updates: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted_ids(self, path_prefix: str = "") -> Counter:
        with self.lock:
            return Counter(
                r["json"]["id"]
                for r in self.accepted
                if r["path"].startswith(path_prefix) and r.get("json") and "id" in r["json"]
            )

    def of(self, path_prefix: str) -> list[dict]:
        with self.lock:
            return [r for r in self.accepted if r["path"].startswith(path_prefix)]

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self):
                    return True
            time.sleep(0.05)
        return False

    # --- request handling ----------------------------------------------------------------------

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                request = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "at": time.time(),
                }
                request.update(parse_body(request["headers"].get("content-type", ""), body))
                with receiver.lock:
                    receiver.requests.append(request)
                status, answer, headers = receiver.route(request)
                if receiver.delay:
                    time.sleep(receiver.delay)
                if 200 <= status < 300:
                    with receiver.lock:
                        receiver.accepted.append(request)
                self.send_response(status)
                payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _rate_limited(self) -> bool:
        with self.lock:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return True
        return False

    def route(self, request: dict) -> tuple[int, object, dict]:
        path = request["path"]
        if path.startswith("/webhook"):
            return self.webhook(request)
        if path.startswith("/slack"):
            if self._rate_limited():
                return 429, b"rate_limited", {"Retry-After": "1"}
            if not isinstance(request.get("json"), dict) or "text" not in request["json"]:
                return 400, b"no_text", {}
            return 200, b"ok", {"Content-Type": "text/html"}
        if path.startswith("/discord/api/webhooks/"):
            if self._rate_limited():
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": 0.3,
                    "global": False,
                }
                return 429, body, {"Content-Type": "application/json"}
            content = (request.get("json") or request.get("payload_json") or {}).get("content")
            if not content:
                return 400, {"message": "Cannot send an empty message", "code": 50006}, {}
            return 204, b"", {}
        if path.startswith("/bot"):
            return self.telegram(request)
        if path.startswith("/redirect"):
            return 302, b"", {"Location": self.base + "/webhook"}
        if path.startswith("/huge"):
            return 200, b"x" * 1_000_000, {}
        return 404, b"not found", {}

    def webhook(self, request: dict) -> tuple[int, object, dict]:
        headers = request["headers"]
        timestamp = headers.get("x-trp-timestamp", "")
        expected = (
            "sha256="
            + hmac.new(
                self.webhook_secret.encode(),
                timestamp.encode() + b"." + request["body"],
                hashlib.sha256,
            ).hexdigest()
        )
        if not hmac.compare_digest(expected, headers.get("x-trp-signature", "")):
            return 401, {"error": "bad signature"}, {}
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return 401, {"error": "stale timestamp"}, {}
        if self.fail_rate and self.rng.random() < self.fail_rate:
            return 503, {"error": "try again"}, {}
        return 200, {"ok": True}, {}

    def telegram(self, request: dict) -> tuple[int, object, dict]:
        token, _, method = request["path"][len("/bot") :].partition("/")
        if token != self.telegram_token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, {}
        fields = request.get("json") or request.get("form") or {}
        if self._rate_limited():
            return (
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1},
                },
                {},
            )
        if method == "getUpdates":
            offset = int(fields.get("offset") or 0)
            with self.lock:
                pending = [u for u in self.updates if u["update_id"] >= offset]
            return 200, {"ok": True, "result": pending}, {}
        if method in ("sendMessage", "sendPhoto"):
            if not fields.get("chat_id"):
                return 400, {"ok": False, "error_code": 400, "description": "chat not found"}, {}
            if method == "sendMessage" and not fields.get("text"):
                return 400, {"ok": False, "error_code": 400, "description": "text is empty"}, {}
            if method == "sendPhoto" and not request.get("files", {}).get("photo"):
                return 400, {"ok": False, "error_code": 400, "description": "no photo"}, {}
            return 200, {"ok": True, "result": {"message_id": len(self.requests)}}, {}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}, {}


def parse_body(content_type: str, body: bytes) -> dict:
    if content_type.startswith("application/json"):
        try:
            return {"json": json.loads(body)}
        except ValueError:
            return {}
    if content_type.startswith("multipart/form-data"):
        message = email.message_from_bytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        form, files = {}, {}
        for part in message.get_payload():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            if part.get_filename():
                files[name] = data
            else:
                form[name] = data.decode()
        out = {"form": form, "files": files}
        if "payload_json" in form:
            out["payload_json"] = json.loads(form["payload_json"])
        return out
    return {}
