"""`Authorization: Bearer <api key>` over djangorestframework-api-key's hashed keys."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from trading.models import ApiKey


class ApiKeyUser(AnonymousUser):
    """The request's user when a key has no owning Django user: authenticated, not staff."""

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.username = f"api-key:{key.name}"

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    @property
    def is_anonymous(self) -> bool:  # type: ignore[override]
        return False

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header must be 'Bearer <api key>'."
            )
        try:
            key = ApiKey.objects.get_from_key(parts[1])
        except (ApiKey.DoesNotExist, ValueError):
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        if key.revoked or key.has_expired:
            raise exceptions.AuthenticationFailed("API key revoked or expired.")
        user = key.owner if key.owner_id and key.owner.is_active else ApiKeyUser(key)
        return user, key

    def authenticate_header(self, request) -> str:
        return self.keyword
