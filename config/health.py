"""Health checks for load balancers and orchestrators: `/healthz` (the process answers) and
`/readyz` (its database and broker answer). No token needed, never throttled."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

OK, UNAVAILABLE = "ok", "unavailable"


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[OK, UNAVAILABLE])
    checks = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Per dependency: `ok`, or `error: <exception class>`.",
    )

    class Meta:
        ref_name = "Health"


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return OK
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return f"error: {type(error).__name__}"


def check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith("memory://"):
        return OK
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        return OK
    except Exception as error:  # noqa: BLE001
        return f"error: {type(error).__name__}"


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        operation_id="healthz", tags=["health"], responses={200: HealthSerializer}, auth=[]
    )
    def get(self, request: Request) -> Response:
        return Response(HealthSerializer({"status": OK}).data)


class ReadyView(HealthView):
    @extend_schema(
        operation_id="readyz",
        tags=["health"],
        responses={200: HealthSerializer, 503: HealthSerializer},
        auth=[],
    )
    def get(self, request: Request) -> Response:
        checks = {"database": check_database(), "broker": check_broker()}
        ready = all(value == OK for value in checks.values())
        body = HealthSerializer({"status": OK if ready else UNAVAILABLE, "checks": checks}).data
        return Response(body, status=status.HTTP_200_OK if ready else 503)
