from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Distribution API"

    def ready(self) -> None:
        from api import schema  # noqa: F401 - registers the OpenAPI auth extension
        from api.receivers import dispatch_in_process
        from mdm.signals import events_committed

        events_committed.connect(dispatch_in_process, dispatch_uid="api.webhooks.in_process")
