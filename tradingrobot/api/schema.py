"""OpenAPI: what every operation gets for free (the cross-cutting parts only).

Every operation of the schema, whoever wrote its view, gets from `AutoSchema` (the project's
DEFAULT_SCHEMA_CLASS) the error responses it can answer, all in the one error shape: 400 and 404
always, 401 and 403 unless the view is public, 429 (with Retry-After) when it is throttled, and
409/415/422/503 for writes; and from `ApiKeyScheme` the Bearer security scheme. Response shapes
are declared once, beside each app's views (its `api/serializers.py`), and attached to the views
there.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

ERROR_DESCRIPTIONS = {
    "400": "Bad request: a parameter or the body is invalid (details name the fields).",
    "401": "No credentials, or an unknown, revoked or expired API key.",
    "403": "The API key's scope does not allow this (trading needs scope 'trade').",
    "404": "No such resource (or unknown symbol).",
    "409": "Conflict: trading is halted (code trading_halted), no running session, or the "
    "resource's state does not allow it.",
    "422": "Refused by a risk check or the broker.",
    "415": "The body's Content-Type is not application/json or form-encoded.",
    "429": "Rate limit of the API key exceeded; retry after Retry-After seconds.",
    "503": "The broker (or a dependency) is unavailable; retry later.",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


# --- shared shapes -------------------------------------------------------------------------------


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Machine-readable, e.g. invalid_request, trading_halted."
    )
    message = serializers.CharField()
    details = serializers.DictField(help_text="Field errors or context; {} when none.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()

    class Meta:
        ref_name = "Error"


class AliasErrorSerializer(serializers.Serializer):
    # Absent only when the request never reached an alias view (e.g. a path that matches none).
    status = serializers.ChoiceField(choices=["error"], required=False)
    message = serializers.CharField(required=False)
    error = ErrorBodySerializer()


ERROR_EXAMPLE = {
    "error": {
        "code": "invalid_request",
        "message": "Invalid request: quantity",
        "details": {"quantity": ["Must be greater than 0."]},
    }
}


class AutoSchema(SpectacularAutoSchema):
    def _error_codes(self) -> list[str]:
        codes = ["400", "404"]
        public = any(isinstance(p, AllowAny) for p in self.view.get_permissions())
        if not public:
            codes += ["401", "403"]
        if self.view.get_throttles():
            codes.append("429")
        if self.method in WRITE_METHODS:
            codes += ["409", "415", "422", "503"]
        return sorted(codes)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        from tradingrobot.api.aliases import AliasErrorMixin

        error = AliasErrorSerializer if isinstance(self.view, AliasErrorMixin) else ErrorSerializer
        for code in self._error_codes():
            if code in responses:
                continue
            response = self._get_response_for_code(error, code, direction=direction)
            response["description"] = ERROR_DESCRIPTIONS[code]
            if code == "429":
                response["headers"] = {
                    "Retry-After": {
                        "description": "Seconds until the key may call again.",
                        "schema": {"type": "integer"},
                    }
                }
            responses[code] = response
        return responses

    def get_tags(self) -> list[str]:
        if not self.path.startswith("/api/v1/"):
            return ["Trading Robot API aliases"]
        return super().get_tags()


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tradingrobot.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from admin or `manage.py create_api_key NAME --scope "
            "read|trade`, sent as `Authorization: Bearer <key>`.",
        }


def preprocess_endpoints(endpoints, **kwargs):
    """Document each route once: the WordPress prefix serves exactly the /api/v1/ routes."""
    return [e for e in endpoints if not e[0].startswith("/wp-json/")]


def postprocess_schema(result, generator, request, public):
    schemas = result.get("components", {}).get("schemas", {})
    if "Error" in schemas:
        schemas["Error"]["example"] = ERROR_EXAMPLE
    result["servers"] = [
        {"url": "/", "description": "This server (also under /wp-json/tradingrobotplug/v1/)."}
    ]
    return result
