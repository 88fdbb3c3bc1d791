"""OpenAPI: every operation documents the shared error shape for the errors any request can
meet, and the bearer-token security scheme."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

COMMON_ERRORS = {
    "400": "Malformed request (e.g. a body that is not JSON).",
    "401": "No or an invalid token / session.",
    "403": "The role or token does not allow this (e.g. the token lacks the operation's scope).",
    "404": "No such entity type, source system or record.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "415": "Unsupported media type.",
    "422": "The request parsed but cannot be used; `fields` says why.",
    "429": "Throttled; see Retry-After.",
}


class KeystoneAutoSchema(AutoSchema):
    def get_description(self):  # type: ignore[override]  # drf-spectacular's, not DRF's
        """The operation's description, with the token scope it needs (`api.scopes`)."""
        description = super().get_description() or ""
        scope = getattr(self.view, "required_scope", None)
        if scope:
            description = f"{description}\n\nToken scope: `{scope}`.".strip()
        return description

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if getattr(self.view, "authentication_classes", None) == []:
            return responses
        from api.serializers import ErrorSerializer

        for code, description in COMMON_ERRORS.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = description
        return responses


class IntegrationTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.IntegrationTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
