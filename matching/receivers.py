"""Reactions to `mdm` signals: a committed ingest enqueues incremental matching."""

from __future__ import annotations

import logging

from django.conf import settings

from matching.specs import SPECS

logger = logging.getLogger(__name__)

CHUNK = 1000  # record ids per task


def enqueue_incremental_matching(sender, *, entity_type: str, source_record_ids, **kwargs) -> None:
    """Connected to `mdm.signals.source_records_changed` (sent on commit of each ingest chunk).

    A broker that is down must not fail an ingest that already committed: the error is logged
    and the records are matched by the next batch run.
    """
    from matching.tasks import match_records_task

    if entity_type not in SPECS:
        return
    ids = sorted(set(source_record_ids))
    queue = settings.KEYSTONE_MATCH_QUEUE
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        try:
            match_records_task.apply_async(args=[entity_type, chunk], queue=queue)
        except Exception:
            if match_records_task.app.conf.task_always_eager:
                raise
            logger.exception("matching not enqueued for %d %s records", len(chunk), entity_type)
