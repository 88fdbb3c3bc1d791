"""Signals: history stamping, and the hooks other apps use to react to changes in `mdm`.

`mdm` imports no other app; an app whose rows name golden records or source records (match
candidates and decisions) keeps them consistent through these signals. Two kinds:

- sent on commit (`source_records_changed`): the receiver's work may fail or be late without
  harm (it enqueues a task);
- sent *inside* the transaction of a membership change (`goldens_merged`, `golden_split`,
  `record_linked`), after the records moved and before the transaction commits: the
  receiver's writes commit or roll back with the change, so no reader ever sees a candidate
  between two golden records that were just merged, or a split without its keep-apart
  decision. Receivers must not do I/O outside the database.
"""

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

# Sent inside `mdm.services.resolution.merge_many`'s transaction. kwargs: merged
# (dict loser golden ID -> survivor golden ID), method (LinkMethod), actor, reason.
goldens_merged = Signal()

# Sent inside `mdm.services.resolution.split`'s transaction. kwargs: entity_type, original
# (golden ID kept), created (the new golden ID), moved (ids of the records moved to it), kept
# (ids of the records left in the original), actor, reason.
golden_split = Signal()

# Sent inside `mdm.services.resolution.link`'s transaction when one record moves between two
# golden records without a merge. kwargs: entity_type, record_id, source (golden ID it left),
# target (golden ID it joined), method, actor, reason.
record_linked = Signal()


@receiver(pre_create_historical_record)
def stamp_history(sender, instance, history_instance, history_user=None, **kwargs) -> None:
    if not getattr(history_instance, "actor", None):
        user_name = history_user.get_username() if history_user is not None else ""
        history_instance.actor = current_actor() or (f"user:{user_name}" if user_name else "")
    if hasattr(history_instance, "correlation_id") and not history_instance.correlation_id:
        history_instance.correlation_id = correlation_id()
