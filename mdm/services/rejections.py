"""Replaying rejected records after an operator fixed them (or the cause went away)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from mdm.errors import MdmError
from mdm.models import IngestRejection, RejectionStatus
from mdm.services.audit import Actor, save_with_history
from mdm.services.ingest import REJECTED, ingest_records


def replay_rejections(*, rejections: Iterable[IngestRejection], actor: Actor) -> dict[str, int]:
    """Re-ingest each open rejection's payload. A record that loads marks its rejection
    replayed; one that is still bad keeps its row, with the new reason."""
    groups: dict[tuple[str, str], list[IngestRejection]] = defaultdict(list)
    for rejection in rejections:
        if rejection.status == RejectionStatus.OPEN:
            groups[(rejection.entity_type, rejection.source_system)].append(rejection)
    counts = {"replayed": 0, "still_rejected": 0}
    for (entity_type, system_code), group in groups.items():
        by_line: dict[int | None, IngestRejection] = {r.pk: r for r in group}  # line = its id
        with transaction.atomic():
            try:
                summary = ingest_records(
                    entity_type=entity_type,
                    system_code=system_code,
                    rows=[(r.pk, r.payload) for r in group],
                    actor=actor,
                    reason="replay rejection",
                    origin="replay",
                    create_system=True,
                    collect_results=True,
                    store_rejections=False,
                )
            except MdmError as error:
                for rejection in group:
                    _still_rejected(rejection, str(error), actor)
                counts["still_rejected"] += len(group)
                continue
            for outcome in summary.results:
                rejection = by_line[outcome.line]
                if outcome.outcome == REJECTED:
                    _still_rejected(rejection, outcome.reason, actor)
                    counts["still_rejected"] += 1
                else:
                    rejection.status = RejectionStatus.REPLAYED
                    rejection.resolved_at = timezone.now()
                    save_with_history(rejection, actor=actor, reason=f"replayed: {outcome.outcome}")
                    counts["replayed"] += 1
    return counts


def _still_rejected(rejection: IngestRejection, reason: str, actor: Actor) -> None:
    if rejection.reason != reason:
        rejection.reason = reason
        save_with_history(rejection, actor=actor, reason="replay rejected again")
