from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """`?limit=&offset=`; answers {"count", "next", "previous", "results"}.

    A limit or offset that is not a non-negative integer is a 400 (DRF would quietly use the
    default); a limit above `max_limit` is capped, as documented in the schema.
    """

    default_limit = 50
    max_limit = 500

    def _integer(self, request, name: str, *, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < minimum or len(raw) > 12:
            raise ValidationError({name: [f"Expected an integer >= {minimum}."]})
        return value

    def get_limit(self, request) -> int:
        limit = self._integer(request, self.limit_query_param, minimum=1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request) -> int:
        return self._integer(request, self.offset_query_param, minimum=0) or 0

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_limit}
            else:
                parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": 10**11}
        return parameters
