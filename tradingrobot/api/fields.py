"""Serializer fields shared by the API's request bodies."""

from __future__ import annotations

from rest_framework import serializers


class AsciiDecimalField(serializers.DecimalField):
    """A DecimalField that takes ASCII digits only.

    `Decimal()` reads any Unicode digit: `"１"` (fullwidth) and `"١"` (Arabic-Indic) would be
    quantity 1. A money amount or a share count that does not look like one to every reader of
    a log is refused instead.
    """

    default_error_messages = {"ascii": "Use ASCII digits only (0-9)."}

    def to_internal_value(self, data):
        if isinstance(data, str) and not data.isascii():
            self.fail("ascii")
        return super().to_internal_value(data)
