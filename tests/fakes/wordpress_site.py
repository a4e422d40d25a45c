"""A local stand-in for a TradingRobotPlug WordPress site's stock-data REST routes.

GET {base}/stock-data            -> {"stock_data": [{"symbol", "price", "timestamp"}]} (latest each)
GET {base}/stock-data/{symbol}   -> {"stock_data": [rows of the last `days` days]}
Timestamps are MySQL datetimes in the site's timezone, as WordPress' current_time('mysql') gives.
Runs on 127.0.0.1 (ephemeral port) in a thread. `status` forces an error status (a dead site),
`required_header` makes it answer 401 without that header, `requests` records what was asked.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

PREFIX = "/wp-json/tradingrobotplug/v1"


class FakeWordPressSite:
    def __init__(self, timezone: str = "America/New_York") -> None:
        self.tz = ZoneInfo(timezone)
        self.rows: dict[str, list[dict]] = {}
        self.status: int | None = None
        self.required_header: tuple[str, str] | None = None
        self.requests: list[tuple[str, dict]] = []
        self.now = datetime.now(self.tz)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                site.requests.append((url.path, query))
                status, body = site.answer(url.path, query, dict(self.headers))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}{PREFIX}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, symbol: str, local_time: str, price, **extra) -> None:
        """One price row as the site stores it: `local_time` is 'YYYY-MM-DD HH:MM:SS' site time."""
        row = {"symbol": symbol, "price": price, "timestamp": local_time, **extra}
        self.rows.setdefault(symbol, []).append(row)

    def add_raw(self, symbol: str, row) -> None:
        self.rows.setdefault(symbol, []).append(row)

    def answer(self, path: str, query: dict, headers: dict) -> tuple[int, dict]:
        if self.status:
            return self.status, {"code": "rest_error", "message": "Internal error"}
        if self.required_header:
            name, value = self.required_header
            if headers.get(name) != value:
                return 401, {"code": "rest_forbidden", "message": "Sorry, you are not allowed."}
        if path == f"{PREFIX}/stock-data":
            latest = [rows[-1] for rows in self.rows.values() if rows]
            return 200, {"stock_data": latest}
        if path.startswith(f"{PREFIX}/stock-data/"):
            symbol = path.rsplit("/", 1)[1].upper()
            days = int(query.get("days", 1))
            since = (self.now - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
            rows = [
                r
                for r in self.rows.get(symbol, [])
                if not isinstance(r, dict)
                or not isinstance(r.get("timestamp"), str)
                or r["timestamp"] >= since
            ]
            return 200, {"stock_data": rows}
        return 404, {"code": "rest_no_route", "message": "No route was found."}
