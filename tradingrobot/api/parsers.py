"""Request parsers (REST_FRAMEWORK DEFAULT_PARSER_CLASSES): no request body may cause a 500.

- NUL characters: PostgreSQL cannot store a NUL in text or JSON, so a NUL in any string of a
  body (a JSON key or value, a form field) would reach the database as an error and a 500.
- Unpaired surrogates (`"\\ud800"` in JSON): they cannot be encoded as UTF-8, neither by the
  database nor by the renderer that would echo them in an error message.
- Nesting deeper than MAX_JSON_DEPTH: `json` itself raises RecursionError somewhere past ~1,000
  levels, and walking such a value recursively would too. No field of this API nests deeper
  than a handful of levels.
- Bodies larger than DATA_UPLOAD_MAX_MEMORY_SIZE answer 413 (a streamed, chunked body too:
  at most that many bytes are read).

Query strings and paths are checked by `tradingrobot.api.middleware.RefuseNulCharacters`.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

MAX_JSON_DEPTH = 32


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def body_problem(value: Any) -> str | None:
    """Why `value` (parsed JSON or form data) cannot be accepted, or None. Iterative, so no
    depth can overflow the stack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"The request body is nested deeper than {MAX_JSON_DEPTH} levels."
        if isinstance(item, str):
            if "\x00" in item:
                return "The request body contains a NUL character (\\u0000)."
            if _has_surrogate(item):
                return "The request body contains an unpaired UTF-16 surrogate."
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
    return None


def contains_nul(value: Any) -> bool:
    return body_problem(value) is not None


def _refuse(data: Any) -> Any:
    lists = data.lists() if hasattr(data, "lists") else None  # a form's QueryDict
    problem = body_problem(dict(lists) if lists is not None else data)
    if problem:
        raise ParseError(problem)
    return data


def read_capped(stream) -> bytes:
    """The whole body, refusing (413) more than DATA_UPLOAD_MAX_MEMORY_SIZE bytes."""
    cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if stream is None:
        return b""
    raw = stream.read(cap + 1) if cap is not None else stream.read()
    if cap is not None and len(raw) > cap:
        raise RequestTooLarge()
    return raw


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = read_capped(stream)
        try:
            text = raw.decode(encoding)
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError(
                f"The request body is nested deeper than {MAX_JSON_DEPTH} levels."
            ) from None
        except (ValueError, LookupError) as exc:
            # ValueError covers JSONDecodeError, UnicodeDecodeError and over-long integers.
            raise ParseError(f"JSON parse error - {_safe(str(exc))}") from None
        return _refuse(data)


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        from io import BytesIO

        return _refuse(super().parse(BytesIO(read_capped(stream)), media_type, parser_context))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _safe(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")[:200]
