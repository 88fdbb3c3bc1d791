"""Hourly ingest volumes: added per chunk, and pruned after KEYSTONE_INGEST_VOLUME_DAYS."""

from datetime import UTC, datetime, timedelta

import pytest

from mdm.models import IngestVolume, SourceSystem
from mdm.services.ingest_volumes import record_volume
from mdm.tasks import prune_ingest_volumes


@pytest.mark.django_db
def test_hours_older_than_the_retention_are_pruned_and_the_rest_kept(settings):
    settings.KEYSTONE_INGEST_VOLUME_DAYS = 2
    system = SourceSystem.objects.create(code="crm", name="CRM")
    now = datetime.now(UTC)
    for days in (0, 1, 3, 10):
        record_volume(
            system=system,
            entity_type="customer",
            counts={"loaded": days + 1},
            at=now - timedelta(days=days),
        )
    record_volume(system=system, entity_type="customer", counts={"loaded": 5}, at=now)

    assert prune_ingest_volumes() == {"deleted": 2}

    kept = sorted(IngestVolume.objects.values_list("loaded", flat=True))
    assert kept == [2, 6]  # today's hour added to (1 + 5), yesterday's kept
    assert prune_ingest_volumes() == {"deleted": 0}
