from django.apps import AppConfig


class MatchingConfig(AppConfig):
    verbose_name = "Matching"
    name = "matching"

    def ready(self) -> None:
        from matching import receivers
        from mdm import signals

        signals.source_records_changed.connect(
            receivers.enqueue_incremental_matching, dispatch_uid="matching.incremental"
        )
        signals.goldens_merged.connect(
            receivers.candidates_follow_merge, dispatch_uid="matching.merged"
        )
        signals.golden_split.connect(receivers.split_is_a_decision, dispatch_uid="matching.split")
        signals.record_linked.connect(
            receivers.candidates_follow_link, dispatch_uid="matching.linked"
        )
