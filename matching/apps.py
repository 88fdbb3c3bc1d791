from django.apps import AppConfig


class MatchingConfig(AppConfig):
    verbose_name = "Matching"
    name = "matching"

    def ready(self) -> None:
        from matching.receivers import enqueue_incremental_matching
        from mdm.signals import source_records_changed

        source_records_changed.connect(
            enqueue_incremental_matching, dispatch_uid="matching.incremental"
        )
