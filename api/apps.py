from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Distribution API"

    def ready(self) -> None:
        from api import (  # noqa: F401
            authentication,  # connects the receivers that publish token changes
            schema,  # registers the OpenAPI auth extension
        )
