"""Site-wide 404 and 500 answers, in the API's error shape (Django calls these for any URL
no view answered, and for an exception no view handled)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from api.errors import error_body


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)


def handler500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        error_body("server_error", "Internal error; quote the correlation ID."), status=500
    )
