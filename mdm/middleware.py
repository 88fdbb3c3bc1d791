"""Every request gets (or keeps) an X-Correlation-ID, echoed in the response."""

import re

from mdm.context import audit_context, new_correlation_id

_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class CorrelationIdMiddleware:
    header = "HTTP_X_CORRELATION_ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get(self.header, "")
        correlation = incoming if _VALID.match(incoming) else new_correlation_id()
        request.correlation_id = correlation
        with audit_context(correlation=correlation):
            response = self.get_response(request)
        response["X-Correlation-ID"] = correlation
        return response
