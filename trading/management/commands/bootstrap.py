from __future__ import annotations

import json
import os
import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from trading.models import ApiKey, ApiScope

DEMO_USER = "admin"


class Command(BaseCommand):
    help = (
        "Prepare a fresh installation (idempotent): a running paper session, the periodic jobs, "
        "recent market-data history, the demo SMA strategy, and a demo admin user and API key, "
        "whose credentials are kept in VAR_DIR/demo_credentials.json and printed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-demo", action="store_true", help="no demo user, key or strategy")

    def handle(self, *args, no_demo: bool, **options) -> None:
        from marketdata.services import bars_collect
        from strategies.models import StrategyConfig
        from trading.services import session_ensure_running
        from tradingrobot.schedules import schedules_ensure

        session = session_ensure_running()
        schedules_ensure()
        from notifications.services import channels_sync_from_env

        channels_sync_from_env()
        bars_collect()
        if no_demo:
            return
        if not StrategyConfig.objects.exists():
            StrategyConfig.objects.create(
                name="Demo SMA crossover",
                plugin="sma_crossover",
                symbols=settings.PRIMARY_SYMBOLS,
                params={"fast": 5, "slow": 20},
                allocation=Decimal("0.8"),
                enabled=True,
            )
        credentials = self._demo_credentials()
        port = os.environ.get("PORT", "8000")
        base = f"http://127.0.0.1:{port}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "TradingRobotPlug is starting",
                    f"  dashboard     {base}/",
                    f"  admin         {base}/admin/",
                    f"  health        {base}/api/v1/health",
                    f"  websocket     ws://127.0.0.1:{port}/ws/updates",
                    f"  login         {credentials['username']} / {credentials['password']}"
                    if credentials["password"]
                    else f"  login         {credentials['username']} (an existing account: left"
                    " unchanged, use its own password)",
                    f"  API key       {credentials['api_key']}  (scope: trade)",
                    f"  try           curl -H 'Authorization: Bearer {credentials['api_key']}'"
                    f" {base}/api/v1/status",
                    f"  session       {session} · broker {settings.BROKER}"
                    f" · data {settings.MARKETDATA_PROVIDER} · clock {settings.MARKET_CLOCK}"
                    f" · collection every {settings.COLLECT_INTERVAL_SECONDS}s",
                    "",
                ]
            )
        )

    def _demo_credentials(self) -> dict:
        """The demo login and key. Never modifies an existing user: if an `admin` account
        exists that this command did not create, it is left exactly as it is (its password is
        its owner's) and the demo key is made without an owner."""
        path = settings.VAR_DIR / "demo_credentials.json"
        User = get_user_model()
        if path.exists():
            stored = json.loads(path.read_text())
            owner_ok = (
                stored.get("password") is None
                or User.objects.filter(username=stored["username"]).exists()
            )
            if (
                owner_ok
                and ApiKey.objects.filter(prefix=stored["api_key"].partition(".")[0]).exists()
            ):
                return stored
        password = secrets.token_urlsafe(12)
        if User.objects.filter(username=DEMO_USER).exists():
            user, password = None, None
        else:
            user = User.objects.create_superuser(username=DEMO_USER, email="", password=password)
        _key, raw = ApiKey.objects.create_key(name="demo", scope=ApiScope.TRADE, owner=user)
        stored = {"username": DEMO_USER, "password": password, "api_key": raw}
        path.write_text(json.dumps(stored))
        path.chmod(0o600)
        return stored
