"""The golden record page: lineage, members, relations, and split / pin / merge actions."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mdm.models import GoldenRecord, GoldenStatus, SourceRecord, StewardOverride
from mdm.services.ingest import ingest_records
from mdm.services.resolution import merge
from tests.stewardship.conftest import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(steward_account):
    crm = ingest("crm", source_key="a1", name="Acme Corporation", city="Berlin")
    erp = ingest("erp", source_key="a2", name="Acme Corp", city="Munich")
    golden = merge(survivor=crm.golden, loser=erp.golden, actor=steward_account, reason="same")
    ingest_records(
        entity_type="contract",
        system_code="crm",
        rows=[(1, {"source_key": "k1", "contract_number": "C-100", "customer_key": "a1"})],
        actor="test",
    )
    return golden


def page(client, golden_id):
    return client.get(reverse("stewardship:golden", args=[golden_id]))


def test_page_shows_lineage_members_relations_and_events(steward_client, acme):
    html = page(steward_client, acme.pk).content.decode()

    assert "Acme Corporation" in html
    assert "<s>Acme Corp</s>" in html  # the runner-up the longest name beat
    assert 'data-record="' in html and "a2" in html
    assert "C-100" in html  # the customer's contract
    assert "golden.merged" in html


def test_split_moves_chosen_members_to_a_new_golden_record(steward_client, acme):
    erp = SourceRecord.objects.get(source_key="a2")

    steward_client.post(
        reverse("stewardship:golden", args=[acme.pk]),
        {"action": "split", "members": [erp.pk], "reason": "different company"},
    )

    erp.refresh_from_db()
    assert erp.golden_id != acme.pk
    assert erp.golden.values["name"] == "Acme Corp"
    assert list(SourceRecord.objects.filter(golden=acme).values_list("source_key", flat=True)) == [
        "a1"
    ]


def test_pin_and_unpin_a_value(steward_client, steward_account, acme):
    url = reverse("stewardship:golden", args=[acme.pk])
    survived_city = acme.values["city"]

    steward_client.post(
        url, {"action": "pin", "attribute": "city", "value": "Hamburg", "reason": "HQ moved"}
    )

    acme.refresh_from_db()
    assert acme.values["city"] == "Hamburg"
    pin = StewardOverride.objects.get(golden=acme)
    assert (pin.reason, pin.pinned_by) == ("HQ moved", steward_account)
    assert "pinned by alice" in page(steward_client, acme.pk).content.decode()

    steward_client.post(url, {"action": "unpin", "attribute": "city", "reason": "wrong"})

    acme.refresh_from_db()
    assert acme.values["city"] == survived_city
    assert not StewardOverride.objects.exists()


def test_pin_without_reason_is_refused_with_a_message(steward_client, acme):
    response = steward_client.post(
        reverse("stewardship:golden", args=[acme.pk]),
        {"action": "pin", "attribute": "city", "value": "Hamburg", "reason": ""},
        follow=True,
    )

    assert "A pin needs a reason" in response.content.decode()
    assert not StewardOverride.objects.exists()


def test_merge_with_another_golden_record_found_by_name(steward_client, acme):
    other = ingest("billing", source_key="b1", name="Acme Corporation GmbH").golden

    search = steward_client.get(reverse("stewardship:golden", args=[acme.pk]), {"merge_q": "gmbh"})
    assert other.pk in search.content.decode()
    steward_client.post(
        reverse("stewardship:golden", args=[acme.pk]),
        {"action": "merge_golden", "other": other.pk, "reason": "same legal entity"},
    )

    other.refresh_from_db()
    assert (other.status, other.merged_into_id) == (GoldenStatus.MERGED, acme.pk)


def test_merge_with_shows_the_record_the_merge_would_make_first(steward_client, acme):
    other = ingest("billing", source_key="b2", name="Acme Corporation GmbH", city="Hamburg").golden
    url = reverse("stewardship:golden", args=[acme.pk])

    response = steward_client.get(url, {"merge_q": "gmbh", "merge_preview": other.pk})

    html = response.content.decode()
    preview = response.context["merge_preview"]
    assert 'id="merge-preview-table"' in html and "after the merge" in html
    assert preview.golden_id == acme.pk and len(preview.record_ids) == 3
    assert "city" in preview.conflicts  # Berlin here, Hamburg there: marked
    assert 'name="other" value="' + other.pk in html
    assert GoldenRecord.objects.get(pk=other.pk).status == GoldenStatus.ACTIVE  # nothing merged


def test_split_preview_shows_both_resulting_records(steward_client, acme):
    members = list(acme.members.order_by("pk"))

    response = steward_client.get(
        reverse("stewardship:golden", args=[acme.pk]),
        {"preview_split": "1", "members": [members[-1].pk]},
    )

    staying, leaving = response.context["split_staying"], response.context["split_leaving"]
    assert leaving.record_ids == [members[-1].pk]
    assert set(staying.record_ids) == {m.pk for m in members[:-1] if not m.deleted}
    html = response.content.decode()
    assert 'id="split-staying"' in html and 'id="split-leaving"' in html
    assert acme.members.count() == len(members)  # nothing split


def test_golden_page_queries_stay_constant_with_previews(
    steward_client, acme, django_assert_max_num_queries
):
    url = reverse("stewardship:golden", args=[acme.pk])
    other = ingest("billing", source_key="b3", name="Acme Corporation GmbH").golden
    with django_assert_max_num_queries(40) as few:
        steward_client.get(url, {"merge_q": "acme", "merge_preview": other.pk})
    for n in range(8):
        record = ingest("shop", source_key=f"s{n}", name="Acme Corp")
        merge(survivor=other, loser=record.golden, actor="t", reason="t")

    with django_assert_max_num_queries(len(few.captured_queries)):
        steward_client.get(url, {"merge_q": "acme", "merge_preview": other.pk})


def test_a_merged_id_redirects_to_its_survivor(steward_client, acme):
    loser = GoldenRecord.objects.get(status=GoldenStatus.MERGED)

    response = page(steward_client, loser.pk)

    assert response.url == reverse("stewardship:golden", args=[acme.pk])


def test_history_shows_who_when_why_with_field_diffs(steward_client, acme):
    steward_client.post(
        reverse("stewardship:golden", args=[acme.pk]),
        {"action": "pin", "attribute": "city", "value": "Hamburg", "reason": "HQ moved"},
    )

    html = steward_client.get(reverse("stewardship:golden_history", args=[acme.pk])).content
    html = html.decode()

    assert "user:alice" in html and "pin city: HQ moved" in html
    assert "values.city" in html and "Hamburg" in html


def test_history_exports_as_csv(steward_client, acme):
    response = steward_client.get(reverse("stewardship:golden_history_csv", args=[acme.pk]))

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert response["Content-Type"] == "text/csv"
    assert {"golden record", "source record"} <= {r["kind"] for r in rows}
    assert any(r["field"] == "golden_id" and r["why"] == "same" for r in rows)


def test_the_history_csv_escapes_formulas(steward_client):
    golden = ingest("crm", source_key="a1", name='=HYPERLINK("http://evil.example")').golden

    response = steward_client.get(reverse("stewardship:golden_history_csv", args=[golden.pk]))

    cells = [cell for row in csv.reader(io.StringIO(response.content.decode())) for cell in row]
    assert '\'=HYPERLINK("http://evil.example")' in cells
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_as_of_shows_values_and_xrefs_at_a_past_moment(steward_client, acme):
    before_pin = timezone.now()
    steward_client.post(
        reverse("stewardship:golden", args=[acme.pk]),
        {"action": "pin", "attribute": "city", "value": "Hamburg", "reason": "HQ moved"},
    )

    response = steward_client.get(
        reverse("stewardship:golden_as_of", args=[acme.pk]), {"at": before_pin.isoformat()}
    )

    html = response.content.decode()
    assert acme.values["city"] in html and "Hamburg" not in html
    assert "a1" in html and "a2" in html


def _golden_queries(client, golden_id) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert page(client, golden_id).status_code == 200
    return len(queries)


def test_golden_page_query_count_does_not_grow_with_members_and_relations(
    steward_client, steward_account
):
    base = ingest("crm", source_key="c0", name="Initech", city="Austin")
    golden = base.golden
    few = _golden_queries(steward_client, golden.pk)
    for n in range(1, 12):
        other = ingest(f"sys{n % 3}", source_key=f"c{n}", name=f"Initech {n}", city=f"City {n}")
        golden = merge(survivor=golden, loser=other.golden, actor=steward_account, reason="x")
    ingest_records(
        entity_type="contract",
        system_code="crm",
        rows=[
            (n, {"source_key": f"k{n}", "contract_number": f"C-{n}", "customer_key": "c0"})
            for n in range(15)
        ],
        actor="test",
    )

    many = _golden_queries(steward_client, golden.pk)

    assert many == few
    assert many <= 15


def test_the_address_block_shows_as_one_group_from_one_record(steward_client, steward_account):
    german = ingest(
        "erp",
        source_key="w1",
        name="WILSON CAPITAL GMBH & CO KG",
        address_line1="Hauptstraße 5",
        city="Berlin",
        country="DE",
    )
    canadian = ingest("crm", source_key="w2", name="Wilson Capital GmbH & Co KG", country="CA")
    third = ingest("web", source_key="w3", name="Wilson Capital", country="CA")
    golden = merge(survivor=german.golden, loser=canadian.golden, actor=steward_account, reason="x")
    golden = merge(survivor=golden, loser=third.golden, actor=steward_account, reason="x")

    assert golden.values["country"] == "DE"  # with its street, not the more frequent CA
    assert golden.values["name"] == "Wilson Capital GmbH & Co KG"  # not the ERP's upper case
    html = page(steward_client, golden.pk).content.decode()
    assert "address block, chosen by address line1" in html
