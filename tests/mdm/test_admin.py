"""The admin shows every core model and its history, with a bounded number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mdm.models import GoldenRecord, IngestRejection, SourceRecord
from mdm.services.ingest import ingest_records
from mdm.services.resolution import merge

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded():
    rows = [
        (
            i,
            {
                "source_key": str(i),
                "name": f"Company {i}",
                "email": f"x{i}@c{i}.com",
                "parent_key": "0",
            },
        )
        for i in range(30)
    ]
    rows.append((99, {"name": "no key"}))
    ingest_records(
        entity_type="customer", system_code="crm", rows=rows, actor="t", create_system=True
    )
    ingest_records(
        entity_type="contract",
        system_code="crm",
        rows=[(1, {"source_key": "k1", "contract_number": "C-1", "customer_key": "1"})],
        actor="t",
    )


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", password="pw-root-1234")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "name",
    [
        "mdm_sourcesystem",
        "mdm_customer",
        "mdm_product",
        "mdm_contract",
        "mdm_entitlement",
        "mdm_sourcerecord",
        "mdm_survivorshiprule",
        "mdm_stewardoverride",
        "mdm_ingestrejection",
        "mdm_outboxevent",
    ],
)
def test_every_changelist_renders(admin_client, loaded, name):
    response = admin_client.get(reverse(f"admin:{name}_changelist"))

    assert response.status_code == 200


def test_golden_record_page_shows_lineage_members_and_history(admin_client, loaded, steward):
    a, b = (SourceRecord.objects.get(source_key=k).golden for k in ("1", "2"))
    merge(survivor=a, loser=b, actor=steward, reason="duplicate company")

    page = admin_client.get(reverse("admin:mdm_customer_change", args=[a.pk]))
    history = admin_client.get(reverse("admin:mdm_customer_history", args=[a.pk]))

    assert page.status_code == 200
    assert b"Company 1" in page.content and b"longest" in page.content
    assert history.status_code == 200
    assert b"duplicate company" in history.content


def test_source_record_and_rejection_pages_render(admin_client, loaded):
    record = SourceRecord.objects.get(source_key="3")
    rejection = IngestRejection.objects.get()

    assert (
        admin_client.get(reverse("admin:mdm_sourcerecord_change", args=[record.pk])).status_code
        == 200
    )
    assert (
        admin_client.get(reverse("admin:mdm_sourcerecord_history", args=[record.pk])).status_code
        == 200
    )
    assert (
        admin_client.get(
            reverse("admin:mdm_ingestrejection_change", args=[rejection.pk])
        ).status_code
        == 200
    )


def test_golden_changelist_query_count_does_not_grow_with_rows(admin_client, loaded):
    url = reverse("admin:mdm_customer_changelist")
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    ingest_records(
        entity_type="customer",
        system_code="crm",
        rows=[(i, {"source_key": f"n{i}", "name": f"More {i}"}) for i in range(60)],
        actor="t",
    )
    with CaptureQueriesContext(connection) as many:
        admin_client.get(url)

    assert GoldenRecord.objects.filter(entity_type="customer").count() == 90
    assert len(many) == len(few)
