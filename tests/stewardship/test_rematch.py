"""A "not a match" decided in the UI is a constraint no later matching run breaks."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from matching.models import CandidateStatus
from mdm.models import SourceRecord
from tests.matching.conftest import open_candidate

pytestmark = pytest.mark.django_db


def record(system: str, key: str) -> SourceRecord:
    return SourceRecord.objects.get(source_system__code=system, source_key=key)


def test_not_a_match_from_the_ui_holds_after_run_matching(load_febrl, steward_client):
    load_febrl()
    original, duplicate = record("crm", "rec-5-org"), record("erp", "rec-5-dup-0")
    candidate = open_candidate(original, duplicate, probability=0.9, match_weight=3.0)

    steward_client.post(
        reverse("stewardship:candidate", args=[candidate.pk]),
        {"action": "not_a_match", "reason": "twins, different people"},
    )
    call_command("run_matching", "customer", stdout=StringIO())
    call_command("run_matching", "customer", stdout=StringIO())

    assert record("crm", "rec-5-org").golden_id != record("erp", "rec-5-dup-0").golden_id
    candidate.refresh_from_db()
    assert candidate.status == CandidateStatus.NOT_A_MATCH
    # the run did link other duplicates: the constraint is specific, not a disabled matcher
    golden_of = {
        (r.source_system.code, r.source_key): r.golden_id
        for r in SourceRecord.objects.select_related("source_system")
    }
    linked = [
        key
        for (system, key), golden_id in golden_of.items()
        if system == "erp"
        and key.endswith("-dup-0")
        and key != "rec-5-dup-0"
        and golden_of.get(("crm", key.replace("-dup-0", "-org"))) == golden_id
    ]
    assert linked
