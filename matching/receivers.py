"""Reactions to `mdm` signals: a committed ingest starts matching its match requests."""

from __future__ import annotations


def enqueue_incremental_matching(sender, *, match_request_ids=(), **kwargs) -> None:
    """Connected to `mdm.signals.source_records_changed` (sent on commit of each ingest chunk).

    Only a nudge: the requests are rows written with the change, so a broker that is down
    loses nothing — the sweep (`matching.tasks.sweep_match_requests`) sends them later. In
    eager mode (no broker) the task runs here, in process, right after the commit.
    """
    from matching.tasks import enqueue_match_requests

    enqueue_match_requests(list(match_request_ids))
