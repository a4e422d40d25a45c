"""Request parsers that refuse NUL characters (REST_FRAMEWORK DEFAULT_PARSER_CLASSES).

PostgreSQL cannot store a NUL in text or JSON, so a NUL in any string of a body (a JSON key or
value, a form field) would reach the database as an error and a 500. It is refused here with a
400 instead, whatever field it is in. Query strings and paths are checked by
`tradingrobot.api.middleware.RefuseNulCharacters`.
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False


def _refuse_nul(data: Any) -> Any:
    lists = data.lists() if hasattr(data, "lists") else None  # a form's QueryDict
    if contains_nul(dict(lists) if lists is not None else data):
        raise ParseError("The request body contains a NUL character (\\u0000).")
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _refuse_nul(super().parse(stream, media_type, parser_context))


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _refuse_nul(super().parse(stream, media_type, parser_context))
