"""Signals: history stamping, and the hook other apps use to react to committed ingests."""

from django.dispatch import Signal, receiver
from simple_history.signals import pre_create_historical_record

from mdm.context import correlation_id, current_actor

# Sent after the transaction that created or changed source records commits.
# kwargs: entity_type (str), source_record_ids (list[int]), match_request_ids (list[int]: the
# `MatchRequest` rows written with the change). Matching connects here, so `mdm` never imports
# `matching`; the rows, not this signal, guarantee the records get matched.
source_records_changed = Signal()

# Sent after a transaction that wrote outbox events commits (no kwargs). The API connects
# here to deliver webhooks in process in embedded mode; with a broker, beat dispatches.
events_committed = Signal()


@receiver(pre_create_historical_record)
def stamp_history(sender, instance, history_instance, history_user=None, **kwargs) -> None:
    if not getattr(history_instance, "actor", None):
        user_name = history_user.get_username() if history_user is not None else ""
        history_instance.actor = current_actor() or (f"user:{user_name}" if user_name else "")
    if hasattr(history_instance, "correlation_id") and not history_instance.correlation_id:
        history_instance.correlation_id = correlation_id()
