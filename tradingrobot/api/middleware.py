"""Refuse NUL characters in the path or query string of any request, with a 400, and a
declared body larger than DATA_UPLOAD_MAX_MEMORY_SIZE with a 413 (before anything reads it).

PostgreSQL cannot store or compare text holding a NUL, so `?strategy=%00` would otherwise turn
into a database error and a 500 wherever a parameter reaches a query (API filters, admin
search). Bodies are checked by `tradingrobot.api.parsers`.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from tradingrobot.api.errors import error_body


class RefuseNulCharacters:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if cap is not None and declared > cap:
            return JsonResponse(
                error_body("request_too_large", f"The request body is larger than {cap} bytes."),
                status=413,
            )
        names = [
            name
            for name, values in request.GET.lists()
            if "\x00" in name or any("\x00" in value for value in values)
        ]
        if names or "\x00" in request.path:
            return JsonResponse(
                error_body(
                    "invalid_request",
                    "NUL characters (%00) are not allowed in the path or query string.",
                    {name: ["Contains a NUL character."] for name in names},
                ),
                status=400,
            )
        return self.get_response(request)
