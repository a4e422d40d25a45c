from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from trading.models import ApiKey, ApiScope


class Command(BaseCommand):
    help = "Create an API key and print it, alone, on stdout (it is shown only once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--scope", choices=ApiScope.values, default=ApiScope.READ)
        parser.add_argument("--owner", help="username of the key's owner")

    def handle(self, *args, name: str, scope: str, owner: str | None, **options) -> None:
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"no user named {owner!r}")
        _key, raw = ApiKey.objects.create_key(name=name, scope=scope, owner=user)
        self.stdout.write(raw)
