from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Distribution API"

    def ready(self) -> None:
        from api import (  # noqa: F401
            authentication,  # connects the receivers that publish token changes
            schema,  # registers the OpenAPI auth extension
        )
        from api.receivers import dispatch_in_process
        from mdm.signals import events_committed

        events_committed.connect(dispatch_in_process, dispatch_uid="api.webhooks.in_process")
