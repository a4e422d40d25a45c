"""One error shape everywhere: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from trading.exceptions import DomainError

logger = logging.getLogger(__name__)

DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid_request",
}


def _printable(value: Any) -> Any:
    """`value` with every string made encodable: an unpaired surrogate a client sent must not be
    echoed back (rendering it as UTF-8 fails, which was a 500)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(
            _printable(error_body(exc.code, exc.message, exc.details)), status=exc.status_code
        )
    if isinstance(exc, RequestDataTooBig):
        from tradingrobot.api.parsers import RequestTooLarge

        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):  # too many fields, a bad header, ...
        exc = exceptions.ParseError("The request is malformed.")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            error_body("server_error", "An unexpected error occurred."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        message = "Invalid request: " + ", ".join(
            sorted(exc.detail.keys()) if isinstance(exc.detail, dict) else ["body"]
        )
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    else:
        message = str(exc.detail) if hasattr(exc, "detail") else str(exc)
        details = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details = {"retry_after": int(exc.wait + 0.999)}
    if getattr(exc, "default_code", None) == "request_too_large":
        code = "request_too_large"
    response.data = _printable(error_body(code, message, details))
    return response


def _plain(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler400(request, exception=None):
    return _plain(400, "bad_request", "Bad request.")


def handler403(request, exception=None):
    return _plain(403, "permission_denied", "Permission denied.")


def handler404(request, exception=None):
    return _plain(404, "not_found", f"No route for {request.path}.")


def handler500(request):
    return _plain(500, "server_error", "An unexpected error occurred.")
