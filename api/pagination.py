"""One pagination contract for every list the server pages: `cursor` and `limit` in the
query, `{"results": [...], "next_cursor": "..." | null}` in the body and the next page's URL
in a `Link: <…>; rel="next"` header. `next_cursor` is null on the last page; the same limit
validation (422 naming `limit`) everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import Invalid
from api.guards import int_parameter

PAGE_PARAMETERS = ("cursor", "limit")


class KeystonePagination(CursorPagination):
    """Cursor pagination over a stable ordering (newest first by default)."""

    page_size_query_param = "limit"
    page_size = 50
    max_page_size = 500

    def __init__(self, *, ordering: Sequence[str], page_size: int, max_page_size: int) -> None:
        self.ordering = tuple(ordering)
        self.page_size = page_size
        self.max_page_size = max_page_size

    def get_page_size(self, request: Request) -> int:
        return int_parameter(
            request, "limit", default=self.page_size, low=1, high=self.max_page_size
        )

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise Invalid(fields={"cursor": ["not a cursor this list gave out"]}) from None

    def page(self, queryset: QuerySet, request: Request) -> list[Any]:  # type: ignore[override]
        return list(self.paginate_queryset(queryset, request) or [])

    def respond(self, results: Any) -> Response:
        link = self.get_next_link()
        response = Response({"results": results, "next_cursor": next_cursor(link)})
        if link:
            response["Link"] = f'<{link}>; rel="next"'
        return response


def next_cursor(link: str | None) -> str | None:
    if not link:
        return None
    return parse_qs(urlsplit(link).query).get("cursor", [None])[0]
